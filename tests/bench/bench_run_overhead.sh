#!/usr/bin/env bash
# ptb run's overhead (issue 7, docs/BENCHMARKS.md): the time from starting `ptb run` to the
# agent's first instruction, beside the same command started directly; and the runner's own CPU
# (tracer, store writer, stream reader: the ptb process, not its children) while the agent
# idles, as a share of one core.
#   tests/bench/bench_run_overhead.sh PTB [REPEATS]
# Network modes off, and ns (the agent in its own network namespace, every packet captured:
# needs root; skipped without it); the sandbox (sandbox.isolation auto: mount and PID
# namespaces) on, and off (none) beside it.
set -u
ptb=${1:?usage: bench_run_overhead.sh PTB [REPEATS]}
reps=${2:-5}
tmp=$(mktemp -d /tmp/ptb-runbench-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
hz=$(getconf CLK_TCK)
printf '{"prompt": "1+1=", "completion": "2"}\n' >"$tmp/d.jsonl"
"$ptb" train --init --layers 1 --heads 2 --channels 16 --max-seq 16 --steps 2 --data "$tmp/d.jsonl" \
  --out "$tmp/base" -q || exit 1
# network mode / sandbox isolation: the sandbox (mount and PID namespaces) on and off
modes="off/none off/auto"
[ "$(id -u)" = 0 ] && modes="$modes ns/auto"
for mode in $modes; do
net=${mode%/*} iso=${mode#*/}
cat >"$tmp/task.json" <<JSON
{"name": "overhead", "agent": {"command": ["sh", "-c", "date +%s.%N > first; sleep 8"]},
 "base_model": "base", "benchmark": {"name": "b", "test_split": "d.jsonl", "max_tokens": 2},
 "budget": {"wall_s": 60}, "network": {"mode": "$net"}, "sandbox": {"isolation": "$iso"}}
JSON
for i in $(seq "$reps"); do
  t0=$(date +%s.%N)
  sh -c "date +%s.%N > $tmp/direct"
  direct=$(echo "$(cat "$tmp/direct") - $t0" | bc)
  t0=$(date +%s.%N)
  rm -rf "$tmp/r$i"
  "$ptb" run "$tmp/task.json" --out "$tmp/r$i" -q 2>/dev/null &
  pid=$!
  sleep 2.5
  c1=$(awk '{print $14 + $15}' /proc/$pid/stat)
  sleep 5
  c2=$(awk '{print $14 + $15}' /proc/$pid/stat)
  wait $pid
  start=$(echo "$(cat "$tmp/r$i/workspace/first") - $t0" | bc)
  cpu=$(echo "scale=3; ($c2 - $c1) * 100 / $hz / 5" | bc)
  printf '{"net": "%s", "sandbox": "%s", "rep": %d, "start_s": %.3f, "direct_start_s": %.4f, "idle_cpu_percent": %s}\n' \
    "$net" "$iso" "$i" "$start" "$direct" "$cpu"
done
done
