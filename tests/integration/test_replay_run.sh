#!/usr/bin/env bash
# ptb replay on real `ptb run`s of the demo's scenario agents (test_replay_run.py says what is
# checked): the honest and test-leak runs of `ptb demo`, then an honest run that copies its
# workspace after every tool call. Skipped (77) where ptrace is not permitted or
# python3/openssl/curl are missing.
set -u
ptb=$1
steps=${2:-150}
tmp=$(mktemp -d /tmp/ptb-replay-run-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/testlib.sh"
d=$tmp/demo
demo_setup "$ptb" "$d"
"$ptb" demo --out "$d" --steps "$steps" --scenario honest --scenario test-leak >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc = 0 ] && ok || { bad "ptb demo: exit $rc"; tail -20 "$tmp/err"; }
python3 "$(dirname "$0")/test_replay_run.py" "$ptb" "$d" "$steps" && ok || bad "test_replay_run.py"
finish
