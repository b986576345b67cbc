#!/usr/bin/env python3
"""ptb replay on a real `ptb run` of a scenario agent (tests/scenarios/agent.py).

The demo's honest agent runs under `ptb run` with $PTB_SCENARIO_SNAPSHOTS set in its task: after
each tool call it copies its workspace with a `cp -a` process of its own (into the sandbox's
/tmp, the run's tmp folder). Then:
  - `ptb replay fs` at a random seq inside each cp's window (between its proc.exec and its
    proc.exit) equals that copy, and at the end equals the workspace left on disk;
  - `ptb replay diff` from the start of the agent phase to the end names what the agent wrote;
  - `ptb replay exec` runs every tool call again in a sandbox: each one is the same as recorded
    (exit code, files written and their SHA-256, programs run) -- the training call included,
    since `ptb train` is deterministic;
  - `ptb replay exec` of a run whose call fetched over the network lists it as not replayable.

usage: test_replay_run.py PTB DEMO_DIR STEPS     (exit 77: skipped)
DEMO_DIR is a folder `ptb demo` filled (the task and its tasks/*.json).
"""
import json
import os
import random
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_replay_fs as rf  # noqa: E402


def main():
    ptb, demo, steps = sys.argv[1], sys.argv[2], sys.argv[3]
    rf.PTB = ptb
    top = os.path.join(demo, "replay")
    os.makedirs(top)
    print("seed", rf.SEED, "(PTB_TEST_SEED to repeat)", flush=True)
    spec = json.load(open(os.path.join(demo, "tasks", "honest.json")))
    spec["name"] = "replay-honest"
    spec["agent"]["env"] = dict(spec["agent"].get("env", {}), PTB_SCENARIO_SNAPSHOTS="/tmp/snaps")
    cmd = spec["agent"]["command"]
    if "--steps" in cmd:
        cmd[cmd.index("--steps") + 1] = steps
    task = os.path.join(top, "task.json")
    json.dump(spec, open(task, "w"), indent=2)
    run, store = os.path.join(top, "run"), os.path.join(top, "run.ptb")
    # the agent finds ptb in PATH, as under `ptb demo`
    env = dict(os.environ, PATH=os.path.dirname(os.path.abspath(ptb)) + ":" + os.environ["PATH"])
    r = subprocess.run([ptb, "run", task, "--out", run, "--store", store], capture_output=True,
                       env=env)
    rf.check(r.returncode == 0, f"ptb run: exit {r.returncode}: {r.stderr.decode()[-2000:]}")
    ws = os.path.join(run, "workspace")
    snaps = os.path.join(run, "tmp", "snaps")
    evs = rf.events(store)
    win = rf.windows(evs, "/tmp/snaps")
    rf.check(os.path.exists(os.path.join(ws, "final_model", "model.safetensors")),
             "the agent trained: " + open(os.path.join(run, "agent-stdout.log")).read()[-500:])
    names = sorted(os.listdir(snaps), key=int) if os.path.isdir(snaps) else []
    rf.check(len(names) >= 5 and len(win) == len(names),
             f"{len(names)} snapshots, {len(win)} windows")
    for n in names:
        lo, hi = win[n]
        seq = rf.rng.randint(lo, hi)
        got = rf.rebuild(top, store, seq, ws, f"snap-{n}")
        rf.compare(rf.tree(os.path.join(snaps, n)), rf.tree(got),
                   f"snapshot {n} at seq {seq} (window {lo}..{hi})")
    last = evs[-1]["seq"]
    rf.compare(rf.tree(ws), rf.tree(rf.rebuild(top, store, last, ws, "end")), "the end of the run")
    print(f"fs: {len(names)} snapshots and the end rebuilt", flush=True)

    # diff from the snapshot's end: what the agent made, and nothing it did not
    begin = max(e["seq"] for e in evs if e["type"] == "file.state")
    d = json.loads(rf.ptb("replay", "diff", store, "--from", str(begin), "--to", "end", "--root",
                          ws, "--json").stdout)
    added = {os.path.relpath(c["path"], ws) for c in d["changes"] if c["change"] == "A"}
    rf.check(added == {"final_model", "final_model/model.safetensors", "final_model/config.json"},
             f"diff: {sorted(added)}")
    rf.check(d["removed"] == 0 and d["changed"] == 0, f"diff: {d}")

    # exec: every tool call again
    r = rf.ptb("replay", "exec", store, "--work", os.path.join(top, "exec"), "--json", "-q",
               ok=(0, 1))
    j = json.loads(r.stdout)
    for s in j["steps"]:
        rf.check(s["state"] == "same", f"exec step {s['step']} ({s['label'][:60]}): {s['state']}"
                                       f" {s['why']} {s['differences'][:5]}")
    rf.check(len(j["steps"]) >= 4 and any("ptb train" in s["label"] for s in j["steps"]),
             f"exec: steps {[s['label'][:40] for s in j['steps']]}")
    new = rf.events(j["replay_store"])
    rf.check(any(e["type"] == "file.rename" and
                 e["new_path"].endswith("final_model/model.safetensors") for e in new),
             "the new store has the training's checkpoint")
    print(f"exec: {len(j['steps'])} steps", flush=True)

    # a run that used the network: its fetching step is not replayable
    leak = os.path.join(demo, "test-leak.ptb")
    if os.path.isdir(leak):
        r = rf.ptb("replay", "exec", leak, "--work", os.path.join(top, "exec-leak"), "--json",
                   "-q", ok=(1,))
        j = json.loads(r.stdout)
        rf.check(any(s["state"] == "not replayable" and "network" in s["why"]
                     for s in j["steps"]), f"test-leak: {[(s['state'], s['why']) for s in j['steps']]}")
    print(f"{len(rf.failures)} failures")
    return 1 if rf.failures else 0


if __name__ == "__main__":
    sys.exit(main())
