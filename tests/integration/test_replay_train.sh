#!/usr/bin/env bash
# ptb replay train on real recordings of ptb train (a tiny model, a few steps): an honest run
# verifies bit for bit (text and --json, one thread or two); a `ptb` that is a script training
# with another seed, and one that copies in a checkpoint from elsewhere, are reported tensor by
# tensor with the sizes of the differences; inputs the store lacks (not captured, outside the
# capture roots, changed since) make a run not replayable, with the list, until --fill-from or
# the right file gives them back; a run recorded on cuda says whether this machine can replay
# it; bad command lines and stores give their exit codes. Skipped (77) without ptrace.
set -u
ptb=$(realpath "$1")
tmp=$(mktemp -d /tmp/ptb-replay-train-XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
. "$(dirname "$0")/testlib.sh"
export TMPDIR=$tmp # default work folders land here and go with it
if ! "$ptb" record -q --net off --no-capture --store "$tmp/probe.ptb" -- true 2>/dev/null; then
  echo "ptrace is not permitted here: skipped"
  exit 77
fi
# jtrue FILE EXPR: python EXPR on the JSON of FILE (as d) is true
jtrue() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if ($2) else 1)" "$1"; }

ws=$tmp/ws
mkdir -p "$ws"
for a in 1 2 3 4 5 6 7 8 9 11 13 17; do
  for b in 2 5 7; do printf '{"prompt": "%d+%d=", "completion": "%d"}\n' "$a" "$b" $((a + b)); done
done >"$ws/train.jsonl"
"$ptb" train --init --layers 1 --heads 2 --channels 16 --max-seq 16 --steps 2 --batch 4 \
  --data "$ws/train.jsonl" --out "$ws/base" -q || { echo "FAIL: no base model"; exit 1; }
# a checkpoint of another shape, outside the workspace (the substitution cheat copies it in)
"$ptb" train --init --layers 2 --heads 2 --channels 32 --max-seq 16 --steps 2 --batch 4 \
  --data "$ws/train.jsonl" --out "$tmp/other" -q || { echo "FAIL: no other model"; exit 1; }
train=(train --base base --data train.jsonl --steps 4 --batch 4 --lr=0.01 --seed 1 -q)
# rec STORE [record options] -- CMD...: ptb record in the workspace, its root the workspace
rec() {
  local s=$1
  shift
  # (LeakSanitizer cannot run in a traced process: off for the recorded ptb of an ASan build)
  (cd "$ws" && ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
    "$ptb" record -q --net off --store "$s" --capture-root "$ws" "$@") ||
    bad "recording $s failed"
}

# 1. an honest run verifies
rec "$tmp/honest.ptb" -- "$ptb" "${train[@]}" --out out1
check "honest run" 0 "$ptb" replay train "$tmp/honest.ptb" --work "$tmp/w1"
grep -q 'bit-identical: the checkpoint comes from this training run' "$tmp/out" && ok ||
  bad "no verdict: $(cat "$tmp/out")"
grep -q 'ptb train: wrote' "$tmp/err" && ok || bad "the training's output was not shown"
[ -f "$tmp/w1/exec-1/new/model.safetensors" ] && [ -f "$tmp/w1/exec-1/recorded/model.safetensors" ] &&
  [ -f "$tmp/w1/exec-1/inputs$ws/base/model.safetensors" ] && ok || bad "work folder: $(find "$tmp/w1" | head)"
check "honest run, --json, one thread" 0 "$ptb" replay train "$tmp/honest.ptb" --json --threads 1 -q
cp "$tmp/out" "$tmp/honest.json"
jtrue "$tmp/honest.json" 'd["verified"] and d["commands"] == 1 and d["work"].startswith("/")' && ok ||
  bad "--json: $(head -c 600 "$tmp/honest.json")"
jtrue "$tmp/honest.json" '[(p["status"], p["device"]["replayed"], sorted((f["path"], f["state"]) for f in p["files"])) for p in d["processes"]] == [("verified", "cpu", [("config.json", "identical"), ("model.safetensors", "identical")])]' &&
  ok || bad "--json processes: $(head -c 900 "$tmp/honest.json")"
jtrue "$tmp/honest.json" '"--threads" in d["processes"][0]["replay"]["argv"] and d["processes"][0]["replay"]["exit"] == 0 and all(i["rebuilt"] for i in d["processes"][0]["inputs"])' &&
  ok || bad "--json replay part: $(head -c 900 "$tmp/honest.json")"
[ -s "$tmp/err" ] && bad "-q printed: $(head -3 "$tmp/err")" || ok
check "--process" 0 "$ptb" replay train "$tmp/honest.ptb" --process 1 -q
# a folder whose name is not UTF-8: in the JSON as \xHH
rec "$tmp/bytes.ptb" -- "$ptb" "${train[@]}" --out $'out\xff'
check "a path that is not UTF-8" 0 "$ptb" replay train "$tmp/bytes.ptb" --json -q
jtrue "$tmp/out" 'd["processes"][0]["out"].endswith("/out\\xff") and d["verified"]' && ok ||
  bad "not UTF-8: $(head -c 1500 "$tmp/out")"
# the checkpoint replaced after the training: verified, and said
rec "$tmp/later.ptb" -- sh -c "$ptb ${train[*]} --out out8 && cp out1/model.safetensors out8/"
check "changed afterwards" 0 "$ptb" replay train "$tmp/later.ptb" --json -q
jtrue "$tmp/out" '(lambda p: p["status"] == "verified" and p["changed_after"] == 1 and "changed it afterwards" in p["summary"] and any(n["path"].endswith("/out8/model.safetensors") and "written by exec 3" in n["why"] for n in p["notes"]))(d["processes"][0])' &&
  ok || bad "changed afterwards: $(head -c 2000 "$tmp/out")"

# 2. a `ptb` first in PATH that trains with --seed 2 whatever the command says
mkdir -p "$ws/bin"
cat >"$ws/bin/ptb" <<EOF
#!/bin/sh
# the real ptb, with another seed
for a in "\$@"; do shift; [ "\${prev:-}" = --seed ] && a=2; prev=\$a; set -- "\$@" "\$a"; done
exec "$ptb" "\$@"
EOF
chmod +x "$ws/bin/ptb"
rec "$tmp/seed.ptb" -- env "PATH=$ws/bin:$PATH" sh -c "ptb ${train[*]} --out out2"
check "another seed" 1 "$ptb" replay train "$tmp/seed.ptb" --json -q
cp "$tmp/out" "$tmp/seed.json"
# the script (exec 3: env 1, sh 2) differs; the real ptb it ran (exec 4, --seed 2) verifies
jtrue "$tmp/seed.json" '[(p["exec_id"], p["status"]) for p in d["processes"]] == [(3, "differs"), (4, "verified")] and not d["verified"]' &&
  ok || bad "seed cheat: $(head -c 1500 "$tmp/seed.json")"
jtrue "$tmp/seed.json" '[t for f in d["processes"][0]["files"] if f["path"] == "model.safetensors" for t in f["tensors"]["differing"] if t["state"] == "values" and 0 < t["differ"] <= t["elements"] and t["max_abs_diff"] > 0 and t["rel_l2"] > 0 and t["bytes_differ"] > 0] and d["processes"][0]["bytes_differ"] > 0' &&
  ok || bad "seed cheat, sizes: $(head -c 3000 "$tmp/seed.json")"
jtrue "$tmp/seed.json" '{"key": "ptb.train.seed", "recorded": "2", "replayed": "1"} in d["processes"][0]["files"][1]["tensors"]["metadata"] and d["processes"][0]["program"]["run_by"].endswith("sh") and d["processes"][1]["inside"] == 3' &&
  ok || bad "seed cheat, metadata: $(head -c 3000 "$tmp/seed.json")"
check "another seed, text" 1 "$ptb" replay train "$tmp/seed.ptb" --process 3 -q
grep -q 'DIFFERENT: this command does not give the recorded checkpoint' "$tmp/out" &&
  grep -q 'metadata ptb.train.seed: recorded 2, replayed 1' "$tmp/out" &&
  grep -Eq '^ +wte +[0-9]+ +[0-9]+ +[0-9.e-]+ +[0-9.e-]+' "$tmp/out" &&
  grep -q 'written by exec 4' "$tmp/out" && ok || bad "seed cheat, text: $(cat "$tmp/out")"
check "not a train process" 2 "$ptb" replay train "$tmp/seed.ptb" --process 2
grep -q 'not a ptb train command' "$tmp/err" && grep -q 'exec 3:' "$tmp/err" && grep -q 'exec 4:' "$tmp/err" &&
  ok || bad "--process of sh: $(cat "$tmp/err")"
check "no such process" 2 "$ptb" replay train "$tmp/seed.ptb" --process 999

# 3. a `ptb` that copies in a checkpoint of another shape
cat >"$ws/bin/ptb" <<EOF
#!/bin/sh
while [ \$# -gt 0 ]; do [ "\$1" = --out ] && out=\$2; shift; done
mkdir -p "\$out" && cp "$tmp/other/config.json" "$tmp/other/model.safetensors" "\$out/"
EOF
rec "$tmp/swap.ptb" -- env "PATH=$ws/bin:$PATH" sh -c "ptb ${train[*]} --out out3"
check "substituted checkpoint" 1 "$ptb" replay train "$tmp/swap.ptb" --json -q
cp "$tmp/out" "$tmp/swap.json"
jtrue "$tmp/swap.json" '[p["status"] for p in d["processes"]] == ["differs"]' && ok || bad "swap: $(head -c 1500 "$tmp/swap.json")"
jtrue "$tmp/swap.json" '(lambda t: t["only_recorded"] > 0 and t["layout"] > 0 and any(x["state"] == "layout" and x["recorded"] == "F32 [257, 32]" and x["replayed"] == "F32 [257, 16]" for x in t["differing"]))(d["processes"][0]["files"][1]["tensors"])' &&
  ok || bad "swap, tensors: $(head -c 3000 "$tmp/swap.json")"
jtrue "$tmp/swap.json" '(lambda f: f["state"] == "differs" and f["bytes_differ"] > 0 and "tensors" not in f)(d["processes"][0]["files"][0])' &&
  ok || bad "swap, config.json: $(head -c 2000 "$tmp/swap.json")"

# 4. inputs the store lacks
rec "$tmp/capped.ptb" --capture-file-max 4K -- "$ptb" "${train[@]}" --out out4
check "base not captured" 1 "$ptb" replay train "$tmp/capped.ptb" --json -q
cp "$tmp/out" "$tmp/capped.json"
jtrue "$tmp/capped.json" '(lambda p: p["status"] == "not_replayable" and "replay" not in p and len(p["reasons"]) == 1 and p["reasons"][0]["path"].endswith("/ws/base/model.safetensors") and "--fill-from" in p["reasons"][0]["why"])(d["processes"][0])' &&
  ok || bad "not captured: $(head -c 1500 "$tmp/capped.json")"
check "base not captured, text" 1 "$ptb" replay train "$tmp/capped.ptb" -q
grep -q "NOT REPLAYABLE: $ws/base/model.safetensors: --base: its content was not captured" "$tmp/out" &&
  ok || bad "not captured, text: $(cat "$tmp/out")"
check "--fill-from the workspace" 0 "$ptb" replay train "$tmp/capped.ptb" --fill-from "$ws" -q
grep -q 'files taken from --fill-from' "$tmp/out" && grep -q 'compared by SHA-256 only' "$tmp/out" &&
  ok || bad "--fill-from: $(cat "$tmp/out")"
rec "$tmp/capped2.ptb" --capture-file-max 100 -- "$ptb" "${train[@]}" --out out9
check "nothing captured" 1 "$ptb" replay train "$tmp/capped2.ptb" -q
grep -q 'NOT REPLAYABLE for the 3 reasons listed' "$tmp/out" && grep -q "^    $ws/train.jsonl: --data: its content was not captured" "$tmp/out" &&
  grep -q '^1 training command: 0 verified, 1 not replayable; work folder' "$tmp/out" && ok ||
  bad "nothing captured: $(cat "$tmp/out")"
cp -r "$ws" "$tmp/ws-changed"
printf 'x' >>"$tmp/ws-changed/base/model.safetensors"
check "--fill-from a changed copy" 1 "$ptb" replay train "$tmp/capped.ptb" --fill-from "$tmp/ws-changed" -q
grep -q 'no file of that hash under --fill-from' "$tmp/out" && ok || bad "changed --fill-from: $(cat "$tmp/out")"
# outside the capture roots: a file only read (no hash) is not replayable; one the run wrote
# (hashed) is used in place while it is unchanged
cp "$ws/train.jsonl" "$tmp/read-only.jsonl"
rec "$tmp/outside.ptb" -- "$ptb" train --base base --data "$tmp/read-only.jsonl" --steps 2 --out out5 -q
check "outside, only read" 1 "$ptb" replay train "$tmp/outside.ptb" -q
grep -q "$tmp/read-only.jsonl: --data: outside the capture roots, and the store has no hash of it" "$tmp/out" &&
  ok || bad "outside, read: $(cat "$tmp/out")"
mkdir -p "$tmp/elsewhere"
rec "$tmp/written.ptb" -- sh -c "cp train.jsonl $tmp/elsewhere/d.jsonl && $ptb train --base base --data $tmp/elsewhere/d.jsonl --steps 2 --out out6 -q"
check "outside, written" 0 "$ptb" replay train "$tmp/written.ptb" --json -q
jtrue "$tmp/out" '[i["rebuilt"] for i in d["processes"][0]["inputs"]] == [True, False]' && ok ||
  bad "outside, written: $(head -c 1500 "$tmp/out")"
echo '{"prompt": "1+1=", "completion": "2"}' >>"$tmp/elsewhere/d.jsonl"
check "outside, changed since" 1 "$ptb" replay train "$tmp/written.ptb" -q
grep -q 'the file here is not the recorded one' "$tmp/out" && ok || bad "outside, changed: $(cat "$tmp/out")"

# 5. recorded on cuda (a `ptb` that says --device cuda and trains on the CPU)
cat >"$ws/bin/ptb" <<EOF
#!/bin/sh
for a in "\$@"; do shift; [ "\$a" = cuda ] && a=cpu; set -- "\$@" "\$a"; done
exec "$ptb" "\$@"
EOF
rec "$tmp/cuda.ptb" -- env "PATH=$ws/bin:$PATH" sh -c "ptb ${train[*]} --device cuda --out out7"
# with a GPU the replay runs on it (and differs: the recorded run trained on the CPU); without
# one it is not replayable here, and says how to replay it
check "recorded cuda" 1 "$ptb" replay train "$tmp/cuda.ptb" --process 3 -q
if grep -q 'NOT REPLAYABLE' "$tmp/out"; then
  grep -q 'NOT REPLAYABLE: recorded on cuda; this machine cannot run --device cuda: .*`--device cpu` replays it' "$tmp/out" &&
    ok || bad "recorded cuda, no GPU: $(cat "$tmp/out")"
else
  grep -q DIFFERENT "$tmp/out" && grep -q 'device cuda (recorded cuda)' "$tmp/out" &&
    ok || bad "recorded cuda on a GPU: $(cat "$tmp/out")"
fi
check "recorded cuda, --device cpu" 1 "$ptb" replay train "$tmp/cuda.ptb" --process 3 --device cpu -q
grep -q 'ACROSS DEVICES (recorded on cuda, replayed on cpu): not a verification; bit-identical all the same' "$tmp/out" &&
  ok || bad "--device cpu: $(cat "$tmp/out")"

# 6. a `ptb` that takes an option ptb train does not know, and --steps 0 (which ptb train
# refuses): not replayable, and a replay that fails; the real ptb each runs verifies
cat >"$ws/bin/ptb" <<EOF
#!/bin/sh
for a in "\$@"; do shift; [ "\$a" = --magic ] && continue; [ "\${prev:-}" = --steps ] && a=2; prev=\$a; set -- "\$@" "\$a"; done
exec "$ptb" "\$@"
EOF
rec "$tmp/odd.ptb" -- env "PATH=$ws/bin:$PATH" sh -c \
  "ptb ${train[*]} --magic --out o10; ptb train --base base --data train.jsonl --steps 0 --out o11 -q"
check "unknown option, --steps 0" 1 "$ptb" replay train "$tmp/odd.ptb" --json -q
jtrue "$tmp/out" '[p["status"] for p in d["processes"]] == ["not_replayable", "verified", "replay_failed", "verified"] and "unknown option '"'"'--magic'"'"'" in d["processes"][0]["summary"] and d["processes"][2]["replay"]["exit"] == 2' &&
  ok || bad "odd: $(head -c 3000 "$tmp/out")"

# 7. bad command lines and stores
mkdir -p "$tmp/full" && touch "$tmp/full/x"
check "--work not empty" 2 "$ptb" replay train "$tmp/honest.ptb" --work "$tmp/full"
grep -q 'is not empty' "$tmp/err" && ok || bad "--work: $(cat "$tmp/err")"
check "--device tpu" 2 "$ptb" replay train "$tmp/honest.ptb" --device tpu
check "--fill-from missing" 2 "$ptb" replay train "$tmp/honest.ptb" --fill-from "$tmp/none"
check "no store" 3 "$ptb" replay train "$tmp/none.ptb"
check "no training in the store" 1 "$ptb" replay train "$tmp/probe.ptb"
grep -q 'no ptb train command' "$tmp/err" && ok || bad "no training: $(cat "$tmp/err")"
finish
