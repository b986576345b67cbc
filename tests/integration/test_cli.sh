#!/usr/bin/env bash
# The ptb binary end to end: import and query --format jsonl are inverses on the example run
# (every event kind), exit codes of the documented error cases, ptb-query by argv[0].
set -u
ptb=$1
src=$2
tmp=$(mktemp -d /tmp/ptb-cli-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
check() { # name expected-exit command...
  local name=$1 want=$2; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"
  local got=$?
  if [ "$got" = "$want" ]; then pass=$((pass + 1)); else
    fail=$((fail + 1)); echo "FAIL: $name: exit $got, wanted $want"; head -5 "$tmp/err"; fi
}
ex=$src/tests/fixtures/example-events.jsonl

check "import example" 0 "$ptb" import --jsonl "$ex" "$tmp/a.ptb"
check "query jsonl" 0 "$ptb" query "$tmp/a.ptb" --format jsonl
if cmp -s "$tmp/out" "$ex"; then pass=$((pass + 1)); else
  fail=$((fail + 1)); echo "FAIL: import | query --format jsonl is not the identity"; fi
# every kind of event.proto a reader sees is in the example, so the identity above covers
# every kind (gpu.kernel_batch is how launches are stored; readers see its gpu.kernel events)
want=$(awk '/oneof body/{on=1; next} on && /}/{on=0} on && /=/ && !/gpu_kernel_batch/{n++} END{print n}' "$src/proto/ptb/v1/event.proto")
have=$("$ptb" stats "$tmp/a.ptb" --format json |
  awk '/"types": *\{/{on=1; next} on && /}/{on=0} on && /: *[1-9]/{n++} END{print n}')
if [ "$have" = "$want" ]; then pass=$((pass + 1)); else
  fail=$((fail + 1)); echo "FAIL: the example has $have of the $want event kinds"; fi
check "stats" 0 "$ptb" stats "$tmp/a.ptb"
# the GPU sums agree with the events: launches per process and per name, bytes copied
grep -q "^gpu kernels:    39 launches" "$tmp/out" && pass=$((pass + 1)) || {
  fail=$((fail + 1)); echo "FAIL: stats: no or wrong GPU kernel total"; }
"$ptb" stats "$tmp/a.ptb" --format json >"$tmp/sj"
"$ptb" query "$tmp/a.ptb" --format jsonl 'evt.type = gpu.kernel' >"$tmp/k.jsonl"
"$ptb" query "$tmp/a.ptb" --format jsonl 'evt.type = gpu.memcpy' >"$tmp/m.jsonl"
if python3 - "$tmp/sj" "$tmp/k.jsonl" "$tmp/m.jsonl" <<'PY'; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: stats: GPU sums differ from the events"; fi
import collections, json, sys
g = json.load(open(sys.argv[1]))["gpu"]
ks = [json.loads(l) for l in open(sys.argv[2])]
ms = [json.loads(l) for l in open(sys.argv[3])]
byp = collections.Counter(k["exec_id"] for k in ks)
byn = collections.Counter(k["name"] for k in ks)
ns = sum(k["end_ns"] - k["start_ns"] for k in ks)
cp = collections.Counter()
for m in ms:
    cp[m["kind"]] += m["bytes"]
assert g["kernels"] == len(ks) and g["kernel_ns"] == ns, (g["kernels"], len(ks))
assert {r["exec_id"]: r["count"] for r in g["by_process"]} == dict(byp)
assert {r["name"]: r["count"] for r in g["by_name"]} == dict(byn)
assert {r["kind"]: r["bytes"] for r in g["copies"] if r["kind"] != "memset"} == dict(cp)
PY
# importing the export again gives the same events, so the same hash chain
"$ptb" query "$tmp/a.ptb" --format jsonl >"$tmp/a.jsonl"
# the Perfetto trace: valid JSON, a slice per kernel, copy, flow and process exit, tool calls paired
check "export perfetto" 0 "$ptb" export --perfetto "$tmp/trace.json" "$tmp/a.ptb"
if python3 - "$tmp/trace.json" "$tmp/a.jsonl" <<'PY'; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: export --perfetto: trace differs from the events"; fi
import collections, json, sys
tr = json.load(open(sys.argv[1]))["traceEvents"]
evs = [json.loads(l) for l in open(sys.argv[2])]
cats = collections.Counter(e.get("cat") for e in tr if e["ph"] == "X")
types = collections.Counter(e["type"] for e in evs)
assert cats["gpu.kernel"] == types["gpu.kernel"], (cats, types)
assert cats["gpu.memcpy"] == types["gpu.memcpy"] and cats["gpu.memset"] == types["gpu.memset"]
assert cats["net.flow"] == types["net.flow"] and cats["process"] == types["proc.exit"]
b = sorted(e["id"] for e in tr if e["ph"] == "b")
assert b == sorted(e["id"] for e in tr if e["ph"] == "e") and len(b) == types["tool.call"]
names = {e["args"]["name"] for e in tr if e["ph"] == "M" and e["name"] == "process_name"}
assert len(names) == types["proc.exec"] + 1, names
PY
check "re-import" 0 "$ptb" import --jsonl "$tmp/a.jsonl" "$tmp/b.ptb"
"$ptb" stats "$tmp/a.ptb" | grep "chain head" >"$tmp/ha"
"$ptb" stats "$tmp/b.ptb" | grep "chain head" >"$tmp/hb"
if cmp -s "$tmp/ha" "$tmp/hb"; then pass=$((pass + 1)); else
  fail=$((fail + 1)); echo "FAIL: the re-imported store has another chain head"; fi
check "verify" 0 "$ptb" verify "$tmp/a.ptb"
check "ptb-query by argv[0]" 0 "$(dirname "$ptb")/ptb-query" "$tmp/a.ptb" 'evt.type = tool.call'
grep -q "tool.call" "$tmp/out" && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: ptb-query printed no tool.call"; }
check "count" 0 "$ptb" query "$tmp/a.ptb" --format count 'evt.type = gpu.kernel'

# errors
check "bad filter" 2 "$ptb" query "$tmp/a.ptb" 'evt.type = '
grep -q "filter:" "$tmp/err" || { fail=$((fail + 1)); echo "FAIL: bad filter message has no column"; }
check "unknown option" 2 "$ptb" query "$tmp/a.ptb" --frobnicate
check "missing store" 3 "$ptb" query "$tmp/nope.ptb"
mkdir "$tmp/empty"
check "not a store" 3 "$ptb" query "$tmp/empty"
check "verify missing" 3 "$ptb" verify "$tmp/nope.ptb"
check "import over existing" 5 "$ptb" import --jsonl "$ex" "$tmp/a.ptb"
head -20 "$ex" >"$tmp/bad.jsonl"
echo '{"type":"file.write","bytes":"many"}' >>"$tmp/bad.jsonl"
tail -5 "$ex" >>"$tmp/bad.jsonl"
check "import bad line" 4 "$ptb" import --jsonl "$tmp/bad.jsonl" "$tmp/c.ptb"
grep -q "bad.jsonl:21" "$tmp/err" || { fail=$((fail + 1)); echo "FAIL: bad line not named FILE:LINE"; }
check "import --skip-bad" 0 "$ptb" import --skip-bad --jsonl "$tmp/bad.jsonl" "$tmp/d.ptb"
check "skip-bad gap" 0 "$ptb" query "$tmp/d.ptb" --format count 'evt.type = gap and gap.reason = bad_line'
grep -qx 1 "$tmp/out" || { fail=$((fail + 1)); echo "FAIL: --skip-bad recorded no gap"; }
check "unknown command" 2 "$ptb" frobnicate
check "help" 0 "$ptb" query --help

# ptb demo's command line (the demo itself runs in test_demo: minutes): a bad option, a
# scenario that does not exist, a folder that is not a demo's
check "demo bad option" 2 "$ptb" demo --nope
check "demo bad scenario" 2 "$ptb" demo --scenario nope
mkdir -p "$tmp/notdemo" && touch "$tmp/notdemo/x"
check "demo non-demo folder" 2 "$ptb" demo --out "$tmp/notdemo"
grep -q "not a demo folder" "$tmp/err" && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: demo folder message: $(cat "$tmp/err")"; }

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
