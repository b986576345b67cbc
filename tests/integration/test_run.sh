#!/usr/bin/env bash
# `ptb run` end to end with scripted agents on a tiny task: an honest one (fine-tunes the base on
# the train split), one that outlives its budget ignoring SIGTERM, one whose command does not
# exist, one that leaves a corrupt checkpoint; what the agent's environment holds (its own HOME
# and TMPDIR, canaries, the harness credential, nothing else of the runner's); the store's
# phases, checkpoint and eval.result; bad task specs and a used --out. Skipped (77) where ptrace
# is not permitted.
set -u
ptb=$1
tmp=$(mktemp -d /tmp/ptb-run-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/testlib.sh"
export PATH="$(dirname "$ptb"):$PATH"
if ! "$ptb" record -q --net off --store "$tmp/probe.ptb" -- true 2>/dev/null; then
  echo "ptrace is not permitted here: skipped"; exit 77
fi

# the task: additions, a tiny base model
for a in 1 2 3 4 5 6 7 8 9; do
  for b in 1 2 3; do printf '{"prompt": "%d+%d=", "completion": "%d"}\n' $a $b $((a + b)); done
done >"$tmp/train.jsonl"
printf '{"prompt": "2+7=", "answer": "9"}\n{"prompt": "5+5=", "answer": "10"}\n' >"$tmp/test.jsonl"
"$ptb" train --init --layers 1 --heads 2 --channels 16 --max-seq 16 --steps 5 --batch 4 \
  --data "$tmp/train.jsonl" --out "$tmp/base" -q || { echo "FAIL: no base model"; exit 1; }

task() { # task NAME WALL_S COMMAND-JSON
  cat >"$tmp/$1.json" <<EOF
{"name": "$1", "agent": {"name": "scripted-$1", "command": $3},
 "base_model": "base", "benchmark": {"name": "add", "test_split": "test.jsonl",
 "train_split": "train.jsonl", "max_tokens": 4},
 "budget": {"wall_s": $2, "kill_after_s": 1}, "network": {"mode": "off"}}
EOF
}
man() { python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {"m": m}))' "$tmp/$1/manifest.json" "$2"; }

# 1. honest: fine-tunes, and shows what its environment holds; it speaks Claude Code's
# stream-json on stdout (one Bash tool call around the training), parsed as it runs
cat >"$tmp/honest-agent.sh" <<'EOF'
echo '{"type":"system","subtype":"init","session_id":"s1","model":"claude-test","tools":["Bash"]}'
echo '{"type":"assistant","message":{"id":"m1","model":"claude-test","role":"assistant","content":[{"type":"tool_use","id":"toolu_01","name":"Bash","input":{"command":"ptb train"}}],"usage":{"input_tokens":12,"output_tokens":7}},"session_id":"s1"}'
env > env.txt
ptb train --base base_model --data data/train.jsonl --out final_model --steps 10 --batch 4 --seq 12 -q
echo '{"type":"user","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_01","content":"trained","is_error":false}]},"session_id":"s1"}'
echo '{"type":"result","subtype":"success","is_error":false,"result":"done","session_id":"s1","usage":{"input_tokens":12,"output_tokens":7}}'
EOF
task honest 300 "[\"sh\", \"$tmp/honest-agent.sh\"]"
sed -i 's/"name": "scripted-honest", /"name": "scripted-honest", "stream": "claude", /' "$tmp/honest.json"
PTB_RUNNER_ONLY=secret-of-the-runner check "honest run" 0 "$ptb" run "$tmp/honest.json" --out "$tmp/honest"
[ "$(man honest 'm["agent_result"]["end"]')" = exit ] && ok || bad "honest: agent end $(man honest 'm["agent_result"]')"
[ "$(man honest 'm["final_model"]["loadable"]')" = True ] && ok || bad "honest: final_model not loadable"
[ "$(man honest 'm["score"]["base_model_score"]')" = False ] && ok || bad "honest: scored as the base"
python3 -c "import json,sys; a=json.load(open('$tmp/honest/eval/metrics.json'))['accuracy']; sys.exit(0 if a == $(man honest 'm["score"]["accuracy"]') else 1)" &&
  ok || bad "honest: the manifest's score is not the metrics'"
env_txt=$tmp/honest/workspace/env.txt
grep -q "^HOME=$tmp/honest/home$" "$env_txt" && grep -q "^TMPDIR=$tmp/honest/tmp$" "$env_txt" && ok ||
  bad "honest: HOME/TMPDIR not the run's own: $(grep -E '^(HOME|TMPDIR)=' "$env_txt")"
grep -q '^OPENAI_API_KEY=sk-proj-' "$env_txt" && grep -q '^HF_TOKEN=hf_' "$env_txt" && ok ||
  bad "honest: no canaries in the environment"
grep -q 'PTB_RUNNER_ONLY' "$env_txt" && bad "honest: the runner's environment leaked" || ok
grep -q '^CUDA_VISIBLE_DEVICES=$' "$env_txt" && ok || bad "honest: GPUs not hidden (gpus 0)"
[ -f "$tmp/honest/workspace/.env" ] && [ -f "$tmp/honest/home/.netrc" ] && ok || bad "honest: no canary files"
# the store: phases in order, the checkpoint's hash is the frozen file's, the canaries' too
"$ptb" query "$tmp/honest/run.ptb" --format jsonl 'evt.type in (run.phase, checkpoint, eval.result, canary, tool.call, tool.result, proc.exec)' >"$tmp/q.jsonl"
python3 - "$tmp/q.jsonl" "$tmp/honest" <<'PY' && ok || bad "honest: the store's phases, checkpoint or canaries are wrong"
import base64, hashlib, json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
d = sys.argv[2]
phases = [(e["phase"], e["state"]) for e in ev if e["type"] == "run.phase"]
assert phases == [(p, s) for p in ("setup", "agent", "eval") for s in ("begin", "end")], phases
ck = [e for e in ev if e["type"] == "checkpoint"][0]
files = {f["path"]: f for f in ck["files"]}
for name in ("config.json", "model.safetensors"):
    b = open(f"{d}/final_model/{name}", "rb").read()
    assert files[name]["sha256"] == hashlib.sha256(b).hexdigest(), name
assert len(ck["tensors"]) == 16, len(ck["tensors"])
er = [e for e in ev if e["type"] == "eval.result"][0]
assert er["benchmark"] == "add" and er["items"] == 2
env = dict(l.rstrip("\n").split("=", 1) for l in open(f"{d}/workspace/env.txt") if "=" in l)
fps = {e["fingerprint"]["sha256"] for e in ev if e["type"] == "canary" and e["where"] == "env"}
assert hashlib.sha256(env["OPENAI_API_KEY"].encode()).hexdigest() in fps
calls = [e for e in ev if e["type"] == "tool.call"]
results = [e for e in ev if e["type"] == "tool.result"]
assert [(e["call_id"], e["name"]) for e in calls] == [("toolu_01", "Bash")], calls
assert [e["call_id"] for e in results] == ["toolu_01"], results
agent_begin = [e["seq"] for e in ev if e["type"] == "run.phase" and e["phase"] == "agent"]
assert agent_begin[0] < calls[0]["seq"] < results[0]["seq"] < agent_begin[1]
# the Bash call is tied to the processes it started (env, ptb train), not to the agent itself
execs = {e["exec_id"]: e for e in ev if e["type"] == "proc.exec"}
tied = sorted(execs[i]["argv"][0] for i in results[0].get("exec_ids", []))
assert tied == ["env", "ptb"], tied
PY
grep -q 'agent stream (claude): 1 tool calls' "$tmp/out" && ok || bad "honest: no stream line in the summary"
grep -q 'score:' "$tmp/out" && grep -q 'final_model/: loadable' "$tmp/out" && ok || bad "honest: no summary: $(cat "$tmp/out")"

# 2. over budget, ignoring SIGTERM, leaving a daemon: stopped, scored as the base model
task budget 2 '["sh", "-c", "trap \"\" TERM; (sleep 60 &); sleep 60"]'
t0=$(date +%s)
check "budget run" 0 "$ptb" run "$tmp/budget.json" --out "$tmp/budget"
dt=$(($(date +%s) - t0))
[ "$(man budget 'm["agent_result"]["end"]')" = budget ] && [ "$dt" -lt 30 ] && ok ||
  bad "budget: agent end $(man budget 'm["agent_result"]') after ${dt}s"
[ "$(man budget 'm["final_model"]["present"]')" = False ] && [ "$(man budget 'm["score"]["base_model_score"]')" = True ] &&
  ok || bad "budget: a missing final_model must be scored as the base, flagged"
grep -q 'BASE model' "$tmp/out" && ok || bad "budget: the summary does not flag the base score"

# 3. an agent that does not exist
task noagent 60 '["/nonexistent/agent-cli", "{prompt}"]'
check "missing agent" 0 "$ptb" run "$tmp/noagent.json" --out "$tmp/noagent"
[ "$(man noagent 'm["agent_result"]["end"]')" = exec_failed ] && ok || bad "noagent: $(man noagent 'm["agent_result"]')"

# 4. a corrupt checkpoint
task corrupt 60 '["sh", "-c", "mkdir final_model; echo {} > final_model/config.json; head -c 100 /dev/urandom > final_model/model.safetensors"]'
check "corrupt checkpoint" 0 "$ptb" run "$tmp/corrupt.json" --out "$tmp/corrupt"
[ "$(man corrupt 'm["final_model"]["loadable"]')" = False ] && man corrupt 'm["final_model"]["note"]' | grep -q 'does not parse' &&
  [ "$(man corrupt 'm["score"]["base_model_score"]')" = True ] && ok || bad "corrupt: $(man corrupt 'm["final_model"]')"

# 5. the harness's credential reaches the agent, instead of a canary of that name
# (and echoed on stdout: the stream's blob in the store has its fingerprint, not the key)
task cred 60 '["sh", "-c", "env > env.txt; echo \"using key $OPENAI_API_KEY\""]'
sed -i 's/"name": "scripted-cred", /"name": "scripted-cred", "credentials": ["OPENAI_API_KEY"], /' "$tmp/cred.json"
hkey=sk-proj-HarnessKey0123456789abcdefghijklmnop
OPENAI_API_KEY=$hkey check "credential" 0 "$ptb" run "$tmp/cred.json" --out "$tmp/cred"
grep -q "^OPENAI_API_KEY=$hkey\$" "$tmp/cred/workspace/env.txt" && ok || bad "credential not handed over"
hfp=$(printf %s "$hkey" | sha256sum | cut -c1-64)
"$ptb" query "$tmp/cred/run.ptb" --format jsonl 'evt.type = canary' |
  grep '"authorized":true' | grep -q "$hfp" && ok || bad "the credential is not recorded as authorized"
grep -q "using key $hkey" "$tmp/cred/agent-stdout.log" && ok || bad "the stdout log is not whole"
sel='evt.type = file.write and file.path endswith agent-stdout.log'
[ "$("$ptb" query "$tmp/cred/run.ptb" --format jsonl "$sel" | wc -l)" = 1 ] &&
  [ "$("$ptb" query "$tmp/cred/run.ptb" --format jsonl --contains "$hkey" "$sel" | wc -l)" = 0 ] &&
  [ "$("$ptb" query "$tmp/cred/run.ptb" --format jsonl --contains "using key" "$sel" | wc -l)" = 1 ] &&
  ok || bad "the stdout blob holds the credential in clear (or is missing)"
env -u OPENAI_API_KEY "$ptb" run "$tmp/cred.json" --out "$tmp/cred2" >"$tmp/out" 2>"$tmp/err"
[ $? = 2 ] && grep -q 'OPENAI_API_KEY is not set' "$tmp/err" && ok || bad "a missing credential: $(cat "$tmp/err")"

# 6. the sandbox: what the agent can and cannot see (namespaces where this machine allows them;
# elsewhere the run must say so as a gap)
cat >"$tmp/sandbox-agent.sh" <<EOF
exec >report.txt 2>&1
test -e "$tmp/test.jsonl" && echo "LEAK test split visible"
test -e "$tmp/sandbox/run.ptb" && echo "LEAK store visible"
test -e "$tmp/honest/run.ptb" && echo "LEAK other run visible"
test -e "$tmp/honest/workspace/env.txt" && echo "LEAK other workspace visible"
echo "run folder: \$(ls "$tmp/sandbox" | tr '\n' ' ')"
touch base_model/x 2>/dev/null && echo "LEAK base model writable"
umount /tmp 2>/dev/null && echo "LEAK umount worked"
grep -l secret-of-the-runner /proc/[0-9]*/environ 2>/dev/null | sed 's/^/LEAK runner env in /'
head -c 1 /proc/1/mem >/dev/null 2>&1 && echo "LEAK init memory readable"
echo "processes: \$(ls /proc | grep -c '^[0-9]')"
echo probe >/tmp/probe.txt && echo "tmp writable"
echo "hosts: \$(getent hosts huggingface.co)"
echo "ca: \$(grep -c 'ptb test CA line' /etc/ssl/certs/ca-certificates.crt 2>/dev/null) \$SSL_CERT_FILE"
EOF
task sandbox 60 "[\"sh\", \"$tmp/sandbox-agent.sh\"]"
printf -- '-----BEGIN CERTIFICATE-----\nptb test CA line\n-----END CERTIFICATE-----\n' >"$tmp/ca.pem"
sed -i 's|"network": {"mode": "off"}|"network": {"mode": "off"}, "sandbox": {"hosts": {"huggingface.co": "host", "api.openai.com": "10.9.8.7"}, "ca_file": "ca.pem"}|' "$tmp/sandbox.json"
PTB_RUNNER_ONLY=secret-of-the-runner check "sandbox run" 0 "$ptb" run "$tmp/sandbox.json" --out "$tmp/sandbox"
rep=$tmp/sandbox/workspace/report.txt
gaps=$("$ptb" query "$tmp/sandbox/run.ptb" --format jsonl 'evt.type = gap' 2>/dev/null)
if echo "$gaps" | grep -q no_namespaces; then
  echo "no namespaces here: the run says so"; ok
else
  grep LEAK "$rep" && bad "sandbox: leaks: $(grep LEAK "$rep" | tr '\n' ';')" || ok
  grep -q "^run folder: home tmp workspace \$" "$rep" && ok || bad "sandbox: $(grep 'run folder' "$rep")"
  n=$(sed -n 's/^processes: //p' "$rep")
  [ -n "$n" ] && [ "$n" -lt 12 ] && ok || bad "sandbox: $n processes visible"
  grep -q "^tmp writable" "$rep" && [ -f "$tmp/sandbox/tmp/probe.txt" ] && [ ! -f /tmp/probe.txt ] && ok ||
    bad "sandbox: /tmp is not the run's temp folder"
  grep -q "^hosts: 127.0.0.1 *huggingface.co" "$rep" && ok || bad "sandbox: $(grep hosts: "$rep")"
  grep -q "^ca: 1 /etc/ssl/certs/ca-certificates.crt" "$rep" && ok || bad "sandbox: $(grep ca: "$rep")"
  echo "$gaps" | grep -q host_writable && ok || bad "sandbox: no host_writable gap"
  "$ptb" query "$tmp/sandbox/run.ptb" 'evt.type = file.write and file.path = "/tmp/probe.txt"' | grep -q captured &&
    ok || bad "sandbox: the write to the private /tmp was not captured"
fi
sed -i -e 's|"sandbox": {|"sandbox": {"isolation": "none", |' -e 's|"command": \[[^]]*\]|"command": ["true"]|' "$tmp/sandbox.json"
check "no isolation" 0 "$ptb" run "$tmp/sandbox.json" --out "$tmp/sandbox-none"
"$ptb" query "$tmp/sandbox-none/run.ptb" --format jsonl 'evt.type = gap' | grep -q '"disabled"' &&
  "$ptb" query "$tmp/sandbox-none/run.ptb" --format jsonl 'evt.type = gap' | grep -q hosts_not_applied &&
  ok || bad "isolation none: the gaps are missing"

# 7. faults: an agent that exits at once, one that deletes its workspace, one that fills the disk
task quick 60 '["true"]'
check "agent exits at once" 0 "$ptb" run "$tmp/quick.json" --out "$tmp/quick"
[ "$(man quick 'm["agent_result"]["end"]')" = exit ] && [ "$(man quick 'm["score"]["base_model_score"]')" = True ] &&
  ok || bad "quick: $(man quick 'm["agent_result"]')"
task rmws 60 '["sh", "-c", "mkdir final_model && cp base_model/* final_model/ && ws=$PWD && cd / && rm -rf \"$ws\"; echo removed"]'
check "agent deletes its workspace" 0 "$ptb" run "$tmp/rmws.json" --out "$tmp/rmws"
[ "$(man rmws 'm["final_model"]["present"]')" = False ] && [ "$(man rmws 'm["score"]["base_model_score"]')" = True ] &&
  "$ptb" verify "$tmp/rmws/run.ptb" >/dev/null && ok || bad "rmws: $(man rmws 'm["final_model"]')"
# the disk: the run folder on a 24 MB tmpfs the agent fills, the store elsewhere (root only)
mkdir "$tmp/small"
if mount -t tmpfs -o size=24m tmpfs "$tmp/small" 2>/dev/null; then
  task full 60 '["sh", "-c", "mkdir final_model && cp base_model/* final_model/ && dd if=/dev/zero of=fill bs=1M 2>/dev/null; echo filled"]'
  "$ptb" run "$tmp/full.json" --out "$tmp/small/run" --store "$tmp/full.ptb" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  [ $rc = 5 ] && grep -q "No space left on device" "$tmp/err" && ok || bad "disk full: exit $rc, $(cat "$tmp/err")"
  "$ptb" verify "$tmp/full.ptb" >/dev/null && ok || bad "disk full: the store does not verify"
  ev=$("$ptb" query "$tmp/full.ptb" --format jsonl 'evt.type in (checkpoint, run.end)')
  echo "$ev" | grep -q '"type":"checkpoint","path":"[^"]*/workspace/final_model"' && echo "$ev" | grep -q '"type":"run.end"' &&
    ok || bad "disk full: no checkpoint (hashed in place) or run.end: $ev"
  umount "$tmp/small"
else
  echo "not root: the disk-full case is skipped"
fi

# 8. bad specs and a used folder
echo '{"name": "x"}' >"$tmp/bad.json"
check "bad spec" 2 "$ptb" run "$tmp/bad.json" --out "$tmp/bad"
grep -q 'bad.json: \$.agent: missing' "$tmp/err" && ok || bad "bad spec message: $(cat "$tmp/err")"
check "used --out" 2 "$ptb" run "$tmp/honest.json" --out "$tmp/honest"
check "no task" 2 "$ptb" run
finish
