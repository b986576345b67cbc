#!/usr/bin/env bash
# ptb study --slurm against a real Slurm (slurm_local.sh, docs/slurm-local.md): a study of 4
# tiny runs on the CPU (an agent that copies the base model, one that waits for a file) submitted
# as one job array throttled to 2; one run cancelled with scancel while it runs (its marker says
# killed, its store opens); status while it runs and after; resubmission runs only that one, as a
# second array; a node that fails under a run (killed, its store opens, run again); a run over
# its time limit (killed by Slurm's SIGTERM: marker, run.end); the report; the daemons stopped.
# Skipped (77) where Slurm or ptrace cannot run here. About 2 minutes (the time limit).
set -u
ptb=$1
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d /tmp/ptb-sst.XXXXXX)   # short: Slurm's unix sockets live under it
# shellcheck source=testlib.sh
. "$here/testlib.sh"
# shellcheck source=slurm_local.sh
. "$here/slurm_local.sh"
export PATH="$(dirname "$ptb"):$PATH"
sl=$tmp/slurm
trap 'slurm_local_stop "$sl" >/dev/null 2>&1; rm -rf "$tmp"' EXIT
trap 'exit 143' TERM INT HUP
if ! "$ptb" record -q --net off --store "$tmp/probe.ptb" -- true 2>/dev/null; then
  echo "ptrace is not permitted here: skipped"; exit 77
fi
cd "$tmp" || exit 1

# the task: as test_study.sh
for a in 1 2 3 4 5 6 7 8 9; do
  for b in 1 2 3; do printf '{"prompt": "%d+%d=", "completion": "%d"}\n' $a $b $((a + b)); done
done >train.jsonl
printf '{"prompt": "2+7=", "answer": "9"}\n{"prompt": "5+5=", "answer": "10"}\n' >test.jsonl
"$ptb" train --init --layers 1 --heads 2 --channels 16 --max-seq 16 --steps 5 --batch 4 \
  --data train.jsonl --out base -q || { echo "FAIL: no base model"; exit 1; }
cat >task.json <<'EOF'
{"name": "add", "agent": {"name": "own", "command": ["true"]},
 "base_model": "base", "benchmark": {"name": "add", "test_split": "test.jsonl",
 "train_split": "train.jsonl", "max_tokens": 4},
 "budget": {"wall_s": 120, "kill_after_s": 1, "eval_wall_s": 60}, "network": {"mode": "off"},
 "sandbox": {"isolation": "none"}}
EOF
cat >slow.sh <<EOF
while [ -e "$tmp/slow" ]; do sleep 0.2; done
mkdir final_model && cp base_model/* final_model/
EOF
cat >study.json <<EOF
{"name": "sst", "out": "st", "tasks": ["task.json"],
 "agents": [{"name": "copier", "command": ["sh", "-c", "mkdir final_model && cp base_model/* final_model/"]},
            {"name": "slow", "command": ["sh", "$tmp/slow.sh"]}],
 "repeats": 2, "throttle": 2, "resources": {"cpus": 1, "mem": "400M", "time_margin_s": 60}}
EOF

t0=$SECONDS
slurm_local_start "$sl"
rc=$?
[ "$rc" = 0 ] || exit "$rc"
echo "Slurm started in $((SECONDS - t0)) s"

# the state of run ID in ptb study status
state() { "$ptb" study status st 2>/dev/null | awk -v id="$1" '$1 == id {print $2}'; }
# wait (at most SECS) until run ID is in one of STATES (a regex)
wait_run() {
  local id=$1 states=$2 secs=$3 t=$SECONDS
  while [ $((SECONDS - t)) -lt "$secs" ]; do
    [[ "$(state "$id")" =~ ^($states)$ ]] && return 0
    sleep 0.5
  done
  bad "$id: not $states after $secs s: $("$ptb" study status st 2>&1 | grep "^$id ")"
  return 1
}

echo "== submit 4 runs, at most 2 at once"
touch slow
check "submit" 0 "$ptb" study study.json --slurm
cat "$tmp/out"
arr=$(sed -n 's/^submitted job array \([0-9]*\): 4 runs, at most 2 at once.*/\1/p' "$tmp/out")
[ -n "$arr" ] && ok || bad "submit: $(cat "$tmp/out" "$tmp/err")"
[ "$(scontrol -o show job "${arr}_3" 2>/dev/null | sed -n 's/.* ArrayTaskThrottle=\([0-9]*\).*/\1/p' | head -1)" = 2 ] &&
  ok || bad "no throttle of 2: $(scontrol -o show job "${arr}_3" | head -1)"
[ "$(python3 -c "import json; print(json.load(open('st/slurm/jobs.json'))['jobs'][0]['id'])")" = "$arr" ] &&
  ok || bad "jobs.json: $(cat st/slurm/jobs.json)"
check "status at once" 1 "$ptb" study status st
grep -qE '^add.slow.r2 +(pending|running) +'"${arr}_3"' ' "$tmp/out" && ok || bad "status: $(cat "$tmp/out")"
wait_run add.copier.r1 done 90
wait_run add.copier.r2 done 90
wait_run add.slow.r1 running 60

echo "== scancel one run while it runs"
job=$("$ptb" study status st | awk '$1 == "add.slow.r1" {print $3}')
[ "$job" = "${arr}_2" ] && ok || bad "add.slow.r1 is job $job, wanted ${arr}_2"
sleep 1
scancel "$job"
wait_run add.slow.r1 killed 60
rm slow
wait_run add.slow.r2 done 90
check "status after" 1 "$ptb" study status st
cat "$tmp/out"
grep -q '4 runs: 3 done 1 killed' "$tmp/out" && ok || bad "status: $(head -1 "$tmp/out")"
grep -qE '^add.slow.r1 +killed +'"${arr}_2"' +killed: Terminated in Slurm job '"${arr}_2"' .*; Slurm CANCELLED; store opens: [0-9]+ events, run.end: ' "$tmp/out" &&
  ok || bad "the cancelled run: $(grep add.slow.r1 "$tmp/out")"
[ "$(field st/results/add.slow.r1.json status)" = killed ] && [ "$(field st/results/add.slow.r1.json slurm_task)" = 2 ] &&
  ok || bad "marker: $(cat st/results/add.slow.r1.json)"
"$ptb" stats st/runs/add.slow.r1/run.ptb >/dev/null && ok || bad "the cancelled run's store does not open"

echo "== resubmit: only the cancelled run"
check "resubmit" 0 "$ptb" study study.json --slurm
cat "$tmp/out"
grep -q '3 done, 0 failed (not retried), 0 pending or running in Slurm, 1 to run' "$tmp/out" && ok || bad "resubmit: $(cat "$tmp/out")"
arr2=$(sed -n 's/^submitted job array \([0-9]*\): 1 runs.*/\1/p' "$tmp/out")
[ -n "$arr2" ] && [ "$arr2" != "$arr" ] && ok || bad "resubmit: no second array"
[ "$(cat st/slurm/todo-1.txt)" = add.slow.r1 ] && ok || bad "todo-1.txt: $(cat st/slurm/todo-1.txt)"
wait_run add.slow.r1 done 90
check "status at the end" 0 "$ptb" study status st
grep -qE '^add.slow.r1 +done +'"${arr2}_0"' ' "$tmp/out" && ok || bad "status at the end: $(cat "$tmp/out")"
[ "$(field st/results/add.slow.r1.json attempt)" = 2 ] && [ -d st/attempts/add.slow.r1.1/run ] && ok ||
  bad "the second attempt: $(cat st/results/add.slow.r1.json)"
check "nothing left to submit" 0 "$ptb" study study.json --slurm
grep -q '4 done, 0 failed (not retried), 0 pending or running in Slurm, 0 to run' "$tmp/out" && ok || bad "again: $(cat "$tmp/out")"

echo "== a node failure while a run runs (another study, one run)"
sed -e 's/"name": "sst", "out": "st"/"name": "nf", "out": "nst"/' -e 's/"repeats": 2/"repeats": 1/' study.json >nf.json
python3 -c "import json; s=json.load(open('nf.json')); s['agents']=s['agents'][1:]; json.dump(s, open('nf.json', 'w'))"
touch slow
check "submit nf" 0 "$ptb" study nf.json --slurm
nstate() { "$ptb" study status nst 2>/dev/null | awk '$1 == "add.slow.r1" {print $2}'; }
for _ in $(seq 120); do [ "$(nstate)" = running ] && break; sleep 0.5; done
for _ in $(seq 50); do pgrep -f "$tmp/slow.sh" >/dev/null && break; sleep 0.2; done
node=$(hostname -s)
scontrol update nodename="$node" state=down reason=ptb-study-test
for _ in $(seq 60); do [ "$(nstate)" = killed ] && break; sleep 0.5; done
"$ptb" study status nst >"$tmp/out" 2>&1
grep '^add.slow.r1 ' "$tmp/out"
grep -qE '^add.slow.r1 +killed .*NODE_FAIL' "$tmp/out" && ok || bad "node failure: $(cat "$tmp/out")"
# Slurm ended the job's processes (the run does not go on beside its next attempt)
for _ in $(seq 50); do pgrep -f "$tmp/slow.sh" >/dev/null || break; sleep 0.2; done
pgrep -f "$tmp/slow.sh" >/dev/null && bad "node failure: the run's agent still runs" || ok
[ -d nst/runs/add.slow.r1/run.ptb ] && "$ptb" stats nst/runs/add.slow.r1/run.ptb >/dev/null && ok ||
  bad "node failure: the store does not open"
rm slow
for _ in $(seq 60); do [ "$(sinfo -h -n "$node" -o %T)" = idle ] && break; sleep 0.5; done
check "resubmit nf" 0 "$ptb" study nf.json --slurm
for _ in $(seq 120); do [ "$(nstate)" = done ] && break; sleep 0.5; done
[ "$(nstate)" = done ] && ok || bad "after the node failure: $("$ptb" study status nst 2>&1)"

echo "== a time limit (extra_sbatch --time=1 after ptb's own --time: 60-90 s)"
sed -e 's/"name": "nf", "out": "nst"/"name": "tl", "out": "tst"/' -e 's/"time_margin_s": 60}/"time_margin_s": 60, "extra_sbatch": ["--time=1"]}/' nf.json >tl.json
touch slow
check "submit tl" 0 "$ptb" study tl.json --slurm
tstate() { "$ptb" study status tst 2>/dev/null | awk '$1 == "add.slow.r1" {print $2}'; }
t1=$SECONDS
for _ in $(seq 240); do [ "$(tstate)" = killed ] && break; sleep 0.5; done
"$ptb" study status tst >"$tmp/out" 2>&1
grep '^add.slow.r1 ' "$tmp/out"
echo "  killed $((SECONDS - t1)) s after submission"
grep -qE '^add.slow.r1 +killed .*killed: Terminated .*Slurm TIMEOUT; store opens: [0-9]+ events, run.end: ' "$tmp/out" &&
  ok || bad "time limit: $(cat "$tmp/out")"
[ "$(field tst/results/add.slow.r1.json status)" = killed ] && ok || bad "time limit: no marker killed"
rm slow

echo "== report"
check "report" 0 "$ptb" study report st
cat "$tmp/out"
[ "$(grep -cE '^add\.[a-z]+\.r[12] +done ' "$tmp/out")" = 4 ] && ok || bad "report: not 4 done runs"
grep -qE '^\(all\) +[0-9.]+ +4 of 4' "$tmp/out" && ok || bad "report: no aggregate of 4 runs"
check "report csv" 0 "$ptb" study report st --format csv
[ "$(grep -c ',done,' "$tmp/out")" = 4 ] && ok || bad "report csv: $(cat "$tmp/out")"

echo "== stop"
slurm_local_stop "$sl" && ok || bad "slurm_local_stop failed"
echo "total $((SECONDS - t0)) s"
finish
