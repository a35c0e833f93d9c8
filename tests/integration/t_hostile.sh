#!/bin/bash
# Hostile inputs (tests/hostile/README.md): a release build of envrun must
# refuse each one - exit status 2, an error on stderr - within 1 s of wall
# time and 50 MB of peak RSS, as measured by GNU time.
. "$(dirname "$0")/lib.sh"
set -eu

TIME=/usr/bin/time
PYTHON=/usr/bin/python3
MAX_SECONDS=1
MAX_RSS_KB=$((50 * 1024))

# A missing tool is a failure, never a skip: the bounds would go unchecked.
if [ ! -x "$TIME" ]; then
  fail "setup" "$TIME not found: install GNU time (Debian package 'time')"
  finish
fi
if [ ! -x "$PYTHON" ]; then
  fail "setup" "$PYTHON not found: it generates the hostile files"
  finish
fi
if [ ! -x "$ENVRUN_RELEASE" ]; then
  fail "setup" "ENVRUN_RELEASE='$ENVRUN_RELEASE' is not an executable"
  finish
fi

if ! "$PYTHON" "$ENVRUN_SRC/tests/hostile/gen.py" "$TEST_TMP/in" 2>"$TEST_TMP/gen.err"; then
  fail "setup" "tests/hostile/gen.py failed: $(cat "$TEST_TMP/gen.err")"
  finish
fi

# NAME EXPECTED: the error must name the limit that stopped the file, so
# that a file refused for the wrong reason does not pass.
check() {
  local name=$1 expected=$2 file=$TEST_TMP/in/$1.yml
  local status=0 secs rss
  if [ ! -s "$file" ]; then
    fail "$name" "gen.py did not write $name.yml"
    return 0
  fi
  "$TIME" -f '%e %M' -o "$TEST_TMP/time" \
    "$ENVRUN_RELEASE" validate -f "$file" >"$TEST_TMP/out" 2>"$TEST_TMP/err" || status=$?
  # GNU time writes "Command exited with non-zero status N" (or "Command
  # terminated by signal N") before the line we asked for: take the last.
  read -r secs rss < <(tail -n 1 "$TEST_TMP/time") || true
  if ! [[ ${secs:-} =~ ^[0-9]+(\.[0-9]+)?$ && ${rss:-} =~ ^[0-9]+$ ]]; then
    fail "$name" "cannot read $TIME's output: $(cat "$TEST_TMP/time")"
    return 0
  fi
  local problems=()
  [ "$status" -eq 2 ] || problems+=("exit status $status, expected 2")
  [ -s "$TEST_TMP/err" ] || problems+=("nothing on stderr")
  if [ -s "$TEST_TMP/err" ] && ! grep -q -- "$expected" "$TEST_TMP/err"; then
    problems+=("stderr does not mention '$expected': $(head -c 300 "$TEST_TMP/err")")
  fi
  awk -v s="$secs" -v max="$MAX_SECONDS" 'BEGIN { exit !(s < max) }' ||
    problems+=("took $secs s, limit $MAX_SECONDS s")
  [ "$rss" -lt "$MAX_RSS_KB" ] || problems+=("max RSS $rss KB, limit $MAX_RSS_KB KB")
  if [ ${#problems[@]} -gt 0 ]; then
    fail "$name ($secs s, $rss KB)" "${problems[@]}"
  else
    ok "$name ($secs s, $rss KB): $(head -n 1 "$TEST_TMP/err" | sed "s|$TEST_TMP/in/||" | cut -c 1-120)"
  fi
}

check alias_bomb 'nodes after expanding aliases'
check deep_nesting 'nesting deeper than'
check huge_scalar 'file too large'
check random_bytes 'file too large'
finish
