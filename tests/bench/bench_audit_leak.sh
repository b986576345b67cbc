#!/usr/bin/env bash
# ptb audit's test-set leakage scan on the CPU (issue 8, docs/BENCHMARKS.md): a run that wrote
# SIZE_MB of JSONL training records (random sums, with 50 of the 200 test items planted) is
# recorded with `ptb record` (the file captured as a blob), then `ptb audit --test-set` scans
# it; beside it, `grep -F -c -f` of the test prompts over the same file (what a user would
# run, without normalisation, reformatting or lineage). Prints one JSON line.
#   tests/bench/bench_audit_leak.sh PTB [SIZE_MB]
set -u
ptb=${1:?usage: bench_audit_leak.sh PTB [SIZE_MB]}
mb=${2:-200}
tmp=$(mktemp -d /tmp/ptb-leakbench-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/ws"
python3 - "$tmp" "$mb" <<'PY'
import json, random, sys
tmp, mb = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
items = set()
while len(items) < 200:
    items.add((rng.randrange(100), rng.randrange(100)))
items = sorted(items)
with open(f"{tmp}/test.jsonl", "w") as f:
    for a, b in items:
        f.write(json.dumps({"prompt": "Q: %d+%d=?\nA: " % (a, b), "answer": str(a + b)}) + "\n")
with open(f"{tmp}/prompts.txt", "w") as f:
    for a, b in items:
        f.write("%d+%d=?" % (a, b) + "\n")
# the generator the recorded run executes: random sums that are not test items, 50 planted
gen = f"""
import json, random
rng = random.Random(11)
test = {set(items)!r}
planted = {items[:50]!r}
out = open("{tmp}/ws/train.jsonl", "w")
n = 0
while out.tell() < {mb} << 20:
    if n % 20000 == 0 and planted:
        a, b = planted.pop()
    else:
        a, b = rng.randrange(1000), rng.randrange(1000)
        if (a, b) in test:
            continue
    out.write(json.dumps({{"prompt": "Q: %d+%d=?\\\\nA: " % (a, b), "completion": str(a + b)}}) + "\\n")
    n += 1
"""
open(f"{tmp}/gen.py", "w").write(gen)
PY
"$ptb" record -q --net off --store "$tmp/run.ptb" --capture-root "$tmp/ws" -- python3 "$tmp/gen.py" || exit 1
bytes=$(stat -c %s "$tmp/ws/train.jsonl")
t0=$(date +%s.%N)
"$ptb" audit --format json --test-set "$tmp/test.jsonl" "$tmp/run.ptb" >"$tmp/audit.json"
t1=$(date +%s.%N)
grep -F -c -f "$tmp/prompts.txt" "$tmp/ws/train.jsonl" >"$tmp/grep.txt"
t2=$(date +%s.%N)
python3 - "$tmp/audit.json" "$bytes" "$t0" "$t1" "$t2" "$(cat "$tmp/grep.txt")" <<'PY'
import json, sys
rep, nbytes = json.load(open(sys.argv[1])), int(sys.argv[2])
t0, t1, t2 = map(float, sys.argv[3:6])
leak = [f for f in rep["runs"][0]["findings"] if f["detector"] == "leak"]
found = max((f.get("matched", "") for f in leak), key=len)
print(json.dumps({"bytes": nbytes, "audit_s": round(t1 - t0, 3),
                  "audit_gb_per_s": round(nbytes / (t1 - t0) / 1e9, 4),
                  "grep_s": round(t2 - t1, 3), "grep_gb_per_s": round(nbytes / (t2 - t1) / 1e9, 4),
                  "grep_lines": int(sys.argv[6]),
                  "verdicts": sorted({f["rule"] + ":" + f["verdict"] for f in leak}),
                  "matched": found[:120]}))
PY
