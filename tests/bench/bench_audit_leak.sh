#!/usr/bin/env bash
# ptb audit's test-set leakage scan (issue 8, docs/BENCHMARKS.md): a run that wrote SIZE_MB of
# JSONL training records (random sums, with 50 of the 200 test items planted) is recorded with
# `ptb record` (the file captured as a blob), then `ptb audit --test-set` scans it, on the CPU
# and, where a GPU and libptbauditcuda.so are there, with --device cuda; beside it, `grep -F -c
# -f` of the test prompts over the same file (what a user would run, without normalisation,
# reformatting or lineage), and the scan alone on the file in memory (bench_audit_leak_scan: 1
# and 2 threads, the GPU; the same results required; again with a non-ASCII byte every MB).
# Prints one JSON line.
#   tests/bench/bench_audit_leak.sh PTB [SIZE_MB [BENCH_AUDIT_LEAK_SCAN]]
# The scan program defaults to tests/bench/bench_audit_leak_scan of PTB's build tree.
set -u
ptb=${1:?usage: bench_audit_leak.sh PTB [SIZE_MB [BENCH_AUDIT_LEAK_SCAN]]}
mb=${2:-200}
scanb=${3:-$(dirname "$ptb")/../tests/bench/bench_audit_leak_scan}
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
"$ptb" audit --format json --device cpu --test-set "$tmp/test.jsonl" "$tmp/run.ptb" >"$tmp/audit.json"
t1=$(date +%s.%N)
grep -F -c -f "$tmp/prompts.txt" "$tmp/ws/train.jsonl" >"$tmp/grep.txt"
t2=$(date +%s.%N)
# the GPU, where there is one: the whole audit with --device cuda
echo '{}' >"$tmp/audit-cuda.json"
tc0=0 tc1=0
if nvidia-smi -L >/dev/null 2>&1; then
  tc0=$(date +%s.%N)
  "$ptb" audit --format json --device cuda --test-set "$tmp/test.jsonl" "$tmp/run.ptb" \
    >"$tmp/audit-cuda.json" 2>"$tmp/audit-cuda.err" || cat "$tmp/audit-cuda.err" >&2
  tc1=$(date +%s.%N)
fi
# the scan alone, the file in memory
: >"$tmp/scan.jsonl"
if [ -x "$scanb" ]; then
  "$scanb" --test-set "$tmp/test.jsonl" --data "$tmp/ws/train.jsonl" --threads 1,2 --reps 3 \
    >"$tmp/scan.jsonl" || echo "bench_audit_leak_scan: results differ or it failed" >&2
  # the same with a byte >= 0x80 every MB (the GPU leaves its 64 KiB piece to the CPU)
  "$scanb" --test-set "$tmp/test.jsonl" --data "$tmp/ws/train.jsonl" --threads 2 --reps 3 \
    --non-ascii-every 1000000 >"$tmp/scan-na.jsonl" ||
    echo "bench_audit_leak_scan --non-ascii-every: results differ or it failed" >&2
fi
python3 - "$tmp" "$bytes" "$t0" "$t1" "$t2" "$(cat "$tmp/grep.txt")" "$tc0" "$tc1" <<'PY'
import json, sys
tmp, nbytes = sys.argv[1], int(sys.argv[2])
t0, t1, t2 = map(float, sys.argv[3:6])
tc0, tc1 = map(float, sys.argv[7:9])
def leak(path):
    try:
        rep = json.load(open(path))
        return [f for f in rep["runs"][0]["findings"] if f["detector"] == "leak"]
    except (KeyError, IndexError, ValueError):
        return []
cpu, cuda = leak(f"{tmp}/audit.json"), leak(f"{tmp}/audit-cuda.json")
found = max((f.get("matched", "") for f in cpu), key=len)
out = {"bytes": nbytes, "audit_s": round(t1 - t0, 3),
       "audit_gb_per_s": round(nbytes / (t1 - t0) / 1e9, 4),
       "grep_s": round(t2 - t1, 3), "grep_gb_per_s": round(nbytes / (t2 - t1) / 1e9, 4),
       "grep_lines": int(sys.argv[6]),
       "verdicts": sorted({f["rule"] + ":" + f["verdict"] for f in cpu}),
       "matched": found[:120],
       "summary": [f["summary"] for f in cpu if f["rule"].startswith("leak.test_items")][:1]}
if tc1 > tc0:
    strip = lambda fs: [(f["rule"], f["verdict"], f.get("matched"), f["summary"].split("; n-gram scan")[0]) for f in fs]
    out.update({"audit_cuda_s": round(tc1 - tc0, 3),
                "audit_cuda_gb_per_s": round(nbytes / (tc1 - tc0) / 1e9, 4),
                "cuda_same_findings": strip(cpu) == strip(cuda),
                "cuda_summary": [f["summary"] for f in cuda if f["rule"].startswith("leak.test_items")][:1]})
out["scan"] = [json.loads(l) for l in open(f"{tmp}/scan.jsonl") if l.strip()]
try:
    out["scan_non_ascii_every_mb"] = [json.loads(l) for l in open(f"{tmp}/scan-na.jsonl") if l.strip()]
except OSError:
    pass
print(json.dumps(out))
PY
