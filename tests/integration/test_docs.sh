#!/usr/bin/env bash
# Every command has a page in docs/commands/, and every option a command accepts has a heading
# "### --name" on that page (the page is also what --help prints).
set -u
ptb=$1
docs=$2
fail=0 checked=0
for cmd in $("$ptb" --help | awk '/^commands:/{on=1; next} on && !NF {exit} on {print $1}'); do
  page="$docs/commands/ptb-$cmd.md"
  if [ ! -f "$page" ]; then
    echo "FAIL: ptb $cmd has no page $page"; fail=$((fail + 1)); continue
  fi
  "$ptb" "$cmd" --help | cmp -s - "$page" || { echo "FAIL: ptb $cmd --help differs from $page"; fail=$((fail + 1)); }
  while read -r opt _; do
    [ -n "$opt" ] || continue
    checked=$((checked + 1))
    grep -q -- "^### $opt\b" "$page" || { echo "FAIL: ptb $cmd: option $opt has no '### $opt' heading in $page"; fail=$((fail + 1)); }
  done < <("$ptb" "$cmd" --list-options)
done
echo "$checked options checked, $fail failed"
[ "$checked" -gt 0 ] && [ "$fail" -eq 0 ]
