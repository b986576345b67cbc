#!/usr/bin/env bash
# `ptb import --agent-log` end to end with the real binary: a real Claude Code transcript of
# ../shared/data/agent-streams imported and queried (every tool_use of the file a tool.call with
# its id, every result paired), the format detected, a stream cut off mid-line (a gap, exit 0),
# a file that is no agent log (exit 4), bad options (exit 2), --append, standard input.
# Skipped (77) without the shared data.
set -u
ptb=$1
data=${PTB_TEST_DATA:-$(dirname "$0")/../../../shared/data}/agent-streams
src=$(cd "$(dirname "$0")/../.." && pwd)
[ -d "$data/claude-code-transcripts" ] || { echo "SKIP: no $data"; exit 77; }
tmp=$(mktemp -d /tmp/ptb-agent-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/testlib.sh"

for t in "$data"/claude-code-transcripts/*.jsonl; do
  name=$(basename "$t" .jsonl)
  check "import $name" 0 "$ptb" import --agent-log "$t" "$tmp/$name.ptb"
  grep -q '(claude-transcript)' "$tmp/err" && ok || bad "$name: format not detected: $(cat "$tmp/err")"
  check "query $name" 0 "$ptb" query --format jsonl "$tmp/$name.ptb" 'evt.type = tool.call'
  # the ids of the file's tool_use blocks, and of the calls in the store
  python3 - "$t" "$tmp/out" <<'PY' && ok || bad "$name: tool calls differ"
import json, sys
want = set()
for line in open(sys.argv[1]):
    m = json.loads(line).get("message")
    for b in (m or {}).get("content") or []:
        if isinstance(b, dict) and b.get("type") == "tool_use":
            want.add(b["id"])
got = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
ids = {e["call_id"] for e in got}
assert all(e.get("name") for e in got), "a call without a name"
assert len(got) == len(want) and ids == want, (len(got), len(want), want ^ ids)
PY
  check "results $name" 0 "$ptb" query --format jsonl "$tmp/$name.ptb" 'evt.type = tool.result'
  calls=$("$ptb" query --format jsonl "$tmp/$name.ptb" 'evt.type = tool.call' | wc -l)
  [ "$(wc -l <"$tmp/out")" = "$calls" ] && ok || bad "$name: results and calls differ"
  check "no gaps $name" 0 "$ptb" query --format jsonl "$tmp/$name.ptb" 'evt.type = gap'
  [ -s "$tmp/out" ] && bad "$name: gaps: $(head -3 "$tmp/out")" || ok
  check "verify $name" 0 "$ptb" verify "$tmp/$name.ptb"
done

# the other formats, detected (fixtures written from their documentation)
for f in codex gemini opencode; do
  check "import $f" 0 "$ptb" import --agent-log "$src/tests/unit/runner/agent-fixtures/$f.jsonl" \
    "$tmp/$f.ptb"
  grep -q "($f)" "$tmp/err" && ok || bad "$f not detected: $(cat "$tmp/err")"
done
check "given format" 0 "$ptb" import --agent-log "$src/tests/unit/runner/agent-fixtures/codex.jsonl" \
  --format codex "$tmp/codex2.ptb"

# a stream cut off mid-line (an agent stopped at its budget): a gap, not a failure
t=$(ls "$data"/claude-code-transcripts/*.jsonl | head -1)
head -c 20000 "$t" >"$tmp/cut.jsonl"
check "cut stream" 0 "$ptb" import --agent-log "$tmp/cut.jsonl" "$tmp/cut.ptb"
check "its gap" 0 "$ptb" query --format jsonl "$tmp/cut.ptb" 'evt.type = gap'
grep -q '"truncated_line"' "$tmp/out" && ok || bad "no truncated_line gap: $(cat "$tmp/out")"

# standard input, and --append to the same store
check "stdin" 0 "$ptb" import --agent-log - "$tmp/stdin.ptb" <"$t"
check "plain query" 0 "$ptb" query "$tmp/stdin.ptb" 'evt.type = tool.call'
before=$(grep -c ' tool.call ' "$tmp/out")
[ "$before" -gt 0 ] && ok || bad "no tool.call in the plain query: $(head -3 "$tmp/out")"
check "append" 0 "$ptb" import --append --agent-log "$src/tests/unit/runner/agent-fixtures/gemini.jsonl" \
  "$tmp/stdin.ptb"
check "appended" 0 "$ptb" query --format jsonl "$tmp/stdin.ptb" 'evt.type = tool.call'
[ "$(wc -l <"$tmp/out")" = $((before + 2)) ] && ok || bad "append: $(wc -l <"$tmp/out") calls"

# not an agent log; bad options
head -c 3000 /dev/urandom | base64 >"$tmp/junk.txt"
check "not an agent log" 4 "$ptb" import --agent-log "$tmp/junk.txt" "$tmp/junk.ptb"
check "bad format" 2 "$ptb" import --agent-log "$t" --format claude-code "$tmp/x.ptb"
check "format without agent-log" 2 "$ptb" import --jsonl "$t" --format claude "$tmp/x.ptb"
check "two inputs" 2 "$ptb" import --agent-log "$t" --pcap "$t" "$tmp/x.ptb"
check "skip-bad" 2 "$ptb" import --agent-log "$t" --skip-bad "$tmp/x.ptb"
check "missing file" 5 "$ptb" import --agent-log "$tmp/none.jsonl" "$tmp/x.ptb"
check "store exists" 5 "$ptb" import --agent-log "$t" "$tmp/cut.ptb"
[ -e "$tmp/x.ptb" ] && bad "a refused import left $tmp/x.ptb" || ok
finish
