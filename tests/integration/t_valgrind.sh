#!/usr/bin/env bash
# valgrind (memcheck) over the release binary: validate, config and a whole
# exec.  valgrind emulates neither clone3 nor pidfd_open, so exec runs on the
# fork + SIGCHLD fallback path here: this keeps that path exercised.
. "$(dirname "$0")/lib.sh"
command -v valgrind >/dev/null || { fail "valgrind" "valgrind is not installed (tests/run installs it)"; finish; exit 1; }
vg() { valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
         --show-leak-kinds=definite,indirect "$ENVRUN_RELEASE" "$@"; }

out=$(vg validate -f "$ENVRUN_SRC/examples/shop/environment.yml" 2>&1) && ok "validate under valgrind" || fail "validate under valgrind" "$out"
out=$(vg config --json -f "$ENVRUN_SRC/tests/cases/valid/schema_full.yml" 2>&1 >/dev/null) && ok "config under valgrind" || fail "config under valgrind" "$out"
out=$(vg validate -f "$ENVRUN_SRC/tests/cases/invalid/types.yml" 2>&1); rc=$?
[ "$rc" -eq 2 ] && ok "invalid file under valgrind (exit 2, no memory errors)" || fail "invalid file under valgrind" "exit $rc" "$out"

mkdir -p "$TEST_TMP/env"
TS=${ENVRUN_BUILD:-$(dirname "$ENVRUN")}/tests/testsvc
read -r port port2 < <(/usr/bin/python3 -c 'import socket
a=socket.socket(); a.bind(("127.0.0.1",0)); b=socket.socket(); b.bind(("127.0.0.1",0))
print(a.getsockname()[1], b.getsockname()[1])')
cat >"$TEST_TMP/env/environment.yml" <<YML
services:
  net:
    command: ["$TS", --sleep, "0.2", --tcp, "$port", --http, "$port2", "204", --hold]
    ready:
      - tcp: $port
      - http: http://127.0.0.1:$port2/
        status: 204
  probe:
    command: ["$TS", --sleep, "0.2", --pidfile, flag, --hold]
    ready: [{exec: [test, -f, flag]}, {pidfile: flag}]
YML
cat >>"$TEST_TMP/env/environment.yml" <<'YML'

  db:
    command: [sh, -c, 'echo booting; echo "ready to serve"; exec sleep 30']
    ready: {output: "^ready"}
  job:
    command: [sh, -c, 'echo migrated']
    ready: {exit: 0}
    depends_on: [db]
  app:
    command: [sleep, "30"]
    depends_on:
      job: {condition: completed}
YML
export TESTSVC_MARKER=envrun-t-valgrind-$$
out=$(cd "$TEST_TMP/env" && vg exec --report report.json -- sh -c 'exit 0' 2>&1); rc=$?
if [ "$rc" -eq 0 ] && /usr/bin/python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r["result"]=="ok" and len(r["services"])==5 else 1)' "$TEST_TMP/env/report.json"; then
  ok "exec under valgrind (fallback path)"
else
  fail "exec under valgrind (fallback path)" "exit $rc" "$out"
fi
assert_no_leftovers "$TESTSVC_MARKER" "exec under valgrind"

# The detached verbs under valgrind: the supervisor (its own process, whose
# valgrind report goes to a file: its stderr is its log), status, logs,
# restart (through the control API, with a waiter), exec against it, down.
vgsup() { valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
            --show-leak-kinds=definite,indirect --trace-children=no --child-silent-after-fork=no \
            --log-file="$TEST_TMP/vg.%p.log" "$ENVRUN_RELEASE" "$@"; }
st="$TEST_TMP/state"
out=$(cd "$TEST_TMP/env" && vgsup --state-dir "$st" -p vgup up -d 2>&1); rc=$?
[ "$rc" -eq 0 ] && ok "up -d under valgrind" || fail "up -d under valgrind" "exit $rc" "$out"
out=$(cd "$TEST_TMP/env" && vg --state-dir "$st" -p vgup status --json 2>&1); rc=$?
[ "$rc" -eq 0 ] && ok "status under valgrind" || fail "status under valgrind" "exit $rc" "$out"
out=$(cd "$TEST_TMP/env" && vg --state-dir "$st" -p vgup logs -n 5 --timestamps 2>&1); rc=$?
grep -q "db.*ready to serve" <<<"$out" && [ "$rc" -eq 0 ] && ok "logs under valgrind" || fail "logs under valgrind" "exit $rc" "$out"
out=$(cd "$TEST_TMP/env" && vg --state-dir "$st" -p vgup restart db 2>&1); rc=$?
[ "$rc" -eq 0 ] && ok "restart under valgrind" || fail "restart under valgrind" "exit $rc" "$out"
out=$(cd "$TEST_TMP/env" && vg --state-dir "$st" -p vgup exec -- true 2>&1); rc=$?
[ "$rc" -eq 0 ] && ok "exec against up under valgrind" || fail "exec against up under valgrind" "exit $rc" "$out"
out=$(cd "$TEST_TMP/env" && vg --state-dir "$st" -p vgup down 2>&1); rc=$?
[ "$rc" -eq 0 ] && ok "down under valgrind" || fail "down under valgrind" "exit $rc" "$out"
# No valgrind log (the supervisor's, the waiting command's) holds an error:
# with -q, errors are its only "==PID==" lines ("--PID--" lines are notes,
# such as the syscalls it does not emulate, which envrun falls back from).
bad=$(find "$TEST_TMP" -name 'vg.*.log' -exec grep -H '^==' {} +)
[ -z "$bad" ] && [ -n "$(find "$TEST_TMP" -name 'vg.*.log')" ] && ok "no memory errors in the supervisor" \
  || fail "no memory errors in the supervisor" "$bad"
assert_no_leftovers "$TESTSVC_MARKER" "up -d under valgrind"
finish
