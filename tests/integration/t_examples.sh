#!/usr/bin/env bash
# Every small example under examples/ runs for real with `envrun exec` (its
# own `test:` command) and leaves nothing behind.  examples/shop needs
# PostgreSQL, Redis and nginx; it has a test of its own.
. "$(dirname "$0")/lib.sh"
for name in daemon flaky http-service job-chain notify; do
  dir=$ENVRUN_SRC/examples/$name
  M=envrun-t-examples-$$-$name
  out=$(cd "$dir" && TESTSVC_MARKER=$M timeout -s KILL 60 "$ENVRUN" exec --report "$TEST_TMP/$name.json" 2>&1 </dev/null); rc=$?
  if [ "$rc" -eq 0 ] && /usr/bin/python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r["result"]=="ok" and r["test"]["exit_code"]==0 else 1)' "$TEST_TMP/$name.json"; then
    ok "examples/$name: exec passes"
  else
    fail "examples/$name: exec passes" "exit $rc" "$(printf '%s\n' "$out" | tail -15)"
  fi
  assert_no_leftovers "$M" "examples/$name"
done
finish
