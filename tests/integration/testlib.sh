# Shared by the shell integration tests: source it after setting tmp (a scratch directory).
#   ok; bad MESSAGE          count a pass / a failure (printed)
#   check NAME CODE CMD...   run CMD (stdout in $tmp/out, stderr in $tmp/err), expect exit CODE
#   field FILE KEY           a top-level value of a JSON file
#   finish                   print the counts; exit status 0 when nothing failed
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() {
  local name=$1 want=$2; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"
  local got=$?
  if [ "$got" = "$want" ]; then ok; else bad "$name: exit $got, wanted $want"; head -5 "$tmp/err"; fi
}
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }
finish() {
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ]
}
