#!/usr/bin/env bash
# `ptb train` end to end: a new model and a fine-tune from it, bit-identical checkpoints for the
# same command (and for 1 and 2 threads), a loss that falls, and the documented exit codes of bad
# data, a missing or damaged base checkpoint and bad options.
set -u
ptb=$1
tmp=$(mktemp -d /tmp/ptb-train-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/testlib.sh"
# additions as prompt/completion records
for a in 1 2 3 4 5 6 7 8 9 11 13 17 21 24; do
  for b in 2 5 7 9; do
    printf '{"prompt": "%d+%d=", "completion": "%d"}\n' "$a" "$b" $((a + b))
  done
done >"$tmp/train.jsonl"
small=(--init --layers 2 --heads 2 --channels 32 --max-seq 16 --steps 30 --batch 4 --lr 0.005)

check "train a new model" 0 "$ptb" train "${small[@]}" --data "$tmp/train.jsonl" --out "$tmp/a"
[ -f "$tmp/a/config.json" ] && [ -f "$tmp/a/model.safetensors" ] && ok || bad "no checkpoint files"
# the loss falls: first and last progress lines (not a terminal: one line per tenth)
first=$(grep -o 'loss [0-9.]*' "$tmp/err" | head -1 | cut -d' ' -f2)
last=$(grep -o 'loss [0-9.]*' "$tmp/err" | tail -1 | cut -d' ' -f2)
python3 -c "import sys; sys.exit(0 if float('$last') < 0.8 * float('$first') else 1)" && ok ||
  bad "loss did not fall: $first -> $last"
grep -q 'wrote' "$tmp/err" && ok || bad "no summary line"
check "the same again" 0 "$ptb" train "${small[@]}" --data "$tmp/train.jsonl" --out "$tmp/b" --quiet
cmp -s "$tmp/a/model.safetensors" "$tmp/b/model.safetensors" && ok || bad "same seed, other weights"
cmp -s "$tmp/a/config.json" "$tmp/b/config.json" && ok || bad "same seed, other config.json"
[ -s "$tmp/out" ] && bad "--quiet printed: $(head -2 "$tmp/out")" || ok
check "one thread" 0 "$ptb" train "${small[@]}" --data "$tmp/train.jsonl" --out "$tmp/c" --threads 1 -q
cmp -s "$tmp/a/model.safetensors" "$tmp/c/model.safetensors" && ok || bad "1 thread gives other weights"
check "another seed" 0 "$ptb" train "${small[@]}" --data "$tmp/train.jsonl" --out "$tmp/d" --seed 9 -q
cmp -s "$tmp/a/model.safetensors" "$tmp/d/model.safetensors" && bad "another seed, same weights" || ok
check "fine-tune" 0 "$ptb" train --base "$tmp/a" --data "$tmp/train.jsonl" --steps 5 --out "$tmp/e" -q
cmp -s "$tmp/a/config.json" "$tmp/e/config.json" && ok || bad "fine-tune changed the config"

# bad input
printf '{"prompt": "1+1=", "completion": "2"}\n{"prompt": 3}\n' >"$tmp/bad.jsonl"
check "bad data line" 4 "$ptb" train "${small[@]}" --data "$tmp/bad.jsonl" --out "$tmp/x"
grep -q 'bad.jsonl:2' "$tmp/err" && ok || bad "no line number: $(cat "$tmp/err")"
check "no data file" 3 "$ptb" train "${small[@]}" --data "$tmp/none.jsonl" --out "$tmp/x"
check "no base" 3 "$ptb" train --base "$tmp/none" --data "$tmp/train.jsonl" --out "$tmp/x"
mkdir -p "$tmp/broken" && cp "$tmp/a/config.json" "$tmp/broken/" &&
  head -c 1000 "$tmp/a/model.safetensors" >"$tmp/broken/model.safetensors"
check "damaged base" 4 "$ptb" train --base "$tmp/broken" --data "$tmp/train.jsonl" --out "$tmp/x"
check "base and init" 2 "$ptb" train --base "$tmp/a" --init --data "$tmp/train.jsonl" --out "$tmp/x"
check "neither" 2 "$ptb" train --data "$tmp/train.jsonl" --out "$tmp/x"
check "no out" 2 "$ptb" train --init --data "$tmp/train.jsonl"
check "bad steps" 2 "$ptb" train --init --steps 0 --data "$tmp/train.jsonl" --out "$tmp/x"
check "bad lr" 2 "$ptb" train --init --lr nan --data "$tmp/train.jsonl" --out "$tmp/x"
check "heads" 2 "$ptb" train --init --heads 3 --channels 32 --data "$tmp/train.jsonl" --out "$tmp/x"
check "seq over the model" 2 "$ptb" train --base "$tmp/a" --seq 17 --data "$tmp/train.jsonl" --out "$tmp/x"
check "device" 2 "$ptb" train --init --device tpu --data "$tmp/train.jsonl" --out "$tmp/x"
check "bf16 on the cpu" 2 "$ptb" train --init --precision bf16 --data "$tmp/train.jsonl" --out "$tmp/x"
check "precision" 2 "$ptb" train --init --device cuda --precision fp8 --data "$tmp/train.jsonl" \
  --out "$tmp/x"
# --device cuda: trains where the backend and a GPU are there (tests/gpu/run.sh lm proves it on
# one); elsewhere exit 5 with the reason, and no checkpoint
PTB_LM_CUDA_LIB=/nonexistent/libptblmcuda.so "$ptb" train "${small[@]}" --device cuda \
  --data "$tmp/train.jsonl" --out "$tmp/cuda-missing" >"$tmp/out" 2>"$tmp/err"
[ $? = 5 ] && grep -q 'PTB_LM_CUDA_LIB=/nonexistent/libptblmcuda.so: cannot read it' "$tmp/err" &&
  [ ! -e "$tmp/cuda-missing" ] && ok || bad "missing CUDA backend: $(cat "$tmp/err")"
"$ptb" train "${small[@]}" --device cuda --data "$tmp/train.jsonl" --out "$tmp/cuda" \
  >"$tmp/out" 2>"$tmp/err"
got=$?
if [ $got = 0 ]; then
  [ -f "$tmp/cuda/model.safetensors" ] && ok || bad "--device cuda wrote no checkpoint"
else
  [ $got = 5 ] && grep -q -- '--device cuda: .*\(CUDA\|cuda\|GPU\|device\)' "$tmp/err" && ok ||
    bad "--device cuda without a GPU: exit $got, $(cat "$tmp/err")"
fi
[ -e "$tmp/x" ] && bad "a failed run left $tmp/x" || ok
finish
