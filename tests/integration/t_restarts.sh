#!/usr/bin/env bash
# restart: policies (SPEC §3): on-failure crashing twice then staying up
# counts 2 restarts and passes; crashing forever fails after max_restarts;
# always restarts a clean exit too; dependents keep running meanwhile.
. "$(dirname "$0")/lib.sh"
: "${ENVRUN_BUILD:=$(dirname "$ENVRUN")}"
TS=$ENVRUN_BUILD/tests/testsvc
rep() { /usr/bin/python3 -c "import json,sys; r=json.load(open(sys.argv[1])); s={x['name']:x for x in r['services']}; sys.exit(0 if ($2) else 1)" "$1"; }

D=$TEST_TMP/twice; mkdir -p "$D"; M=envrun-t-restarts-$$-twice
cat >"$D/environment.yml" <<'YML'
services:
  flaky:
    command:
      - sh
      - -c
      - |
        n=$(cat "$ENVRUN_STATE_DIR/tries" 2>/dev/null || echo 0)
        echo $((n + 1)) > "$ENVRUN_STATE_DIR/tries"
        [ "$n" -ge 2 ] || exit 1
        echo up; exec sleep 30
    restart: on-failure
    max_restarts: 3
    ready: {output: "^up$"}
  dependent:
    command: [sleep, "30"]
    depends_on: [flaky]
YML
(cd "$D" && TESTSVC_MARKER=$M "$ENVRUN" exec --report r.json -- true) </dev/null >/dev/null 2>"$D/err"; rc=$?
[ "$rc" -eq 0 ] && ok "on-failure: two crashes, then up: exit 0" || fail "on-failure: two crashes, then up" "exit $rc" "$(tail -5 "$D/err")"
rep "$D/r.json" 's["flaky"]["restarts"] == 2 and s["flaky"]["result"] == "ok"' && ok "on-failure: 2 restarts counted" || fail "on-failure: 2 restarts counted" "$(cat "$D/r.json")"
assert_no_leftovers "$M" "on-failure"

D=$TEST_TMP/forever; mkdir -p "$D"; M=envrun-t-restarts-$$-forever
cat >"$D/environment.yml" <<YML
services:
  crasher:
    command: ["$TS", --stdout, starting, --exit, "3"]
    restart: on-failure
    max_restarts: 2
    ready: {output: never}
YML
(cd "$D" && TESTSVC_MARKER=$M "$ENVRUN" exec --report r.json -- true) </dev/null >/dev/null 2>"$D/err"; rc=$?
[ "$rc" -eq 125 ] && ok "crashing forever: exit 125" || fail "crashing forever: exit 125" "exit $rc"
rep "$D/r.json" 's["crasher"]["error"] == "ProcessExitedWithError" and s["crasher"]["restarts"] == 2 and "after 2 restarts" in s["crasher"]["message"]' \
  && ok "crashing forever: ProcessExitedWithError after max_restarts (2)" || fail "crashing forever: report" "$(cat "$D/r.json")"
grep -q "restart 1 of 2" "$D/err" && grep -q "restart 2 of 2" "$D/err" && ok "each restart is shown with its count" || fail "each restart is shown with its count" "$(cat "$D/err")"
assert_no_leftovers "$M" "crashing forever"

D=$TEST_TMP/always; mkdir -p "$D"; M=envrun-t-restarts-$$-always
cat >"$D/environment.yml" <<YML
services:
  ticker:
    command: ["$TS", --stdout, tick, --sleep, "0.2", --exit, "0"]
    restart: always
    max_restarts: 10
  watcher:
    command: ["$TS", --stdout, ready, --hold]
    ready: {output: ready}
    depends_on:
      ticker: {condition: started}
YML
(cd "$D" && TESTSVC_MARKER=$M "$ENVRUN" exec --report r.json -- sleep 1) </dev/null >/dev/null 2>"$D/err"; rc=$?
[ "$rc" -eq 0 ] && ok "always: clean exits restarted, run passes" || fail "always: run passes" "exit $rc" "$(tail -5 "$D/err")"
rep "$D/r.json" 's["ticker"]["restarts"] >= 2 and s["watcher"]["result"] == "ok" and s["watcher"]["restarts"] == 0' \
  && ok "always: restarted while its dependent kept running" || fail "always: report" "$(cat "$D/r.json")"
assert_no_leftovers "$M" "always"
finish
