"""Shared by the Python integration tests of the ptb binary: named cases run in a scratch
directory, failures collected (a case goes on after a failed check, so one run shows them all),
and the events of a store as JSON (`ptb query --format jsonl`)."""
import json
import os
import shutil
import subprocess
import tempfile
import time

PTB = None  # absolute path of the ptb binary under test
TOP = None  # scratch directory of this run, removed at the end
FAILS = []


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print(f"FAIL: {what}")
    return cond


def events(store, flt=None):
    args = [PTB, "query", store, "--format", "jsonl"] + ([flt] if flt else [])
    out = subprocess.run(args, capture_output=True, check=True).stdout
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def of_type(evs, t):
    return [e for e in evs if e["type"] == t]


def ptrace_forbidden():
    """True where ptrace is not permitted (strace cannot trace `true`)."""
    if not shutil.which("strace"):
        return False
    return subprocess.run(["strace", "-qq", "-e", "trace=none", "true"],
                          capture_output=True).returncode != 0


def run(argv, cases, prefix, bind):
    """argv: [script, PTB, CASE...]; runs the named cases (all without names) in a new scratch
    directory; bind(ptb, top) hands both to the test module. Returns the exit status."""
    global PTB, TOP
    PTB = os.path.abspath(argv[1])
    TOP = tempfile.mkdtemp(prefix=prefix)
    bind(PTB, TOP)
    try:
        for name in argv[2:] or cases:
            t0 = time.monotonic()
            cases[name]()
            print(f"# {name}: {time.monotonic() - t0:.1f}s", flush=True)
    finally:
        shutil.rmtree(TOP, ignore_errors=True)
    print(f"{len(FAILS)} failures")
    return 1 if FAILS else 0
