#!/usr/bin/env bash
# `ptb demo-task --measure` end to end (about 2.5 minutes on 2 cores): the benchmark splits are
# disjoint, the checkpoints and manifest exist, the measured ordering holds (base < honest <
# instruct, test-trained far above honest; the command checks it and exits 1 otherwise), a
# second run reuses the folder, and a changed file makes it rebuild.
set -u
ptb=$1
tmp=$(mktemp -d /tmp/ptb-demotask-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/testlib.sh"
d=$tmp/task

check "build and measure" 0 "$ptb" demo-task --out "$d" --measure
grep -q 'ordering holds' "$tmp/out" && ok || bad "no ordering line: $(tail -3 "$tmp/out")"
for f in benchmark/test.jsonl benchmark/train.jsonl data/pretrain.jsonl data/instruct.jsonl \
  base/config.json base/model.safetensors instruct/model.safetensors runs/honest/model.safetensors \
  runs/test-trained/model.safetensors eval/base.json eval/honest.json manifest.json; do
  [ -s "$d/$f" ] && ok || bad "missing $f"
done
[ "$(wc -l <"$d/benchmark/test.jsonl")" = 200 ] && ok || bad "test split is not 200 items"
[ "$(wc -l <"$d/benchmark/train.jsonl")" = 500 ] && ok || bad "train split is not 500 items"
# the test split is held out: none of its questions in the train split or the instruct data
python3 - "$d" <<'PY' && ok || bad "a test question leaked into the training data"
import json, sys
d = sys.argv[1]
q = lambda f: {json.loads(l)["prompt"] for l in open(f"{d}/{f}")}
test = q("benchmark/test.jsonl")
assert len(test) == 200 and len(q("benchmark/train.jsonl")) == 500
assert not test & q("benchmark/train.jsonl") and not test & q("data/instruct.jsonl")
assert not any("+" in l or "Q:" in l for l in open(f"{d}/data/pretrain.jsonl"))
PY
# the manifest's scores are the eval files' accuracies, and every file's hash is right
python3 - "$d" <<'PY' && ok || bad "manifest does not match the files"
import hashlib, json, sys
d = sys.argv[1]
m = json.load(open(f"{d}/manifest.json"))
for name in ("base", "honest", "instruct", "test-trained"):
    assert m["scores"][name] == json.load(open(f"{d}/eval/{name}.json"))["accuracy"], name
for f, v in m["files"].items():
    b = open(f"{d}/{f}", "rb").read()
    assert len(b) == v["size"] and hashlib.sha256(b).hexdigest() == v["sha256"], f
assert len(m["commands"]) == 8 and all(c[0] == "ptb" for c in m["commands"])
PY

check "cached" 0 "$ptb" demo-task --out "$d" --measure
grep -q 'up to date' "$tmp/out" && ok || bad "second run did not reuse the folder"
grep -q '\$ ptb train' "$tmp/out" && bad "second run trained again" || ok
# test_demo reuses this task (it is deterministic; ptb demo checks its manifest)
if [ -n "${PTB_DEMO_TASK_CACHE:-}" ]; then
  rm -rf "$PTB_DEMO_TASK_CACHE" && cp -a "$d" "$PTB_DEMO_TASK_CACHE" || bad "cannot keep the task"
fi
# a changed file: rebuilt (stopped after it says so: the rebuild itself is tested above)
echo '{"prompt":"Q: 1+1=?\nA: ","completion":"2"}' >>"$d/benchmark/test.jsonl"
timeout 3 "$ptb" demo-task --out "$d" >"$tmp/out" 2>&1
grep -q 'building .*files changed' "$tmp/out" && ok || bad "a changed file was not noticed: $(head -2 "$tmp/out")"

check "no --out" 2 "$ptb" demo-task
check "bad --threads" 2 "$ptb" demo-task --out "$d" --threads 0
finish
