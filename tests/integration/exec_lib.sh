# Helpers shared by the exec-driving integration tests (t_exec.sh,
# t_checks.sh), sourced after lib.sh.  The caller sets MARK_PREFIX, PY and TS.
# Each case gets a directory $D, a marker $M (TESTSVC_MARKER, so leftover
# processes are found), and helpers to run envrun exec and read its report.
FORCED=0
case "${ENVRUN_FORCE_REAPER:-}" in 1|true|yes) FORCED=1 ;; esac
echo "# envrun: $ENVRUN  forced fallbacks: FORCE_REAPER=${ENVRUN_FORCE_REAPER:-} NO_PIDFD=${ENVRUN_NO_PIDFD:-}"

# ---------------------------------------------------------------- helpers

now_ns() { date +%s%N; }

# newcase NAME: $CASE, a fresh directory $D and the marker $M.
newcase() {
  CASE=$1
  D=$TEST_TMP/$1
  mkdir -p "$D"
  M=$MARK_PREFIX-$$-$1
}

# yml: environment.yml of the case, from stdin.
yml() { cat >"$D/environment.yml"; }

# runx EXEC-ARGS...: envrun exec in $D (stdin /dev/null); sets RC and MS (wall
# milliseconds).  timeout(1) only guards against a hang.
runx() {
  local t0 pre=()
  if [ "${1:-}" = -v ]; then pre=(-v); shift; fi
  rm -f "$D/report.json"
  t0=$(now_ns)
  (cd "$D" && export TESTSVC_MARKER="$M" &&
    exec timeout -s KILL 40 "$ENVRUN" "${pre[@]}" exec --report report.json -f environment.yml "$@") \
    </dev/null >"$D/stdout" 2>"$D/stderr"
  RC=$?
  MS=$((($(now_ns) - t0) / 1000000))
  printf '# %s: envrun exec took %d ms, exit %d\n' "$CASE" "$MS" "$RC"
}

diag() { printf '%s\n' "envrun stderr (last lines):"; tail -n 12 "$D/stderr" 2>/dev/null | sed 's/^/  | /'; }

# is LABEL ACTUAL EXPECTED
is() {
  if [ "$2" = "$3" ]; then ok "$CASE: $1"; else fail "$CASE: $1" "got '$2', want '$3'" "$(diag)"; fi
}

# expect_rc EXPECTED: checks RC of the last run.
expect_rc() { is "exit status $1" "$RC" "$1"; }

# under LABEL MS LIMIT_MS
under() {
  if [ "$2" -lt "$3" ]; then ok "$CASE: $1 (${2} ms < $3 ms)"; else fail "$CASE: $1" "took ${2} ms, limit $3 ms" "$(diag)"; fi
}

# rep LABEL PYEXPR: PYEXPR, evaluated with r = the report of the last run and
# s(NAME) = its service NAME, must be true.
rep() {
  local out
  if out=$("$PY" - "$D/report.json" "$2" 2>&1 <<'PYEOF'
import json, sys
path, expr = sys.argv[1], sys.argv[2]
try:
    r = json.load(open(path))
except Exception as e:
    print("no usable report: %s" % e); sys.exit(1)
def s(name):
    for x in r.get("services", []):
        if x.get("name") == name:
            return x
    raise KeyError("no service %r in the report" % name)
try:
    v = eval(expr)
except Exception as e:
    v = False; print("error: %r" % e)
if not v:
    print("false: " + expr)
    print("top: " + json.dumps({k: r.get(k) for k in ("result", "exit_status", "containment", "test")}))
    for x in r.get("services", []):
        print("svc: " + json.dumps({k: x.get(k) for k in ("name", "result", "error", "pid", "exit_code",
              "signal", "killed", "started_ms", "ready_ms", "stopped_ms", "message")}))
    sys.exit(1)
PYEOF
  ); then ok "$CASE: $1"; else fail "$CASE: $1" "$out"; fi
}

rep_all_ok() {
  rep "report result ok, exit_status 0" 'r["result"] == "ok" and r["exit_status"] == 0'
  rep "every service ok" 'all(x["result"] == "ok" and x["error"] is None for x in r["services"])'
}

# rep_fails SVC ERROR: the run failed (125) with SVC's error ERROR and CMD
# never ran.
rep_fails() {
  expect_rc 125
  rep "$1 is $2" "s(\"$1\")[\"error\"] == \"$2\" and s(\"$1\")[\"ready_ms\"] is None"
  rep "report exit_status 125" 'r["exit_status"] == 125 and r["result"] != "ok"'
  is "CMD never ran" "$([ -e "$D/cmd_start" ] && echo ran || echo no)" no
}

containment_ok() {
  if [ "$FORCED" = 1 ]; then
    rep "containment is reaper (forced)" 'r["containment"] == "reaper"'
  else
    rep "containment named" 'r["containment"] in ("cgroup2", "cgroup1", "reaper")'
  fi
}

# at_timeout: the last run gave up at the services' 1 s timeout: not before,
# and well within 3 s.
at_timeout() {
  if [ "$MS" -ge 1000 ] && [ "$MS" -lt 3000 ]; then ok "$CASE: gave up at the 1 s timeout ($MS ms)"
  else fail "$CASE: gave up at the 1 s timeout" "took $MS ms, want 1000..3000" "$(diag)"; fi
}

leftovers() { assert_no_leftovers "$M" "$CASE"; }
