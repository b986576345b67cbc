#!/usr/bin/env bash
# The local Slurm of slurm_local.sh, as `ptb study --slurm` will use it: started, a throttled job
# array run to the end, then each way a job ends (completed, failed, cancelled while running,
# pending, requeued, time limit, node failure) and what squeue, scontrol, the job completion
# log and sacct say about it; stopped, with nothing of it left running. Skipped (77) where
# this machine cannot run Slurm. About 2 minutes, most of it the time-limit job (Slurm's limit
# is whole minutes, checked every 30 s). docs/slurm-local.md.
set -u
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d /tmp/ptb-slurm.XXXXXX)
# shellcheck source=testlib.sh
. "$here/testlib.sh"
# shellcheck source=slurm_local.sh
. "$here/slurm_local.sh"
sl=$tmp/slurm out=$tmp/out
mkdir -p "$out"
trap 'slurm_local_stop "$sl" >/dev/null 2>&1; rm -rf "$tmp"' EXIT
trap 'exit 143' TERM INT HUP

t0=$SECONDS
slurm_local_start "$sl"
rc=$?
[ "$rc" = 0 ] || exit "$rc"
echo "started in $((SECONDS - t0)) s ($(sinfo -h -o '%n: %c CPUs, %m MiB, %T'))"
node=$(hostname -s)

# the state of job JOB (id, or ARRAY_TASK) as each command tells it
sq() { squeue -h -t all -j "$1" -o %T 2>/dev/null | head -1; }
sc() { scontrol -o show job "$1" 2>/dev/null | sed -n '1s/.* JobState=\([A-Z_]*\) .*/\1/p'; }
scf() { scontrol -o show job "$1" 2>/dev/null | sed -n "1s/.* $2=\([^ ]*\).*/\1/p"; }
# the job completion log: the last line of job id JOB (a number), or of task TASK of array JOB
jc() {
  if [ $# = 2 ]; then
    grep " ArrayJobId=$1 ArrayTaskId=$2 " "$sl/jobcomp.txt" 2>/dev/null | tail -1 | sed -n 's/.* JobState=\([A-Z_]*\) .*/\1/p'
  else
    grep "^JobId=$1 " "$sl/jobcomp.txt" 2>/dev/null | tail -1 | sed -n 's/.* JobState=\([A-Z_]*\) .*/\1/p'
  fi
}
# wait (at most SECS) until squeue says one of STATES (a regex) for JOB
wait_state() {
  local job=$1 states=$2 secs=$3 t=$SECONDS
  while [ $((SECONDS - t)) -lt "$secs" ]; do
    [[ "$(sq "$job")" =~ ^($states)$ ]] && return 0
    sleep 0.5
  done
  bad "job $job: not $states after $secs s (squeue: $(sq "$job"), scontrol: $(sc "$job"))"
  return 1
}
# expect STATE from squeue, scontrol and (for finished jobs) the completion log
expect() {
  local what=$1 job=$2 want=$3 logged=${4:-}
  local a b c=""
  a=$(sq "$job") b=$(sc "$job")
  [ -n "$logged" ] && c=$(jc "$job")
  echo "  $what (job $job): squeue=$a scontrol=$b${logged:+ jobcomp=$c}"
  [ "$a" = "$want" ] && [ "$b" = "$want" ] && ok || bad "$what: squeue $a, scontrol $b, wanted $want"
  [ -z "$logged" ] || { [ "$c" = "$logged" ] && ok || bad "$what: jobcomp $c, wanted $logged"; }
}

echo "== a job array of 4, at most 2 at once (--array=0-3%2), and a job that fails"
t1=$SECONDS
arr=$(sbatch --parsable --array=0-3%2 -o "$out/%A_%a.log" \
  --wrap "sleep 2; echo \$SLURM_ARRAY_TASK_ID >$out/\$SLURM_ARRAY_TASK_ID")
[[ "$arr" =~ ^[0-9]+$ ]] && ok || bad "sbatch --array: '$arr'"
fj=$(sbatch --parsable -o "$out/fail.log" --wrap 'exit 3')
[ "$(scf "${arr}_3" ArrayTaskThrottle)" = 2 ] && ok ||
  bad "throttle: ArrayTaskThrottle=$(scf "${arr}_3" ArrayTaskThrottle), wanted 2"
maxrun=0 throttled=0
while [ $((SECONDS - t1)) -lt 60 ]; do
  n=$(squeue -h -r -j "$arr" -t R -o %i | wc -l)
  [ "$n" -gt "$maxrun" ] && maxrun=$n
  squeue -h -r -j "$arr" -t PD -o %r | grep -q JobArrayTaskLimit && throttled=1
  [ -z "$(squeue -h -r -j "$arr" -t PD,R,CG -o %i)" ] && break
  sleep 0.3
done
echo "  array done in $((SECONDS - t1)) s; at most $maxrun tasks ran at once; held by the throttle: $throttled"
[ "$maxrun" -ge 1 ] && [ "$maxrun" -le 2 ] && ok || bad "array: $maxrun tasks at once"
[ "$throttled" = 1 ] && ok || bad "array: no task ever pending with reason JobArrayTaskLimit"
for i in 0 1 2 3; do
  [ "$(cat "$out/$i" 2>/dev/null)" = "$i" ] && ok || bad "array task $i: no file $out/$i"
  [ "$(sq "${arr}_$i")" = COMPLETED ] && [ "$(sc "${arr}_$i")" = COMPLETED ] &&
    [ "$(jc "$arr" "$i")" = COMPLETED ] && ok ||
    bad "array task $i: squeue $(sq "${arr}_$i"), scontrol $(sc "${arr}_$i"), jobcomp $(jc "$arr" $i)"
done
echo "  ${arr}_0..3: squeue, scontrol and jobcomp say COMPLETED"
# one line per task from squeue, finished ones included: what ptb study status reads
n=$(squeue -h -r -t all -j "$arr" -o '%K %T' | sort | tr '\n' ' ')
[ "$n" = "0 COMPLETED 1 COMPLETED 2 COMPLETED 3 COMPLETED " ] && ok || bad "squeue -r -t all: '$n'"
wait_state "$fj" FAILED 30 && expect failed "$fj" FAILED FAILED
[ "$(scf "$fj" ExitCode)" = 3:0 ] && ok || bad "failed job: ExitCode=$(scf "$fj" ExitCode), wanted 3:0"
grep "^JobId=$fj " "$sl/jobcomp.txt" | grep -q ' ExitCode=3:0 ' && ok || bad "failed job: no ExitCode=3:0 in jobcomp"
# no slurmdbd here: sacct has nothing to read (docs/slurm-local.md)
sacct -n -j "$arr" >"$tmp/sacct" 2>&1 && bad "sacct answered: $(head -2 "$tmp/sacct")" || ok
grep -q 'accounting storage is disabled' "$tmp/sacct" && ok || bad "sacct: $(head -2 "$tmp/sacct")"
echo "  sacct: $(head -1 "$tmp/sacct")"

echo "== time limit, cancel, pending, requeue"
t2=$SECONDS
tl=$(sbatch --parsable --time=0:01 -o "$out/timeout.log" --wrap 'sleep 120')
can=$(sbatch --parsable -o "$out/cancel.log" --wrap "sleep 300 & echo \$! >$out/cancel.pid; wait")
wait_state "$tl" RUNNING 30
wait_state "$can" RUNNING 30
tl_start=$SECONDS
expect running "$can" RUNNING
# both cores taken: a third job waits
rq=$(sbatch --parsable -o "$out/requeue.log" --wrap 'sleep 300')
expect pending "$rq" PENDING
for i in $(seq 20); do [ "$(squeue -h -j "$rq" -o %r)" != None ] && break; sleep 0.3; done
echo "  pending reason: $(squeue -h -j "$rq" -o %r)"
for i in $(seq 20); do [ -s "$out/cancel.pid" ] && break; sleep 0.2; done
cpid=$(cat "$out/cancel.pid" 2>/dev/null)
scancel "$can"
wait_state "$can" CANCELLED 20 && expect "cancelled while running" "$can" CANCELLED CANCELLED
# (a zombie for a moment: killed, its parent gone, not yet reaped)
[ -n "$cpid" ] && ! slurm_local_alive "$cpid" && ok || bad "cancelled job: its sleep ($cpid) still runs"
wait_state "$rq" RUNNING 30
scontrol requeue "$rq"
wait_state "$rq" PENDING 20 && expect requeued "$rq" PENDING
echo "  requeued: Restarts=$(scf "$rq" Restarts) Reason=$(scf "$rq" Reason) jobcomp=$(jc "$rq")"
[ "$(scf "$rq" Restarts)" = 1 ] && ok || bad "requeued job: Restarts=$(scf "$rq" Restarts), wanted 1"
scancel "$rq"
wait_state "$rq" CANCELLED 20 && expect "cancelled while pending" "$rq" CANCELLED CANCELLED
wait_state "$tl" TIMEOUT 150 && expect "time limit (1 min)" "$tl" TIMEOUT TIMEOUT
echo "  time limit: ended $((SECONDS - tl_start)) s after it started running ($(scf "$tl" RunTime) run time)"
grep -q 'DUE TO TIME LIMIT' "$out/timeout.log" && ok || bad "timeout job: no 'DUE TO TIME LIMIT' in its output"

echo "== node failure"
# a job that may be requeued (Slurm's default) is requeued: it would run again from the start
nf=$(sbatch --parsable --no-requeue -o "$out/nodefail.log" --wrap 'sleep 300')
nr=$(sbatch --parsable -o "$out/noderequeue.log" --wrap 'sleep 300')
wait_state "$nf" RUNNING 30
wait_state "$nr" RUNNING 30
scontrol update nodename="$node" state=down reason=ptb-test
wait_state "$nf" NODE_FAIL 20 && expect "node down (--no-requeue)" "$nf" NODE_FAIL NODE_FAIL
wait_state "$nr" PENDING 20 && expect "node down (requeue allowed)" "$nr" PENDING
echo "  requeued after the node failed: Restarts=$(scf "$nr" Restarts) jobcomp=$(jc "$nr")"
[ "$(scf "$nr" Restarts)" = 1 ] && [ "$(jc "$nr")" = NODE_FAIL ] && ok ||
  bad "node down, requeue allowed: Restarts=$(scf "$nr" Restarts), jobcomp $(jc "$nr")"
scancel "$nr"
for i in $(seq 60); do [ "$(sinfo -h -n "$node" -o %T)" = idle ] && break; sleep 0.5; done
[ "$(sinfo -h -n "$node" -o %T)" = idle ] && ok || bad "node not idle again: $(sinfo -h -n "$node" -o '%T %E')"

echo "== stop"
t3=$SECONDS
slurm_local_stop "$sl" && ok || bad "slurm_local_stop failed"
echo "  stopped in $((SECONDS - t3)) s"
left=$(ps -e -o pid=,stat=,comm=,args= | awk '$2 !~ /^Z/ && ($3 ~ /^(slurmctld|slurmd|slurmstepd|slurmscriptd)$/ || ($3 == "munged" && index($0, d)))' d="$sl")
[ -z "$left" ] && ok || bad "left running: $left"
slurm_local_port_busy 6817 && bad "port 6817 still open" || ok
slurm_local_stop "$sl" && ok || bad "a second slurm_local_stop failed"
echo "total $((SECONDS - t0)) s"
finish
