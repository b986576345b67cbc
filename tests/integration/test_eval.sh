#!/usr/bin/env bash
# `ptb eval` end to end: a model trained until it knows its data scores it
# well, an untrained one badly; --limit; the openai backend against a server serving the local
# backend's answers gives the same metrics; a missing or damaged checkpoint, a malformed
# benchmark: exit codes, and a metrics file that says why instead of a score of zero.
set -u
ptb=$1
tmp=$(mktemp -d /tmp/ptb-eval-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/testlib.sh"
for w in cat dog sun sky sea; do printf '{"prompt": "%s>", "completion": "%s"}\n' "$w" "$(echo $w | rev)"; done >"$tmp/data.jsonl"
small=(--init --layers 2 --heads 2 --channels 32 --max-seq 16 --batch 5 --lr 0.01)
"$ptb" train "${small[@]}" --steps 150 --data "$tmp/data.jsonl" --out "$tmp/m" -q || bad "train"
"$ptb" train "${small[@]}" --steps 1 --lr 0 --data "$tmp/data.jsonl" --out "$tmp/untrained" -q || bad "train 0"

check "eval trained" 0 "$ptb" eval --model "$tmp/m" --benchmark "$tmp/data.jsonl" --out "$tmp/m.json"
[ "$(field "$tmp/m.json" status)" = ok ] && ok || bad "status $(field "$tmp/m.json" status)"
acc=$(field "$tmp/m.json" accuracy)
python3 -c "import sys; sys.exit(0 if float('$acc') >= 0.8 else 1)" && ok || bad "trained accuracy $acc"
grep -q 'correct' "$tmp/err" && ok || bad "no summary"
check "eval untrained" 0 "$ptb" eval --model "$tmp/untrained" --benchmark "$tmp/data.jsonl" --out "$tmp/u.json" -q
python3 -c "import sys; sys.exit(0 if float('$(field "$tmp/u.json" accuracy)') < float('$acc') else 1)" && ok || bad "untrained scores as well"
# the results name each item, its output and whether it is correct
python3 - "$tmp/m.json" <<'PY' && ok || bad "results"
import json, sys
m = json.load(open(sys.argv[1]))
r = m["results"]
assert len(r) == m["items"] == 5 and m["correct"] == sum(x["correct"] for x in r)
assert r[0]["prompt"] == "cat>" and r[0]["expected"] == "tac" and isinstance(r[0]["output"], str)
PY
check "limit" 0 "$ptb" eval --model "$tmp/m" --benchmark "$tmp/data.jsonl" --limit 2 --out "$tmp/l.json" -q
[ "$(field "$tmp/l.json" items)" = 2 ] && ok || bad "limit: $(field "$tmp/l.json" items) items"
# normalisation: case, spaces, a trailing period, the first line only
printf '{"prompt": "cat>", "answer": "  TAC. "}\n' >"$tmp/norm.jsonl"
"$ptb" eval --model "$tmp/m" --benchmark "$tmp/norm.jsonl" --out "$tmp/n.json" -q
want=$(python3 -c "import json; print(1 if json.load(open('$tmp/m.json'))['results'][0]['correct'] else 0)")
[ "$(field "$tmp/n.json" correct)" = "$want" ] && ok || bad "normalisation"

# the openai backend against a server that serves the local backend's answers (with one 503
# per prompt first, and a key from the environment): the same outputs, the same score
python3 - "$tmp/m.json" "$tmp/answers.jsonl" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
with open(sys.argv[2], "w") as f:
    for r in m["results"]:
        f.write(json.dumps({"prompt": r["prompt"], "answer": r["output"]}) + "\n")
PY
src=$(cd "$(dirname "$0")" && pwd)
python3 "$src/eval_server.py" --port 0 --answers "$tmp/answers.jsonl" --fail-first 1 \
  --stats "$tmp/stats.json" >"$tmp/port" 2>"$tmp/server.err" &
server=$!
for _ in $(seq 50); do [ -s "$tmp/port" ] && break; sleep 0.1; done
port=$(head -1 "$tmp/port")
PTB_TEST_KEY=sk-test-0123456789 check "eval openai" 0 "$ptb" eval --backend openai \
  --url "http://127.0.0.1:$port/v1" --api-model ptb-test --api-key-env PTB_TEST_KEY \
  --benchmark "$tmp/data.jsonl" --out "$tmp/o.json" --concurrency 3
kill "$server" 2>/dev/null; wait "$server" 2>/dev/null
python3 - "$tmp/m.json" "$tmp/o.json" "$tmp/stats.json" <<'PY' && ok || bad "openai differs from local"
import json, sys
a, b, st = (json.load(open(p)) for p in sys.argv[1:4])
assert b["backend"] == "openai" and b["status"] == "ok", b["status"]
assert [r["output"] for r in a["results"]] == [r["output"] for r in b["results"]]
assert a["correct"] == b["correct"] and a["accuracy"] == b["accuracy"]
assert all(n == 2 for n in st["requests"].values()), st["requests"]  # one 503, one answer
assert st["authorization"] == ["Bearer sk-test-0123456789"], st["authorization"]
PY
grep -q 'sk-test' "$tmp/o.json" "$tmp/err" && bad "the key was printed" || ok
check "openai unreachable" 5 "$ptb" eval --backend openai --url "http://127.0.0.1:$port/v1" \
  --api-model m --retries 0 --benchmark "$tmp/data.jsonl" --out "$tmp/e0.json"
[ "$(field "$tmp/e0.json" status)" = error ] && grep -q 'cannot reach' "$tmp/e0.json" && ok ||
  bad "unreachable: $(cat "$tmp/e0.json")"

# failures: a metrics file that says why, never a zero score
check "no model" 3 "$ptb" eval --model "$tmp/none" --benchmark "$tmp/data.jsonl" --out "$tmp/e1.json"
[ "$(field "$tmp/e1.json" status)" = error ] && [ "$(field "$tmp/e1.json" stage)" = model ] && ok || bad "no model: $(cat "$tmp/e1.json")"
mkdir -p "$tmp/broken" && cp "$tmp/m/config.json" "$tmp/broken/" && head -c 300 "$tmp/m/model.safetensors" >"$tmp/broken/model.safetensors"
check "damaged model" 4 "$ptb" eval --model "$tmp/broken" --benchmark "$tmp/data.jsonl" --out "$tmp/e2.json"
[ "$(field "$tmp/e2.json" status)" = error ] && ok || bad "damaged: $(cat "$tmp/e2.json")"
grep -q 'model.safetensors' "$tmp/e2.json" && ok || bad "damaged: the error does not name the file"
cp "$tmp/m/model.safetensors" "$tmp/broken/" && rm "$tmp/broken/config.json"
check "no config" 3 "$ptb" eval --model "$tmp/broken" --benchmark "$tmp/data.jsonl" --out "$tmp/e3.json"
printf '{"prompt": "a", "answer": "b"}\n{"prompt": "a"}\n' >"$tmp/bad.jsonl"
check "bad benchmark" 4 "$ptb" eval --model "$tmp/m" --benchmark "$tmp/bad.jsonl" --out "$tmp/e4.json"
grep -q 'bad.jsonl:2' "$tmp/e4.json" && ok || bad "bad benchmark: $(cat "$tmp/e4.json")"
check "no benchmark" 3 "$ptb" eval --model "$tmp/m" --benchmark "$tmp/none.jsonl" --out "$tmp/e5.json"
check "no out" 2 "$ptb" eval --model "$tmp/m" --benchmark "$tmp/data.jsonl"
check "backend" 2 "$ptb" eval --backend tgi --model "$tmp/m" --benchmark "$tmp/data.jsonl" --out "$tmp/x.json"
check "openai without url" 2 "$ptb" eval --backend openai --benchmark "$tmp/data.jsonl" --out "$tmp/x.json"
check "key env missing" 2 "$ptb" eval --backend openai --url http://127.0.0.1:9/v1 --api-model m --api-key-env PTB_NO_SUCH_VAR --benchmark "$tmp/data.jsonl" --out "$tmp/x.json"
finish
