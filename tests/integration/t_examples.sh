#!/usr/bin/env bash
# Every small example under examples/ runs for real with `envrun exec` (its
# own `test:` command) and leaves nothing behind.  examples/shop needs
# PostgreSQL, Redis and nginx; it has a test of its own.  examples/broken
# must fail, the way the demo shows it: the report names the service, the
# reason (and where it does listen) and its last lines.  examples/demo
# itself (apt-get, a release build) is only checked for syntax here.
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

out=$(bash -n "$ENVRUN_SRC/examples/demo" 2>&1) && ok "examples/demo: bash -n" || fail "examples/demo: bash -n" "$out"

dir=$ENVRUN_SRC/examples/broken
out=$(cd "$dir" && "$ENVRUN" validate 2>&1) && [ -z "$out" ] && ok "examples/broken: validates" \
  || fail "examples/broken: validates" "$out"
M=envrun-t-examples-$$-broken
out=$(cd "$dir" && TESTSVC_MARKER=$M timeout -s KILL 60 "$ENVRUN" exec --report "$TEST_TMP/broken.json" 2>&1 </dev/null); rc=$?
if why=$(/usr/bin/python3 - "$TEST_TMP/broken.json" <<'PY' 2>&1
import json, sys
r = json.load(open(sys.argv[1]))
s = {x["name"]: x for x in r["services"]}
assert r["result"] == "failed" and r["exit_status"] == 125, (r["result"], r["exit_status"])
assert s["db"]["result"] == "ok", s["db"]
api = s["api"]
assert api["result"] == "TimeoutExpired", api
assert "not ready within 3s" in api["message"] and "api listens on 127.0.0.1:" in api["message"], api["message"]
assert any("Serving HTTP on 127.0.0.1 port" in l for l in api["output_tail"]), api["output_tail"]
assert s["web"]["result"] == "DependencyFailed" and "web <- api" in s["web"]["message"], s["web"]
assert r["test"]["exit_code"] is None, r["test"]
PY
); [ "$rc" -eq 125 ] && grep -q '^--- last lines of api ---' <<<"$out"; then
  ok "examples/broken: fails (exit 125), the report names api, the reason and its last lines"
else
  fail "examples/broken: fails (exit 125), the report names api, the reason and its last lines" \
    "exit $rc" "$why" "$(printf '%s\n' "$out" | tail -15)"
fi
assert_no_leftovers "$M" "examples/broken"
finish
