#!/usr/bin/env bash
# ptb refs with the real binary: add (with and without --base), list, rm, and the errors a user
# meets (a name taken or invalid, a folder that is not a checkpoint, one that does not exist, a
# missing --ref for ptb audit), with their exit codes (docs/commands/ptb-refs.md).
set -u
ptb=$1
T=$(mktemp -d /tmp/test_refs.XXXXXX)
trap 'rm -rf "$T"' EXIT
export PTB_REFS_DIR=$T/refs
fail=0
check() { # check WHAT EXPECTED_RC ACTUAL_RC
  if [ "$2" != "$3" ]; then echo "FAIL: $1: exit $3, expected $2"; fail=$((fail + 1)); else echo "ok: $1"; fi
}
# two checkpoints of two F32 tensors: the reference = the base + 0.01 on every element
python3 - "$T" <<'PY'
import json, os, struct, sys
def write(d, bias):
    os.makedirs(d)
    a = [0.01 * i + bias for i in range(64)]; b = [-0.02 * i + bias for i in range(32)]
    hdr = {"a": {"dtype": "F32", "shape": [8, 8], "data_offsets": [0, 256]},
           "b": {"dtype": "F32", "shape": [32], "data_offsets": [256, 384]}}
    h = json.dumps(hdr, separators=(",", ":")).encode(); h += b" " * (-len(h) % 8)
    with open(d + "/model.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + struct.pack("<96f", *(a + b)))
write(sys.argv[1] + "/base", 0.0)
write(sys.argv[1] + "/ref", 0.01)
PY
mkdir "$T/empty"
out=$("$ptb" refs add inst "$T/ref" --base "$T/base" 2>&1); check "add with --base" 0 $?
echo "$out" | grep -q "2 tensors" || { echo "FAIL: add said: $out"; fail=$((fail + 1)); }
"$ptb" refs add ids "$T/ref" >/dev/null 2>&1; check "add without --base" 0 $?
err=$("$ptb" refs add inst "$T/ref" 2>&1); check "name taken" 1 $?
echo "$err" | grep -q "already stored" || { echo "FAIL: $err"; fail=$((fail + 1)); }
err=$("$ptb" refs add x "$T/empty" 2>&1); check "not a checkpoint folder" 1 $?
echo "$err" | grep -q "not a safetensors checkpoint folder" || { echo "FAIL: $err"; fail=$((fail + 1)); }
"$ptb" refs add x "$T/nonexistent" >/dev/null 2>&1; check "missing folder" 5 $?
"$ptb" refs add .x "$T/ref" >/dev/null 2>&1; check "bad name" 2 $?
"$ptb" refs add y "$T/ref" --sketch 0 >/dev/null 2>&1; check "--sketch 0" 2 $?
"$ptb" refs list --base "$T/base" >/dev/null 2>&1; check "--base with list" 2 $?
list=$("$ptb" refs list); check "list" 0 $?
[ "$(echo "$list" | awk 'NR > 1 {print $1}' | tr '\n' ' ')" = "ids inst " ] ||
  { echo "FAIL: list: $list"; fail=$((fail + 1)); }
[ -f "$T/refs/inst/ref.json" ] && [ -f "$T/refs/inst/sketch.safetensors" ] ||
  { echo "FAIL: no ref.json or sketch in $T/refs/inst"; fail=$((fail + 1)); }
"$ptb" audit "$T/nostore.ptb" --ref nope >/dev/null 2>&1; check "audit --ref not kept" 2 $?
"$ptb" refs rm inst >/dev/null; check "rm" 0 $?
"$ptb" refs rm inst >/dev/null 2>&1; check "rm again" 1 $?
"$ptb" refs --refs "$T/other" list | grep -q NAME; check "--refs DIR" 0 $?
echo "$fail failed"
[ "$fail" -eq 0 ]
