#!/usr/bin/env bash
# `ptb import --ptb-results` end to end with the real binary, on PostTrainBench result folders
# built here as the harness writes them (src/run_task.sh, src/utils/timestamp_lines.py):
# - a whole folder: solve_out.txt (Claude stream-json made of the real transcript in
#   ../shared/data/agent-streams, each line "[ISO-time] ", plus harness chatter and a line
#   without a prefix), prompt.txt, time_taken.txt, metrics.json, output.log, a judgement, task/,
#   and a final_model made by `ptb train`: every tool use a tool.call at its line's time, the
#   prompt, eval.result per metric, the checkpoint's file hashes, file.write of the folder's
#   files, the not_recorded gaps, run.start/run.end; `ptb verify` passes; the folder unchanged;
# - a folder with files missing and a bad time_taken.txt: gaps, exit 0;
# - an older run, no prefixes: the times from solve_out.txt's mtime less the time taken;
# - folders that are not result folders (exit 4, no store); bad options (exit 2).
# Skipped (77) without the shared data. KEEP=1 keeps the scratch folder.
set -u
ptb=$1
data=${PTB_TEST_DATA:-$(dirname "$0")/../../../shared/data}/agent-streams
[ -d "$data/claude-code-transcripts" ] || { echo "SKIP: no $data"; exit 77; }
tmp=$(mktemp -d /tmp/ptb-ptbres-XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
. "$(dirname "$0")/testlib.sh"
q() { "$ptb" query --format jsonl "$1" "$2"; }

# ---------------------------------------------------------------- a whole result folder
run="$tmp/results/claude_claude-opus-4-5_10h_v5/gsm8k_Qwen_Qwen3-1.7B-Base_4242"
mkdir -p "$run/task"
transcript=$(ls "$data"/claude-code-transcripts/*.jsonl | head -1)
# the transcript's user/assistant lines as `claude -p --output-format stream-json` prints them,
# stamped with the transcript's times as timestamp_lines.py stamps them; the expected calls
python3 - "$transcript" "$run/solve_out.txt" "$tmp/want.json" <<'PY'
import json, sys, datetime
src, out, want = sys.argv[1:]
lines = []   # (stamp, time, line, ids of its tool uses)
def stamp(iso):
    t = datetime.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return t.astimezone(datetime.timezone.utc).strftime("[%Y-%m-%dT%H:%M:%SZ] ")
def epoch(iso):
    t = datetime.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return int(t.timestamp()) * 10**9
for raw in open(src):
    o = json.loads(raw)
    if o.get("type") not in ("user", "assistant") or "timestamp" not in o:
        continue
    line = json.dumps({"type": o["type"], "message": o["message"], "session_id": "s1",
                       "parent_tool_use_id": None})
    ids = [b["id"] for b in o["message"].get("content") or []
           if isinstance(b, dict) and b.get("type") == "tool_use"]
    lines.append((stamp(o["timestamp"]), epoch(o["timestamp"]), line, ids))
# one line with a tool use, later than the line before it, goes without its prefix: it takes
# the time of the line before
bare = next(i for i in range(1, len(lines)) if lines[i][3] and lines[i][1] > lines[i - 1][1])
calls = {}
for i, (s, t, l, ids) in enumerate(lines):
    for c in ids:
        calls[c] = lines[i - 1][1] if i == bare else t
init = json.dumps({"type": "system", "subtype": "init", "session_id": "s1",
                   "model": "claude-opus-4-5", "tools": ["Bash"], "cwd": "/home/ben/task"})
with open(out, "w") as f:
    f.write(lines[0][0] + "CUDA available: True (1 device)\n")   # check_cuda.py
    f.write(lines[0][0] + init + "\n")
    for i, (s, t, l, ids) in enumerate(lines):
        f.write((s if i != bare else "") + l + "\n")
json.dump({"calls": calls, "start": lines[0][1], "bare": lines[bare][3]}, open(want, "w"))
PY
[ -s "$run/solve_out.txt" ] && ok || bad "no solve_out.txt made"
printf '%s\n' 'We want to train the small LLM `Qwen/Qwen3-1.7B-Base` to excel at gsm8k.' \
  'You have a maximum of 10 hours.' >"$run/prompt.txt"
printf '02:03:04\n' >"$run/time_taken.txt"
printf '{\n  "accuracy": 0.615,\n  "stderr": 0.0134\n}' >"$run/metrics.json"
printf '%s\n' 'Judge OAuth OK' '--- SOLVE DIAGNOSTICS ---' 'exit_code: 0' \
  'status: exited normally' 'hostname: node7' >"$run/output.log"
printf '{"contamination": false, "disallowed_model": false}\n' >"$run/judgement_gpt5_4.json"
printf 'step 1\n' >"$run/task/train.log"
for i in $(seq 1 40); do
  printf '{"prompt": "%d+%d=", "completion": "%d"}\n' $i $i $((i + i))
done >"$tmp/train.jsonl"
check "ptb train" 0 "$ptb" train --init --layers 1 --heads 2 --channels 16 --max-seq 16 --steps 2 \
  --data "$tmp/train.jsonl" --out "$run/final_model"
(cd "$run" && find . -type f | sort | xargs sha256sum) >"$tmp/before"

check "import" 0 "$ptb" import --ptb-results "$run" "$tmp/a.ptb"
grep -q 'format claude' "$tmp/err" && ok || bad "format not claude: $(cat "$tmp/err")"
check "verify" 0 "$ptb" verify "$tmp/a.ptb"
(cd "$run" && find . -type f | sort | xargs sha256sum) >"$tmp/after"
cmp -s "$tmp/before" "$tmp/after" && ok || bad "the folder was changed"
[ -z "$(find "$run" -newer "$tmp/before")" ] && ok ||
  bad "written in the folder: $(find "$run" -newer "$tmp/before")"

q "$tmp/a.ptb" 'evt.type = tool.call' >"$tmp/calls"
q "$tmp/a.ptb" 'evt.type = tool.result' >"$tmp/res"
q "$tmp/a.ptb" 'evt.type = agent.message' >"$tmp/msgs"
q "$tmp/a.ptb" 'evt.type = eval.result' >"$tmp/evals"
q "$tmp/a.ptb" 'evt.type = checkpoint' >"$tmp/ckpt"
q "$tmp/a.ptb" 'evt.type = gap' >"$tmp/gaps"
q "$tmp/a.ptb" 'evt.type = file.write' >"$tmp/files"
q "$tmp/a.ptb" 'evt.type = run.start or evt.type = run.end' >"$tmp/run"
(cd "$run/final_model" && find . -type f | sed 's|^\./||' | sort | while read -r f; do
  echo "$f $(sha256sum "$f" | cut -d' ' -f1) $(stat -c %s "$f")"; done) >"$tmp/model.sums"
python3 - "$tmp" "$run" <<'PY' && ok || bad "the store does not hold the folder"
import json, sys, os, hashlib
tmp, run = sys.argv[1:]
def rows(n): return [json.loads(l) for l in open(os.path.join(tmp, n)) if l.strip()]
want = json.load(open(os.path.join(tmp, "want.json")))
calls = rows("calls")
ids = {c["call_id"]: c for c in calls}
assert set(ids) == set(want["calls"]), ("calls", set(ids) ^ set(want["calls"]))
for i, ts in want["calls"].items():        # each at its line's time (whole seconds)
    assert ids[i]["ts_ns"] == ts, ("time of", i, ids[i]["ts_ns"], ts)
    assert ids[i]["source"] == "agent", ids[i]
res = rows("res")
assert len(res) == len(calls) and {r["call_id"] for r in res} == set(ids), "results not paired"
msgs = rows("msgs")
user = [m for m in msgs if m["role"] == "user" and m.get("text", "").startswith("We want to train")]
assert len(user) == 1 and user[0]["ts_ns"] == want["start"], ("prompt", user)
ev = {e["metric"]: e for e in rows("evals")}
assert set(ev) == {"accuracy", "stderr"}, ev
assert ev["accuracy"]["value"] == 0.615 and ev["stderr"]["value"] == 0.0134, ev
assert ev["accuracy"]["benchmark"] == "gsm8k", ev
mh = hashlib.sha256(open(os.path.join(run, "metrics.json"), "rb").read()).hexdigest()
assert ev["accuracy"]["details_blob"] == mh, (ev["accuracy"], mh)
ck = rows("ckpt")
assert len(ck) == 1 and ck[0]["path"] == os.path.join(run, "final_model"), ck
got = sorted("%s %s %s" % (f["path"], f["sha256"], f["size"]) for f in ck[0]["files"])
sums = sorted(l.strip() for l in open(os.path.join(tmp, "model.sums")))
assert got == sums, (got, sums)
assert ck[0].get("tensors"), "no tensors hashed"
gaps = rows("gaps")
nr = sorted(g["detail"].split(":")[0] for g in gaps if g["reason"] == "not_recorded")
assert nr == ["files", "gpu", "packets", "processes"], nr
assert all(g["origin"] == "import" for g in gaps if g["reason"] == "not_recorded")
assert not [g for g in gaps if g["reason"] == "missing"], gaps
assert [g for g in gaps if g["reason"] == "not_imported" and g["path"].endswith("/task")], gaps
bad = [g for g in gaps if g["reason"] == "bad_line"]   # the CUDA check line
assert len(bad) == 1 and "line 1" in bad[0]["detail"], bad
files = {os.path.basename(f["path"]): f for f in rows("files")}
for n in ("solve_out.txt", "prompt.txt", "time_taken.txt", "metrics.json", "output.log",
          "judgement_gpt5_4.json"):
    h = hashlib.sha256(open(os.path.join(run, n), "rb").read()).hexdigest()
    assert files[n]["sha256"] == h and files[n]["captured"] and files[n]["trigger"] == "import", n
r = rows("run")
assert [x["type"] for x in r] == ["run.start", "run.end"], r
s, e = r
assert s["run_id"] == "gsm8k_Qwen_Qwen3-1.7B-Base_4242" and s["task"] == run, s
assert s["benchmark"] == "gsm8k" and s["base_model"] == "Qwen/Qwen3-1.7B-Base", s
assert s["agent"] == "claude" and s["budget_s"] == 36000 and s["host"] == "node7", s
assert s["ts_ns"] == want["start"], s
assert e["duration_ns"] == (2 * 3600 + 3 * 60 + 4) * 10**9 and e["reason"] == "exit", e
assert e["ts_ns"] == s["ts_ns"] + e["duration_ns"], e
PY
check "again: the store exists" 5 "$ptb" import --ptb-results "$run" "$tmp/a.ptb"
check "given format" 0 "$ptb" import --ptb-results "$run" --format claude "$tmp/b.ptb"

# ---------------------------------------------------------------- files missing
part="$tmp/results/codex_gpt-5.2_10h_v6/aime2025_google_gemma-3-4b-pt_77"
mkdir -p "$part"
printf 'nonsense\n' >"$part/time_taken.txt"
printf '%s\n' 'We want to train the small LLM `google/gemma-3-4b-pt` to excel at aime2025.' \
  >"$part/prompt.txt"
check "partial folder" 0 "$ptb" import --ptb-results "$part" "$tmp/p.ptb"
for f in solve_out.txt metrics.json final_model; do
  grep -q "$f" "$tmp/err" && ok || bad "no message for the missing $f: $(cat "$tmp/err")"
done
check "verify partial" 0 "$ptb" verify "$tmp/p.ptb"
q "$tmp/p.ptb" 'evt.type = gap' >"$tmp/gaps"
q "$tmp/p.ptb" 'evt.type = checkpoint or evt.type = eval.result or evt.type = run.end' >"$tmp/rest"
python3 - "$tmp" "$part" <<'PY' && ok || bad "the partial folder's gaps are wrong"
import json, sys, os
tmp, part = sys.argv[1:]
gaps = [json.loads(l) for l in open(os.path.join(tmp, "gaps")) if l.strip()]
missing = sorted(os.path.basename(g["path"]) for g in gaps if g["reason"] == "missing")
assert missing == ["final_model", "metrics.json", "solve_out.txt"], missing
assert [g for g in gaps if g["reason"] == "bad_file" and g["path"].endswith("time_taken.txt")]
assert len([g for g in gaps if g["reason"] == "not_recorded"]) == 4
rest = [json.loads(l) for l in open(os.path.join(tmp, "rest")) if l.strip()]
assert [r["type"] for r in rest] == ["checkpoint", "run.end"], rest
assert "missing" in rest[0]["note"] and not rest[0].get("files"), rest[0]
assert not rest[1].get("duration_ns") and rest[1]["reason"] == "unknown", rest[1]
PY

# ---------------------------------------------------------------- an older run: no prefixes
old="$tmp/results/claude_claude-sonnet-4-5_10h/humaneval_Qwen_Qwen3-4B-Base_9"
mkdir -p "$old"
sed 's/^\[[^]]*\] //' "$run/solve_out.txt" >"$old/solve_out.txt"
printf '01:00:00\n' >"$old/time_taken.txt"
touch -d '2025-10-01 12:00:00 UTC' "$old/solve_out.txt"
check "unstamped stream" 0 "$ptb" import --ptb-results "$old" "$tmp/o.ptb"
q "$tmp/o.ptb" 'evt.type = run.start or evt.type = tool.call or evt.type = run.end' >"$tmp/old"
python3 - "$tmp/old" <<'PY' && ok || bad "the older run's times are wrong"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
start = 1759320000 * 10**9 - 3600 * 10**9   # the file's time less the time taken
assert ev[0]["type"] == "run.start" and ev[0]["ts_ns"] == start, ev[0]
assert ev[0]["budget_s"] == 36000 and ev[0]["base_model"] == "Qwen_Qwen3-4B-Base", ev[0]
calls = [e for e in ev if e["type"] == "tool.call"]
assert calls and all(c["ts_ns"] == start for c in calls), calls[:2]
assert ev[-1]["type"] == "run.end" and ev[-1]["ts_ns"] == start + 3600 * 10**9, ev[-1]
PY

# ---------------------------------------------------------------- not result folders
mkdir -p "$tmp/empty" && printf 'x\n' >"$tmp/empty/notes.txt"
check "not a result folder" 4 "$ptb" import --ptb-results "$tmp/empty" "$tmp/x.ptb"
grep -q 'not a PostTrainBench result folder' "$tmp/err" && ok || bad "message: $(cat "$tmp/err")"
check "a file, not a folder" 4 "$ptb" import --ptb-results "$tmp/empty/notes.txt" "$tmp/x.ptb"
check "no such folder" 5 "$ptb" import --ptb-results "$tmp/none" "$tmp/x.ptb"
[ -e "$tmp/x.ptb" ] && bad "a refused import left $tmp/x.ptb" || ok
check "with --jsonl" 2 "$ptb" import --ptb-results "$run" --jsonl "$tmp/want.json" "$tmp/x.ptb"
check "with --skip-bad" 2 "$ptb" import --ptb-results "$run" --skip-bad "$tmp/x.ptb"
check "bad format" 2 "$ptb" import --ptb-results "$run" --format claude-code "$tmp/x.ptb"
finish
