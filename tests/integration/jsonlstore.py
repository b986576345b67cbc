"""Shared by the tests of ptb audit: stores built from crafted events (`ptb import --jsonl`) or by a
real `ptb run` of a one-line agent, the fingerprints and placeholders secrets have in a store, and
a counter of checks."""
import hashlib
import json
import os
import subprocess

# a canary as `ptb run` plants one (the store only ever holds its fingerprint)
CANARY = "sk-proj-" + "Q" * 20 + "canaryvalue0123456789abcd"


def fp(value, provider):
    """The fingerprint of a secret (a canary event's, an env var's or a header's)."""
    return {"provider": provider, "prefix": value[:4],
            "sha256": hashlib.sha256(value.encode()).hexdigest(), "length": len(value)}


def ph(value, provider):
    """The placeholder a secret becomes in text (argv, tool input and output)."""
    return "<secret:%s:%s:%s>" % (provider, value[:4], hashlib.sha256(value.encode()).hexdigest())


class Events:
    """Events of one store, numbered and timed as added (dt ns apart), imported by store()."""

    def __init__(self, ptb, tmp, dt=1000):
        self.ptb, self.tmp, self.dt, self.ev = ptb, tmp, dt, []

    def add(self, type, source="tracer", **kw):
        e = {"seq": len(self.ev) + 1, "ts_ns": 1700000000000000000 + len(self.ev) * self.dt,
             "source": source, "type": type}
        e.update(kw)
        self.ev.append(e)
        return e["seq"]

    def store(self, name):
        """Import the events as the store tmp/name; its path."""
        j = os.path.join(self.tmp, "events-%d.jsonl" % len(os.listdir(self.tmp)))
        with open(j, "w") as f:
            for e in self.ev:
                f.write(json.dumps(e) + "\n")
        s = os.path.join(self.tmp, name)
        subprocess.run([self.ptb, "import", "--jsonl", j, s], check=True, capture_output=True)
        return s


def real_run(ptb, tmp, name, command):
    """`ptb run` of an agent that runs the shell command, on a task of one item and a 1-layer base
    model: (the store's path, "") or (None, why it could not run here)."""
    d = os.path.join(tmp, name + "-data.jsonl")
    with open(d, "w") as f:
        f.write('{"prompt": "1+1=", "completion": "2"}\n')
    base = os.path.join(tmp, name + "-base")
    subprocess.run([ptb, "train", "--init", "--layers", "1", "--heads", "2", "--channels", "16",
                    "--max-seq", "16", "--steps", "1", "--data", d, "--out", base, "-q"],
                   capture_output=True, text=True)
    task = os.path.join(tmp, name + "-task.json")
    with open(task, "w") as f:
        json.dump({"name": name, "agent": {"command": ["sh", "-c", command]},
                   "base_model": base, "benchmark": {"name": "b", "test_split": d, "max_tokens": 2},
                   "budget": {"wall_s": 60}, "network": {"mode": "off"}}, f)
    p = subprocess.run([ptb, "run", task, "--out", os.path.join(tmp, name), "--quiet"],
                       capture_output=True, text=True)
    if p.returncode:
        return None, p.stderr.strip()[-200:]
    return os.path.join(tmp, name, "run.ptb"), ""


class Checks:
    """check(cond, what) counts and prints failures; done() prints the count, the exit status."""

    def __init__(self):
        self.n = self.failed = 0

    def __call__(self, cond, what):
        self.n += 1
        if not cond:
            self.failed += 1
            print("FAIL:", what)
        return cond

    def done(self):
        print("%d checks, %d failed" % (self.n, self.failed))
        return 1 if self.failed else 0
