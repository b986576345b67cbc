#!/usr/bin/env bash
# A full `ptb audit` of a store of N events (issue 8, docs/BENCHMARKS.md; default 10 million):
# bench_store's synthetic run (tests/bench/bench_gen.c: the event mix of an agent that trains a
# model: GPU kernels, file and process events, tool calls, network) written as a ptb store and,
# with the same seed, as JSONL; then `ptb audit --test-set` of the store (every detector: the
# keys detector walks processes, files, tool calls and HTTP; the leakage detector the processes,
# files, network and tool calls, and scans every tool call's text against a 200-item test split;
# the checkpoint detector finds none), wall time and peak memory; beside it, what a user without
# ptb would run over the JSONL: `grep -c -F -f` of the test prompts and a grep for key shapes and
# provider hosts. Prints one JSON line.
#   tests/bench/bench_audit_store.sh BUILD_DIR [EVENTS]      (BUILD_DIR has runner/ptb and
#                                                             tests/bench/bench_store)
set -u
b=${1:?usage: bench_audit_store.sh BUILD_DIR [EVENTS]}
n=${2:-10000000}
ptb=$b/runner/ptb
bs=$b/tests/bench/bench_store
tmp=$(mktemp -d /tmp/ptb-auditstore-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
python3 - "$tmp" <<'PY'
import json, random, sys
rng = random.Random(7)
items = sorted({(rng.randrange(100), rng.randrange(100)) for _ in range(400)})[:200]
with open(sys.argv[1] + "/test.jsonl", "w") as f, open(sys.argv[1] + "/prompts.txt", "w") as g:
    for a, b in items:
        f.write(json.dumps({"prompt": "Q: %d+%d=?\nA: " % (a, b), "answer": str(a + b)}) + "\n")
        g.write("%d+%d=?\n" % (a, b))
PY
"$bs" --events "$n" --only jsonl --no-queries --keep --dir "$tmp" >/dev/null 2>&1 || exit 1
"$bs" --events "$n" --only ptb --no-2producers --no-queries --keep --dir "$tmp" >/dev/null 2>&1 ||
  exit 1
sync
python3 - "$tmp" "$n" "$ptb" <<'PY'
import json, os, resource, subprocess, sys, time
tmp, n, ptb = sys.argv[1], int(sys.argv[2]), sys.argv[3]
t0 = time.monotonic()
with open(tmp + "/audit.json", "w") as out:
    rc = subprocess.run([ptb, "audit", "--format", "json", "--test-set", tmp + "/test.jsonl",
                         tmp + "/run.ptb"], stdout=out).returncode
t1 = time.monotonic()
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
g1 = subprocess.run(["grep", "-c", "-F", "-f", tmp + "/prompts.txt", tmp + "/run.jsonl"],
                    capture_output=True, text=True).stdout.strip()
g2 = subprocess.run(["grep", "-c", "-E", r"sk-[A-Za-z0-9_-]{20,}|api\.openai\.com|api\.anthropic\.com",
                     tmp + "/run.jsonl"], capture_output=True, text=True).stdout.strip()
t2 = time.monotonic()
rep = json.load(open(tmp + "/audit.json"))
rules = sorted({f["rule"] for f in rep["runs"][0]["findings"]})
store = sum(os.path.getsize(os.path.join(tmp, "run.ptb", f)) for f in os.listdir(tmp + "/run.ptb"))
print(json.dumps({"bench": "audit_store", "events": n, "audit_exit": rc,
                  "audit_s": round(t1 - t0, 2), "events_per_s": round(n / (t1 - t0)),
                  "audit_peak_rss_mb": round(rss / 1024), "store_mb": round(store / 2**20),
                  "jsonl_mb": round(os.path.getsize(tmp + "/run.jsonl") / 2**20),
                  "rules": rules, "grep_s": round(t2 - t1, 2), "grep_lines": [int(g1 or 0), int(g2 or 0)],
                  "ratio_audit_over_grep": round((t1 - t0) / (t2 - t1), 2)}))
PY
