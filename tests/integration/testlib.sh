# Shared by the shell integration tests: source it after setting tmp (a scratch directory).
#   ok; bad MESSAGE          count a pass / a failure (printed)
#   check NAME CODE CMD...   run CMD (stdout in $tmp/out, stderr in $tmp/err), expect exit CODE
#   field FILE KEY           a top-level value of a JSON file
#   finish                   print the counts; exit status 0 when nothing failed
#   demo_setup PTB DIR       for ptb demo tests: exit 77 without python3/openssl/curl or ptrace;
#                            DIR made a demo folder holding $PTB_DEMO_TASK_CACHE's task, if any
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
demo_setup() {
  local t
  for t in python3 openssl curl; do
    command -v $t >/dev/null || { echo "no $t: skipped"; exit 77; }
  done
  if ! "$1" record -q --net off --store "$tmp/probe.ptb" -- true 2>/dev/null; then
    echo "ptrace is not permitted here: skipped"; exit 77
  fi
  # the task test_demo_task built, when there is one (ptb demo checks its manifest; otherwise it
  # builds the task itself, minutes more)
  if [ -f "${PTB_DEMO_TASK_CACHE:-/nonexistent}/manifest.json" ]; then
    mkdir -p "$2" && echo '{}' >"$2/demo.json" && cp -a "$PTB_DEMO_TASK_CACHE" "$2/task"
  fi
}
