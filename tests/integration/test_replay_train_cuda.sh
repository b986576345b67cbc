#!/usr/bin/env bash
# ptb replay train of a run recorded on the GPU: `ptb train --device cuda` recorded, replayed on
# the GPU (bit-identical: the CUDA backend is deterministic on the same GPU and software), then
# on the CPU (a comparison across devices: exit 1, every tensor close but not equal). Skipped
# (77) where ptb train --device cuda cannot run (no backend, driver or GPU) or without ptrace;
# tests/gpu/run.sh replay-train runs it on the GPU machine.
set -u
ptb=$(realpath "$1")
tmp=$(mktemp -d /tmp/ptb-replay-cuda-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/testlib.sh"
export TMPDIR=$tmp
jtrue() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if ($2) else 1)" "$1"; }
ws=$tmp/ws
mkdir -p "$ws"
for a in 1 2 3 4 5 6 7 8 9 11 13 17; do
  for b in 2 5 7; do printf '{"prompt": "%d+%d=", "completion": "%d"}\n' "$a" "$b" $((a + b)); done
done >"$ws/train.jsonl"
small=(--layers 2 --heads 2 --channels 32 --max-seq 16 --batch 4)
if ! "$ptb" train --init "${small[@]}" --steps 1 --device cuda --data "$ws/train.jsonl" \
  --out "$tmp/probe" -q 2>"$tmp/probe.err"; then
  echo "ptb train --device cuda cannot run here: skipped ($(tail -1 "$tmp/probe.err"))"
  exit 77
fi
if ! "$ptb" record -q --net off --no-capture --store "$tmp/probe.ptb" -- true 2>/dev/null; then
  echo "ptrace is not permitted here: skipped"
  exit 77
fi
"$ptb" train --init "${small[@]}" --steps 3 --data "$ws/train.jsonl" --out "$ws/base" -q ||
  { echo "FAIL: no base model"; exit 1; }
(cd "$ws" && ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
  "$ptb" record -q --net off --store "$tmp/gpu.ptb" --capture-root "$ws" -- \
  "$ptb" train --base base --data train.jsonl --steps 20 --batch 4 --lr 0.01 --seed 5 \
  --device cuda --out out -q) || bad "recording ptb train --device cuda failed"

check "replayed on the GPU" 0 "$ptb" replay train "$tmp/gpu.ptb" --json -q
jtrue "$tmp/out" '[(p["status"], p["device"]) for p in d["processes"]] == [("verified", {"recorded": "cuda", "replayed": "cuda"})]' &&
  ok || bad "GPU replay: $(head -c 2000 "$tmp/out")"
check "replayed on the CPU" 1 "$ptb" replay train "$tmp/gpu.ptb" --device cpu --json -q
cp "$tmp/out" "$tmp/cpu.json"
# the same training on another device: close (relative L2 of each tensor's difference under
# 5% after 20 steps: the sums are taken in another order), not equal
jtrue "$tmp/cpu.json" '(lambda p: p["status"] == "across_devices" and p["device"] == {"recorded": "cuda", "replayed": "cpu"} and all(t["state"] == "values" and (t["rel_l2"] or 0) < 0.05 for f in p["files"] for t in f.get("tensors", {}).get("differing", [])))(d["processes"][0])' &&
  ok || bad "CPU replay: $(head -c 3000 "$tmp/cpu.json")"
python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))["processes"][0]
t=[t for f in p["files"] for t in f.get("tensors", {}).get("differing", [])]
print("cuda vs cpu: %d tensors differ, max |diff| %.3g, max relative L2 %.3g" % (len(t), max([x["max_abs_diff"] for x in t] or [0]), max([x["rel_l2"] or 0 for x in t] or [0])))' "$tmp/cpu.json"
check "replayed on the CPU, text" 1 "$ptb" replay train "$tmp/gpu.ptb" --device cpu -q
grep -q 'ACROSS DEVICES (recorded on cuda, replayed on cpu): not a verification' "$tmp/out" && ok ||
  bad "CPU replay, text: $(cat "$tmp/out")"
finish
