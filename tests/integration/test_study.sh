#!/usr/bin/env bash
# ptb study without Slurm, on a tiny task whose runs take a second or two: a grid of two agents
# (one copies the base model, one trains on the test split) x 2 repeats, run here; status; the
# report in text, CSV and HTML with the weighted aggregate (violations zeroed, then kept after a
# resubmission that changes only the scoring); resubmission skipping done runs; bad studies; a
# folder holding another study; the lock; a run killed with SIGKILL and one with SIGTERM, whose
# stores open, then run again alone. Skipped (77) where ptrace is not permitted.
set -u
ptb=$1
tmp=$(mktemp -d /tmp/ptb-study-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/testlib.sh"
export PATH="$(dirname "$ptb"):$PATH"
if ! "$ptb" record -q --net off --store "$tmp/probe.ptb" -- true 2>/dev/null; then
  echo "ptrace is not permitted here: skipped"; exit 77
fi
cd "$tmp" || exit 1

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
 "budget": {"wall_s": 60, "kill_after_s": 1, "eval_wall_s": 60}, "network": {"mode": "off"},
 "sandbox": {"isolation": "none"}}
EOF
# the cheat trains on the test split (an audit violation, and a perfect score)
cat >cheat.sh <<EOF
python3 -c "import json,sys; [print(json.dumps({'prompt': d['prompt'], 'completion': d['answer']})) for d in map(json.loads, open('$tmp/test.jsonl'))]" >t.jsonl
ptb train --base base_model --data t.jsonl --out final_model --steps 150 --batch 2 --seq 12 --lr 0.01 -q
EOF
# the slow one sleeps while the file "slow" exists
cat >slow.sh <<EOF
while [ -e "$tmp/slow" ]; do sleep 0.2; done
mkdir final_model && cp base_model/* final_model/
EOF
study() { # study FILE NAME OUT VIOLATION AGENTS-JSON [REPEATS]
  cat >"$1" <<EOF
{"name": "$2", "out": "$3", "tasks": [{"task": "task.json", "weight": 3}],
 "agents": $5, "repeats": ${6:-2}, "throttle": 2,
 "resources": {"cpus": 1, "mem": "500M", "time_margin_s": 60},
 "scoring": {"weights": {"add": 2}, "violation": "$4"}}
EOF
}
agents='[{"name": "copier", "command": ["sh", "-c", "mkdir final_model && cp base_model/* final_model/"]},
         {"name": "cheat", "command": ["sh", "'$tmp'/cheat.sh"]}]'
study s.json s1 st1 zero "$agents"

echo "== a study of 4 runs, here"
t0=$SECONDS
check "study" 0 "$ptb" study s.json
echo "  4 runs in $((SECONDS - t0)) s"
grep -q '4 runs: 0 done, 0 failed (not retried), 0 pending or running in Slurm, 4 to run' "$tmp/out" && ok || bad "summary: $(cat "$tmp/out")"
for id in add.copier.r1 add.copier.r2 add.cheat.r1 add.cheat.r2; do
  [ "$(field "st1/results/$id.json" status)" = done ] && [ -f "st1/runs/$id/run.ptb/data.mdb" ] &&
    [ -f "st1/audit/$id.json" ] && ok || bad "$id: not done ($(cat "st1/results/$id.json" 2>&1))"
done
[ "$(field st1/study.json plan_sha256 | wc -c)" = 65 ] && ok || bad "no plan hash"
python3 -c "import json; s=json.load(open('st1/specs/add.cheat.json')); assert s['base_model'] == '$tmp/base' and s['agent']['name'] == 'cheat'" &&
  ok || bad "the cheat's spec: $(cat st1/specs/add.cheat.json)"
check "status" 0 "$ptb" study status st1
grep -q '4 runs: 4 done' "$tmp/out" && ok || bad "status: $(cat "$tmp/out")"

echo "== report"
# the aggregate from the manifests and audits: cheat runs (violation) count 0, weight 3 x 2
agg() { # agg VIOLATION AGENT -> the expected weighted score
  python3 - "$1" "$2" <<'PY'
import json, sys, glob
rule, agent = sys.argv[1], sys.argv[2]
ws = w = 0
for d in sorted(glob.glob("st1/runs/*")):
    rid = d.split("/")[-1]
    if agent != "(all)" and rid.split(".")[1] != agent:
        continue
    s = json.load(open(f"{d}/manifest.json"))["score"]["accuracy"]
    v = json.load(open(f"st1/audit/{rid}.json"))["runs"][0]["verdict"]
    if v == "violation" and rule == "exclude":
        continue
    if v == "violation" and rule == "zero":
        s = 0
    ws += 6 * s; w += 6
print("%.4f" % (ws / w))
PY
}
check "report" 0 "$ptb" study report st1
cp "$tmp/out" report.txt
grep -E '^add.cheat.r1 +done +1.0000 +no +violation +violation ' report.txt >/dev/null && ok || bad "report: the cheat: $(grep cheat.r1 report.txt)"
grep -E '^add.cheat.r1 .* 6 0.0000$' report.txt >/dev/null && ok || bad "report: the cheat is not zeroed: $(grep cheat.r1 report.txt)"
want=$(agg zero "(all)")
grep -E "^\(all\) +$want +4 of 4" report.txt >/dev/null && ok || bad "report: aggregate, wanted $want: $(tail -4 report.txt)"
check "report csv" 0 "$ptb" study report st1 --format csv
python3 - "$tmp/out" "$(agg zero cheat)" <<'PY' && ok || bad "report csv: $(cat "$tmp/out")"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
runs = [r for r in rows if r["run"] != "(aggregate)"]
assert len(runs) == 4 and all(r["state"] == "done" and r["weight"] == "6" for r in runs), runs
aggs = {r["agent"]: r for r in rows if r["run"] == "(aggregate)"}
assert aggs["cheat"]["scored"] == sys.argv[2] and aggs["cheat"]["counted"] == "2/2", aggs
PY
check "report html" 0 "$ptb" study report st1 --format html --out report.html
grep -q '<tr class="violation"><td>add.cheat.r1</td>' report.html && ! grep -q '<script' report.html && ok ||
  bad "report html: $(head -c 600 report.html)"

# a benchmark name is free text: escaped in HTML, quoted in CSV
sed 's|"name": "add", "test_split"|"name": "<script>alert(1)</script>,\\"q\\"", "test_split"|' task.json >task-x.json
printf '{"name": "x", "out": "xout", "tasks": ["task-x.json"]}' >x.json
check "plan only" 0 "$ptb" study x.json --dry-run -q
"$ptb" study report xout --format html | grep -q '<td>&lt;script&gt;alert(1)&lt;/script&gt;,&quot;q&quot;</td><td>todo</td>' &&
  ! "$ptb" study report xout --format html | grep -qi '<script' && ok || bad "html: a name not escaped"
"$ptb" study report xout --format csv | grep -qF 'add.own.r1,add,own,1,"<script>alert(1)</script>,""q""",todo,' &&
  ok || bad "csv: $("$ptb" study report xout --format csv)"

echo "== resubmission: nothing to run; the scoring changed (violations kept)"
before=$(stat -c %Y st1/results/add.copier.r1.json)
study s-keep.json s1 st1 keep "$agents"
check "resubmit" 0 "$ptb" study s-keep.json
grep -q '4 done, 0 failed (not retried), 0 pending or running in Slurm, 0 to run' "$tmp/out" && ok || bad "resubmit: $(cat "$tmp/out")"
[ "$(stat -c %Y st1/results/add.copier.r1.json)" = "$before" ] && ok || bad "resubmit: a done run ran again"
"$ptb" study report st1 | grep -E "^\(all\) +$(agg keep "(all)") +4 of 4" >/dev/null && ok || bad "report after resubmission: $("$ptb" study report st1 | tail -3)"

echo "== refusals"
study other.json s1 st1 zero "$agents" 1
check "another plan in the same folder" 2 "$ptb" study other.json
grep -q 'holds another study' "$tmp/err" && ok || bad "another plan: $(cat "$tmp/err")"
flock -n st1/study.lock sleep 5 &
fl=$!
sleep 0.3
check "the lock held" 2 "$ptb" study s-keep.json
grep -q 'another ptb study is submitting or running' "$tmp/err" && ok || bad "lock: $(cat "$tmp/err")"
kill "$fl" 2>/dev/null; wait "$fl" 2>/dev/null
bad_study() { # bad_study NAME JSON EXPECTED-MESSAGE
  printf '%s\n' "$2" >"bad-$1.json"
  check "bad study $1" 2 "$ptb" study "bad-$1.json"
  grep -qF -- "$3" "$tmp/err" && ok || bad "bad study $1: $(cat "$tmp/err")"
}
bad_study notasks '{"name": "x", "out": "o"}' 'bad-notasks.json: $.tasks: missing'
bad_study weight '{"name": "x", "out": "o", "tasks": ["task.json", {"task": "task.json", "weight": -1}]}' '$.tasks[1].weight: must be a number >= 0'
bad_study member '{"name": "x", "out": "o", "tasks": ["task.json"], "resources": {"gpu": 1}}' '$.resources.gpu: unknown member'
bad_study agent '{"name": "x", "out": "o", "tasks": ["task.json"], "agents": [{"name": "a"}]}' '$.agents[0]: command: missing'
bad_study mem '{"name": "x", "out": "o", "tasks": ["task.json"], "resources": {"mem": "lots"}}' '$.resources.mem: must be a size'
bad_study viol '{"name": "x", "out": "o", "tasks": ["task.json"], "scoring": {"violation": "half"}}' '$.scoring.violation: must be'
bad_study twice '{"name": "x", "out": "o", "tasks": ["task.json", "task.json"]}' '$.tasks[1]: a second task named add'
[ ! -e o ] && ok || bad "a bad study wrote its folder"
printf '{"name": "x", "out": "o", "tasks": ["nope.json"]}' >bad-task.json
check "a task that does not exist" 3 "$ptb" study bad-task.json
grep -qF 'bad-task.json: $.tasks[0]: ' "$tmp/err" && ok || bad "missing task: $(cat "$tmp/err")"
check "no such study" 3 "$ptb" study nonexistent.json
check "status of no study" 3 "$ptb" study status "$tmp"

echo "== a run killed with SIGKILL, then with SIGTERM; run again alone"
study k.json k kout zero '[{"name": "slow", "command": ["sh", "'$tmp'/slow.sh"]}]' 1
wait_agent() { # until the run's agent is sleeping (its store has the agent phase)
  for _ in $(seq 100); do
    pgrep -f "$tmp/slow.sh" >/dev/null && return 0; sleep 0.1
  done
  return 1
}
touch slow
setsid "$ptb" study k.json -q >kill.out 2>&1 &
pid=$!
wait_agent && ok || bad "the slow agent never started"
check "status while it runs" 1 "$ptb" study status kout
grep -qE '^add.slow.r1 +running' "$tmp/out" && ok || bad "status while running: $(cat "$tmp/out")"
check "a second attempt of a running run" 2 "$ptb" study exec kout add.slow.r1
grep -q 'another attempt of this run is running' "$tmp/err" && ok || bad "second attempt: $(cat "$tmp/err")"
kill -KILL -- -"$pid"; wait "$pid" 2>/dev/null
for _ in $(seq 50); do pgrep -f "$tmp/slow.sh" >/dev/null || break; sleep 0.1; done
check "status after SIGKILL" 1 "$ptb" study status kout
grep -qE '^add.slow.r1 +killed .*no result.*store opens: [0-9]+ events, no run.end' "$tmp/out" && ok || bad "status after SIGKILL: $(cat "$tmp/out")"
"$ptb" stats kout/runs/add.slow.r1/run.ptb >/dev/null && ok || bad "the killed store does not open"
"$ptb" verify kout/runs/add.slow.r1/run.ptb >"$tmp/verify" 2>&1 && ok || bad "the killed store does not verify: $(cat "$tmp/verify")"
"$ptb" study k.json -q >kill.out 2>&1 &
pid=$!
wait_agent && ok || bad "the slow agent never started again"
kill -TERM "$pid"; wait "$pid"
rc=$?
[ "$rc" = 5 ] && ok || bad "SIGTERM: ptb study exit $rc ($(cat kill.out))"
[ "$(field kout/results/add.slow.r1.json status)" = killed ] && [ -d kout/attempts/add.slow.r1.1/run ] && ok ||
  bad "SIGTERM: $(cat kout/results/add.slow.r1.json 2>&1)"
# ptb run ends the run itself on SIGTERM (run.end "signal"); killed before it could, its store
# gets run.end "killed: ..." from ptb study
"$ptb" query kout/runs/add.slow.r1/run.ptb --format jsonl 'evt.type = run.end' | grep -qE '"reason":"(killed: |signal)' &&
  ok || bad "SIGTERM: no run.end in the store"
check "status after SIGTERM" 1 "$ptb" study status kout
grep -qE '^add.slow.r1 +killed .*store opens: [0-9]+ events, run.end: ' "$tmp/out" && ok || bad "status after SIGTERM: $(cat "$tmp/out")"
rm slow
check "run again" 0 "$ptb" study k.json
grep -q '0 done, 0 failed (not retried), 0 pending or running in Slurm, 1 to run' "$tmp/out" && ok || bad "run again: $(cat "$tmp/out")"
[ "$(field kout/results/add.slow.r1.json status)" = done ] && [ "$(field kout/results/add.slow.r1.json attempt)" = 3 ] &&
  [ -d kout/attempts/add.slow.r1.2/run ] && ok || bad "run again: $(cat kout/results/add.slow.r1.json)"

echo "== --slurm --dry-run: the sbatch command"
study dry.json dry dout zero "$agents"
sed -i 's|"mem": "500M"|"mem": "500M", "partition": "gpu", "account": "lab", "gpus": 1, "extra_sbatch": ["--constraint=a100"]|' dry.json
check "dry run" 0 "$ptb" study dry.json --slurm --dry-run -q
grep -qxF "'sbatch' '--parsable' '--job-name=ptb-dry' '--array=0-3%2' '--no-requeue' '--time=4' '--cpus-per-task=1' '--mem=500M' '--partition=gpu' '--account=lab' '--gres=gpu:1' '--constraint=a100' '--output=$tmp/dout/slurm/%A_%a.log' '$tmp/dout/slurm/array.sh' '$tmp/dout/slurm/todo-0.txt'" "$tmp/out" &&
  ok || bad "dry run: $(cat "$tmp/out")"
[ -f dout/study.json ] && [ -f dout/specs/add.cheat.json ] && [ ! -e dout/slurm/jobs.json ] &&
  [ ! -e dout/slurm/todo-0.txt ] && [ -z "$(ls dout/runs)" ] && ok || bad "a dry run: $(find dout)"
check "dry run here" 0 "$ptb" study dry.json --dry-run -q
[ "$(cat "$tmp/out" | tr '\n' ' ')" = "add.copier.r1 add.copier.r2 add.cheat.r1 add.cheat.r2 " ] && [ -z "$(ls dout/runs)" ] &&
  ok || bad "dry run here: $(cat "$tmp/out")"
finish
