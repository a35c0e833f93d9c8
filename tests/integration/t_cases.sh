#!/usr/bin/env bash
# Parser/validator cases as data: every tests/cases/invalid/NAME.yml must
# make `envrun validate` exit 2 printing exactly NAME.err on stderr (and
# nothing on stdout); every tests/cases/valid/NAME.yml and every example must
# validate silently with exit 0; where NAME.config.yml exists, `envrun config`
# must print exactly it (@DIR@ stands for the case's directory).
. "$(dirname "$0")/lib.sh"
cases=$ENVRUN_SRC/tests/cases
# A fixed, minimal environment: cases must not depend on the caller's.
run() { env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/nonexistent CASE_PORT=8080 "$ENVRUN" "$@"; }

for yml in "$cases"/invalid/*.yml; do
  name=invalid/$(basename "$yml")
  exp=${yml%.yml}.err
  if [ ! -f "$exp" ]; then fail "$name" "no expected errors file ${exp#$ENVRUN_SRC/}"; continue; fi
  out=$(cd "$cases/invalid" && run validate -f "$(basename "$yml")" 2>"$TEST_TMP/err"); rc=$?
  if [ "$rc" -ne 2 ]; then fail "$name" "exit status $rc, expected 2"; continue; fi
  if [ -n "$out" ]; then fail "$name" "unexpected stdout: $out"; continue; fi
  if ! diff -u "$exp" "$TEST_TMP/err" >"$TEST_TMP/diff"; then fail "$name" "$(cat "$TEST_TMP/diff")"; continue; fi
  ok "$name"
done

for yml in "$cases"/valid/*.yml "$ENVRUN_SRC"/examples/*/environment.yml; do
  name=${yml#$ENVRUN_SRC/}
  dir=$(dirname "$yml")
  out=$(cd "$dir" && run validate -f "$(basename "$yml")" 2>&1); rc=$?
  if [ "$rc" -ne 0 ] || [ -n "$out" ]; then fail "$name" "exit status $rc: $out"; continue; fi
  exp=${yml%.yml}.config.yml
  if [ -f "$exp" ]; then
    (cd "$dir" && run config -f "$(basename "$yml")") | sed "s|$dir|@DIR@|g" >"$TEST_TMP/config"
    if ! diff -u "$exp" "$TEST_TMP/config" >"$TEST_TMP/diff"; then fail "$name (config)" "$(cat "$TEST_TMP/diff")"; continue; fi
  fi
  ok "$name"
done
finish
