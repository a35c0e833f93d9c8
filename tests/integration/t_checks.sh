#!/usr/bin/env bash
# envrun exec, end to end, for every readiness kind (SPEC §4): a service is
# ready only when its resource really is, so the test command reaches it in
# every run; each kind also times out (TimeoutExpired) when it never passes,
# and address checks find a foreign holder before spawn (AlreadyRunning).
#
# Each case writes its own environment.yml under $TEST_TMP/<case>/ and runs
#   envrun exec --report report.json -f environment.yml -- CMD
# with TESTSVC_MARKER=envrun-t-checks-<pid>-<case> exported for that run only;
# after each run no process may carry it any more.  Services are testsvc; a
# service records (--record, CLOCK_MONOTONIC ns) the moment just before its
# resource appears (listener, socket, pid file, READY=1), and CMD starts
# with `testsvc --record cmd_start`, so "CMD did not start before the service
# was ready" is a comparison of two numbers (recording after the resource
# appeared would race with envrun's legitimately fast start of CMD); CMD
# then proves the resource is really there (connect, GET, kill -0).
#
# Runs as is, and again (ctest integration.t_checks_fallback) with
# ENVRUN_FORCE_REAPER=1 ENVRUN_NO_PIDFD=1.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
: "${ENVRUN_BUILD:=$(dirname "$ENVRUN")}"
TS=$ENVRUN_BUILD/tests/testsvc
PY=/usr/bin/python3
[ -x "$TS" ] || { echo "testsvc not found at $TS"; exit 1; }
TEST_TMP=$(cd -P "$TEST_TMP" && pwd)
MARK_PREFIX=envrun-t-checks
. "$(dirname "${BASH_SOURCE[0]}")/exec_lib.sh"

# after LABEL LATER EARLIER: the ns in file LATER is greater than the one in
# EARLIER (both written by testsvc --record); prints the gap.
after() {
  local out
  if out=$("$PY" - "$2" "$3" 2>&1 <<'PYEOF'
import sys
try:
    later, earlier = (int(open(p).read().split()[0]) for p in sys.argv[1:3])
except Exception as e:
    print("cannot read the times: %s" % e); sys.exit(1)
if later <= earlier:
    print("%s (%d) is not after %s (%d): %.3f ms early" % (sys.argv[1], later, sys.argv[2], earlier,
          (earlier - later) / 1e6))
    sys.exit(1)
print("%.1f ms" % ((later - earlier) / 1e6))
PYEOF
  ); then ok "$CASE: $1 (by $out)"; else fail "$CASE: $1" "$out" "$(diag)"; fi
}

# A probe for CMD: `probe.py tcp HOST PORT`, `probe.py unix PATH`,
# `probe.py http URL STATUS`; exits 0 when the resource answers as expected.
PROBE=$TEST_TMP/probe.py
cat >"$PROBE" <<'PYEOF'
import socket, sys, urllib.request, urllib.error
kind = sys.argv[1]
try:
    if kind == "tcp":
        socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=5).close()
    elif kind == "unix":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(sys.argv[2])
        s.close()
    elif kind == "http":
        try:
            code = urllib.request.urlopen(sys.argv[2], timeout=5).status
        except urllib.error.HTTPError as e:
            code = e.code
        if code != int(sys.argv[3]):
            print("probe: status %d, want %s" % (code, sys.argv[3])); sys.exit(1)
except OSError as e:
    print("probe %s failed: %s" % (kind, e)); sys.exit(1)
PYEOF

# cmd_argv PROBE-ARGV...: CMD=(an argv that records its start in
# $D/cmd_start, then runs PROBE-ARGV).
cmd_argv() { CMD=(sh -c '"$0" --record "$1" && shift && exec "$@"' "$TS" "$D/cmd_start" "$@"); }

# Foreign servers: a testsvc without the case's marker, not of any service.
# foreign_start ACTIONS...: starts it, waits until its actions ran; sets FPID.
foreign_start() {
  rm -f "$D/foreign_up"
  env -u TESTSVC_MARKER "$TS" "$@" --record "$D/foreign_up" --hold </dev/null >/dev/null 2>&1 &
  FPID=$!
  wait_path "$D/foreign_up" 10 || fail "$CASE: foreign server did not come up"
}
foreign_stop() {
  [ -n "$FPID" ] || return 0
  kill -TERM "$FPID" 2>/dev/null
  wait "$FPID" 2>/dev/null
  FPID=
  return 0
}
FPID=
trap 'foreign_stop; rm -rf "$TEST_TMP"' EXIT

# ------------------------------------------------------------------- tcp
newcase c01_tcp_late
PORT=$(free_port)
yml <<EOF
services:
  srv:
    command: ["$TS", --sleep, "0.5", --record, "$D/svc_ready", --tcp, "$PORT", --hold]
    ready: {tcp: "127.0.0.1:$PORT"}
EOF
cmd_argv "$PY" "$PROBE" tcp 127.0.0.1 "$PORT"
runx -- "${CMD[@]}"
expect_rc 0
rep_all_ok
containment_ok
rep "ready only once listening (>= 500 ms after spawn)" 's("srv")["ready_ms"] - s("srv")["started_ms"] >= 500'
rep "ready soon after listening (< 1500 ms after spawn)" 's("srv")["ready_ms"] - s("srv")["started_ms"] < 1500'
after "CMD started only once the service got to listen()" "$D/cmd_start" "$D/svc_ready"
rep "CMD connected (exit_code 0)" 'r["test"]["exit_code"] == 0'
leftovers

newcase c02_tcp_localhost
PORT=$(free_port)
yml <<EOF
services:
  srv:
    command: ["$TS", --sleep, "0.2", --record, "$D/svc_ready", --tcp, "$PORT", --hold]
    ready: {tcp: "localhost:$PORT"}
EOF
cmd_argv "$PY" "$PROBE" tcp 127.0.0.1 "$PORT"
runx -- "${CMD[@]}"
expect_rc 0
rep_all_ok
after "CMD started only once the service got to listen()" "$D/cmd_start" "$D/svc_ready"
leftovers

newcase c03_tcp_verbose
PORT=$(free_port)
yml <<EOF
services:
  slow:
    command: ["$TS", --sleep, "0.3", --tcp, "$PORT", --hold]
    ready: {tcp: $PORT}
EOF
cmd_argv "$PY" "$PROBE" tcp 127.0.0.1 "$PORT"
runx -v -- "${CMD[@]}"
expect_rc 0
# The refused attempts of 0.3 s (one every few ms) are one line: their
# count and time span, counted from 1 (issue 19).
n=$(grep -Ec 'attempts? [0-9]+(-[0-9]+)? failed' "$D/stderr")
is "$CASE: -v: the identical failed attempts are one line" "$n" 1
if grep -Eq 'attempts 1-[0-9]+ failed: connection refused \([0-9]+ in [0-9]+ ms\)' "$D/stderr"; then
  ok "$CASE: -v: it says how many, counted from 1, and over how long ('$(grep -Em1 'attempts 1-' "$D/stderr" | cut -c1-120)')"
else
  fail "$CASE: -v: it says how many, counted from 1, and over how long" "$(diag)"
fi
leftovers

newcase c04_tcp_quiet_default
PORT=$(free_port)
yml <<EOF
services:
  slow:
    command: ["$TS", --sleep, "0.3", --tcp, "$PORT", --hold]
    ready: {tcp: $PORT}
EOF
runx -- true
expect_rc 0
n=$(grep -Ec 'attempts? [0-9]+(-[0-9]+)? failed' "$D/stderr")
is "without -v no attempt lines" "$n" 0
leftovers

# ------------------------------------------------------------------ unix
newcase c05_unix_late
yml <<EOF
services:
  sock:
    command: ["$TS", --sleep, "0.3", --record, "$D/svc_ready", --unix, "$D/s.sock", --hold]
    ready: {unix: s.sock}
EOF
cmd_argv "$PY" "$PROBE" unix "$D/s.sock"
runx -- "${CMD[@]}"
expect_rc 0
rep_all_ok
rep "ready only once listening (>= 300 ms after spawn)" 's("sock")["ready_ms"] - s("sock")["started_ms"] >= 300'
after "CMD started only once the service got to listen()" "$D/cmd_start" "$D/svc_ready"
leftovers

newcase c06_unix_never
yml <<EOF
services:
  sock:
    command: ["$TS", --hold]
    ready: {unix: "$D/nobody.sock"}
    timeout: 1s
EOF
runx -- "$TS" --record "$D/cmd_start"
rep_fails sock TimeoutExpired
at_timeout
leftovers

# ------------------------------------------------------------------ http
newcase c07_http_status_regex
PORT=$(free_port)
yml <<EOF
services:
  web:
    command: ["$TS", --http-log, "$D/http.log", --sleep, "0.3", --record, "$D/svc_ready", --http, "$PORT", "404", --hold]
    ready: {http: "http://127.0.0.1:$PORT/health", status: "^(200|404)\$"}
EOF
cmd_argv "$PY" "$PROBE" http "http://127.0.0.1:$PORT/cmd" 404
runx -- "${CMD[@]}"
expect_rc 0
rep_all_ok
rep "ready only once serving (>= 300 ms after spawn)" 's("web")["ready_ms"] - s("web")["started_ms"] >= 300'
after "CMD started only once the server got to listen()" "$D/cmd_start" "$D/svc_ready"
is "the check sent GET /health" "$(grep -c '^GET /health HTTP/1\.[01]$' "$D/http.log" 2>/dev/null)" 1
leftovers

newcase c08_http_default_status
PORT=$(free_port)
yml <<EOF
services:
  web:
    command: ["$TS", --http-log, "$D/http.log", --http, "$PORT", "404", --hold]
    ready: {http: "http://127.0.0.1:$PORT/"}
    timeout: 1s
EOF
runx -- "$TS" --record "$D/cmd_start"
rep_fails web TimeoutExpired
at_timeout
n=$(grep -c '^GET / HTTP' "$D/http.log" 2>/dev/null)
if [ "${n:-0}" -ge 3 ]; then ok "$CASE: polled again and again ($n requests)"; else fail "$CASE: polled again and again" "requests: ${n:-0}"; fi
leftovers

newcase c08b_http_status_whole_code
# The status regex must match the whole code: "40|200" matches neither 404
# nor (unlike a naive "^40|200$") its prefix.
PORT=$(free_port)
yml <<EOF
services:
  web:
    command: ["$TS", --http, "$PORT", "404", --hold]
    ready: {http: "http://127.0.0.1:$PORT/", status: "40|200"}
    timeout: 1s
EOF
runx -- "$TS" --record "$D/cmd_start"
rep_fails web TimeoutExpired
at_timeout
leftovers

newcase c09_http_method_body
PORT=$(free_port)
yml <<EOF
services:
  web:
    command: ["$TS", --http-log, "$D/http.log", --http, "$PORT", "204", --hold]
    ready: {http: "http://127.0.0.1:$PORT/hook?x=1", method: POST, body: "ping", headers: {X-Test: yes}, status: 204}
EOF
runx -- true
expect_rc 0
rep_all_ok
is "the check sent POST /hook?x=1" "$(grep -c '^POST /hook?x=1 HTTP/1\.[01]$' "$D/http.log" 2>/dev/null)" 1
leftovers

# --------------------------------------------------------------- pidfile
newcase c10_pidfile_daemon
yml <<EOF
services:
  daemon:
    command: ["$TS", --daemon, --sleep, "0.3", --record, "$D/svc_ready", --pidfile, "$D/svc.pid", --hold]
    ready: {pidfile: svc.pid}
EOF
cmd_argv sh -c 'kill -0 "$(cat "$0")"' "$D/svc.pid"
runx -- "${CMD[@]}"
expect_rc 0
rep_all_ok
after "CMD started only once the daemon got to its pid file" "$D/cmd_start" "$D/svc_ready"
DPID=$(cat "$D/svc.pid" 2>/dev/null)
rep "the report's pid is the daemon's ($DPID)" "s(\"daemon\")[\"pid\"] == ${DPID:-0}"
rep "the daemon was stopped with the service (SIGTERM)" 's("daemon")["signal"] == "SIGTERM" and s("daemon")["killed"] is False and s("daemon")["message"] == "stopped by SIGTERM"'
is "the daemon is gone" "$(if [ -z "$DPID" ]; then echo 'no pid file'; elif kill -0 "$DPID" 2>/dev/null; then echo alive; else echo gone; fi)" gone
leftovers

newcase c10b_pidfile_hopping_daemon
# The daemon forks and exits twenty times over (--daemon x10) before it writes
# its pid file: every hop must stay in the service's tree.
yml <<EOF
services:
  daemon:
    command: ["$TS", --daemon, --daemon, --daemon, --daemon, --daemon, --daemon, --daemon, --daemon, --daemon, --daemon, --sleep, "0.3", --record, "$D/svc_ready", --pidfile, "$D/svc.pid", --hold]
    ready: {pidfile: svc.pid}
EOF
cmd_argv sh -c 'kill -0 "$(cat "$0")"' "$D/svc.pid"
runx -- "${CMD[@]}"
expect_rc 0
rep_all_ok
after "CMD started only once the daemon got to its pid file" "$D/cmd_start" "$D/svc_ready"
DPID=$(cat "$D/svc.pid" 2>/dev/null)
rep "the report's pid is the daemon's ($DPID)" "s(\"daemon\")[\"pid\"] == ${DPID:-0}"
is "the daemon is gone" "$(if [ -z "$DPID" ]; then echo 'no pid file'; elif kill -0 "$DPID" 2>/dev/null; then echo alive; else echo gone; fi)" gone
leftovers

newcase c10c_pidfile_before_parent_exit
# The daemon writes its pid file while its parent still runs (the parent
# exits 0 only 0.4 s later): the check is ready first, the parent's exit comes
# after, and the daemon must be adopted then, not the service reported as
# exited.
yml <<EOF
services:
  daemon:
    command: ["$TS", --fork-child, --pidfile, "$D/svc.pid", --hold, --end, --sleep, "0.4", --exit, "0"]
    ready: {pidfile: svc.pid}
EOF
cmd_argv sh -c 'sleep 0.8; kill -0 "$(cat "$0")"' "$D/svc.pid"
runx -- "${CMD[@]}"
expect_rc 0
rep_all_ok
DPID=$(cat "$D/svc.pid" 2>/dev/null)
rep "the report's pid is the daemon's ($DPID), adopted after its parent exited" "s(\"daemon\")[\"pid\"] == ${DPID:-0}"
rep "the adopted daemon was stopped with the service (SIGTERM)" 's("daemon")["signal"] == "SIGTERM" and s("daemon")["message"] == "stopped by SIGTERM"'
is "the daemon is gone" "$(if [ -z "$DPID" ]; then echo 'no pid file'; elif kill -0 "$DPID" 2>/dev/null; then echo alive; else echo gone; fi)" gone
leftovers

newcase c11_pidfile_stale
# The file first names a live process that is not of the service (this shell).
echo $$ >"$D/svc.pid"
yml <<EOF
services:
  svc:
    command: ["$TS", --sleep, "0.3", --record, "$D/svc_ready", --pidfile, "$D/svc.pid", --hold]
    ready: {pidfile: svc.pid}
EOF
cmd_argv sh -c 'kill -0 "$(cat "$0")"' "$D/svc.pid"
runx -- "${CMD[@]}"
expect_rc 0
rep_all_ok
rep "a stale pid file is not ready (>= 300 ms after spawn)" 's("svc")["ready_ms"] - s("svc")["started_ms"] >= 300'
after "CMD started only once the service got to its own pid file" "$D/cmd_start" "$D/svc_ready"
leftovers

newcase c12_pidfile_never
echo $$ >"$D/svc.pid"
yml <<EOF
services:
  svc:
    command: ["$TS", --hold]
    ready: {pidfile: svc.pid}
    timeout: 1s
EOF
runx -- "$TS" --record "$D/cmd_start"
rep_fails svc TimeoutExpired
at_timeout
leftovers

# ------------------------------------------------------------------ exec
newcase c13_exec_file
yml <<EOF
services:
  maker:
    command: ["$TS", --sleep, "0.3", --record, "$D/flag", --hold]
    ready: {exec: [test, -f, "$D/flag"]}
EOF
cmd_argv test -f "$D/flag"
runx -- "${CMD[@]}"
expect_rc 0
rep_all_ok
rep "ready only once the file exists (>= 300 ms after spawn)" 's("maker")["ready_ms"] - s("maker")["started_ms"] >= 300'
after "CMD started after the file was made" "$D/cmd_start" "$D/flag"
leftovers

newcase c14_exec_never
yml <<EOF
services:
  svc:
    command: ["$TS", --hold]
    ready: {exec: "false"}
    timeout: 1s
EOF
runx -- "$TS" --record "$D/cmd_start"
rep_fails svc TimeoutExpired
at_timeout
leftovers

newcase c14b_exec_hanging_probe
# A probe that hangs is ended after interval x 10 (here 500 ms) and tried
# again; none of them outlives the run.
yml <<EOF
services:
  svc:
    command: ["$TS", --hold]
    ready: {exec: ["$TS", --append, "$D/probes", "probe", --hold], interval: 50ms}
    timeout: 1700ms
EOF
runx -- "$TS" --record "$D/cmd_start"
expect_rc 125
rep "svc is TimeoutExpired" 's("svc")["error"] == "TimeoutExpired"'
n=$(cat "$D/probes" 2>/dev/null | wc -l)
if [ "$n" -ge 3 ]; then ok "$CASE: each hung probe was ended and retried ($n attempts in 1.7 s)"; else fail "$CASE: each hung probe was ended and retried" "attempts: $n"; fi
under "gave up at the 1.7 s timeout" "$MS" 3700
leftovers

newcase c15_exec_probe_env_cwd
# The probe runs with the service's environment and in its working directory.
mkdir -p "$D/work"
yml <<EOF
services:
  svc:
    command: ["$TS", --hold]
    cwd: ./work
    env: {PROBE_TOKEN: "t-42"}
    ready: {exec: ["sh", "-c", "test \"\$\$PROBE_TOKEN\" = t-42 && test \"\$\$(pwd -P)\" = '$D/work'"]}
    timeout: 2s
EOF
runx -- true
expect_rc 0
rep_all_ok
leftovers

# ---------------------------------------------------------------- notify
newcase c16_notify
yml <<EOF
services:
  nt:
    command: ["$TS", --write-env, NOTIFY_SOCKET, "$D/ns", --notify, "STATUS=warming up", --sleep, "0.3", --record, "$D/svc_ready", --notify, "READY=1", --hold]
    ready: {notify: true}
EOF
runx -- "$TS" --record "$D/cmd_start"
expect_rc 0
rep_all_ok
rep "ready only after READY=1 (>= 300 ms after spawn, STATUS= alone is not ready)" 's("nt")["ready_ms"] - s("nt")["started_ms"] >= 300'
after "CMD started only once the service got to READY=1" "$D/cmd_start" "$D/svc_ready"
ns=$(cat "$D/ns" 2>/dev/null)
if [ -n "$ns" ] && [ "$ns" != "<unset>" ]; then ok "$CASE: NOTIFY_SOCKET set ($ns)"; else fail "$CASE: NOTIFY_SOCKET set" "got '$ns'"; fi
leftovers

newcase c16b_notify_multiline
# One datagram may carry several assignments, one per line.
yml <<EOF
services:
  nt:
    command: ["$TS", --sleep, "0.2", --record, "$D/svc_ready", --notify, "STATUS=almost\\nREADY=1", --hold]
    ready: {notify: true}
    timeout: 5s
EOF
runx -- "$TS" --record "$D/cmd_start"
expect_rc 0
rep_all_ok
after "CMD started only once the service got to READY=1" "$D/cmd_start" "$D/svc_ready"
leftovers

newcase c17_notify_descendant
# READY=1 from a descendant in a session of its own is still the service's.
yml <<EOF
services:
  nt:
    command: ["$TS", --fork-child, --setsid, --sleep, "0.2", --record, "$D/svc_ready", --notify, "READY=1", --hold, --end, --hold]
    ready: {notify: true}
EOF
runx -- "$TS" --record "$D/cmd_start"
expect_rc 0
rep_all_ok
after "CMD started only once the descendant got to READY=1" "$D/cmd_start" "$D/svc_ready"
leftovers

newcase c18_notify_foreign
# b (not of a) sends READY=1 to a's socket: a must not become ready.
yml <<EOF
services:
  a:
    command: ["$TS", --record, "$D/a_start", --write-env, NOTIFY_SOCKET, "$D/ns", --hold]
    ready: {notify: true}
    timeout: 1s
  b:
    command: ["$TS", --wait-file, "$D/ns", --notify-at, "$D/ns", "READY=1", --record, "$D/b_sent", --hold]
    depends_on: {a: {condition: started}}
EOF
runx -- "$TS" --record "$D/cmd_start"
rep_fails a TimeoutExpired
after "b sent READY=1 (after a started)" "$D/b_sent" "$D/a_start"
if gap=$("$PY" -c 'import sys; print((int(open(sys.argv[1]).read()) - int(open(sys.argv[2]).read())) // 1000000)' "$D/b_sent" "$D/a_start" 2>&1); then
  under "b sent it well before a's timeout" "$gap" 900
else
  fail "$CASE: b sent it well before a's timeout" "$gap"
fi
leftovers

newcase c19_notify_never
yml <<EOF
services:
  nt:
    command: ["$TS", --notify, "STATUS=still starting", --hold]
    ready: {notify: true}
    timeout: 1s
EOF
runx -- "$TS" --record "$D/cmd_start"
rep_fails nt TimeoutExpired
at_timeout
leftovers

# ---------------------------------------------------------- AlreadyRunning
newcase c20_already_tcp
PORT=$(free_port)
foreign_start --tcp "$PORT"
yml <<EOF
services:
  dup:
    command: ["$TS", --record, "$D/spawned", --hold]
    ready: {tcp: $PORT}
EOF
runx -- "$TS" --record "$D/cmd_start"
foreign_stop
rep_fails dup AlreadyRunning
is "the service was never spawned" "$([ -e "$D/spawned" ] && echo spawned || echo no)" no
rep "no pid, no start time" 's("dup")["pid"] in (None, 0) and s("dup")["started_ms"] is None'
rep "the message names the address" '"'"$PORT"'" in (s("dup")["message"] or "")'
leftovers

newcase c21_already_unix
foreign_start --unix "$D/s.sock"
yml <<EOF
services:
  dup:
    command: ["$TS", --record, "$D/spawned", --hold]
    ready: {unix: s.sock}
EOF
runx -- "$TS" --record "$D/cmd_start"
foreign_stop
rep_fails dup AlreadyRunning
is "the service was never spawned" "$([ -e "$D/spawned" ] && echo spawned || echo no)" no
leftovers

newcase c22_already_http
PORT=$(free_port)
foreign_start --http "$PORT" 200
yml <<EOF
services:
  dup:
    command: ["$TS", --record, "$D/spawned", --hold]
    ready: {http: "http://127.0.0.1:$PORT/"}
EOF
runx -- "$TS" --record "$D/cmd_start"
foreign_stop
rep_fails dup AlreadyRunning
is "the service was never spawned" "$([ -e "$D/spawned" ] && echo spawned || echo no)" no
leftovers

newcase c23_http_foreign_wrong_status
# A foreign server on the address that does not pass the check is not
# AlreadyRunning: the service is spawned (and here times out).
PORT=$(free_port)
foreign_start --http "$PORT" 404
yml <<EOF
services:
  svc:
    command: ["$TS", --record, "$D/spawned", --hold]
    ready: {http: "http://127.0.0.1:$PORT/"}
    timeout: 1s
EOF
runx -- "$TS" --record "$D/cmd_start"
foreign_stop
rep_fails svc TimeoutExpired
is "the service was spawned" "$([ -e "$D/spawned" ] && echo spawned || echo no)" spawned
leftovers

# ----------------------------------------------------------- lists of checks
newcase c24_list_tcp_http
PORT=$(free_port)
yml <<EOF
services:
  web:
    command: ["$TS", --http-log, "$D/http.log", --sleep, "0.3", --record, "$D/svc_ready", --http, "$PORT", "200", --hold]
    ready:
      - tcp: $PORT
      - http: "http://127.0.0.1:$PORT/ready"
EOF
cmd_argv "$PY" "$PROBE" http "http://127.0.0.1:$PORT/cmd" 200
runx -- "${CMD[@]}"
expect_rc 0
rep_all_ok
after "CMD started only once the server got to listen()" "$D/cmd_start" "$D/svc_ready"
is "the http check ran once, after tcp passed" "$(grep -c '^GET /ready HTTP' "$D/http.log" 2>/dev/null)" 1
leftovers

newcase c25_list_order
# [tcp, exec]: the exec probe makes its first attempt only after tcp passed.
PORT=$(free_port)
yml <<EOF
services:
  svc:
    command: ["$TS", --sleep, "0.3", --record, "$D/tcp_up", --tcp, "$PORT", --hold]
    ready:
      - tcp: $PORT
      - exec: ["$TS", --append, "$D/probes", "probe"]
EOF
runx -- "$TS" --record "$D/cmd_start"
expect_rc 0
rep_all_ok
if out=$("$PY" - "$D/probes" "$D/tcp_up" <<'PYEOF' 2>&1
import sys
probes = [int(l.split()[-1]) for l in open(sys.argv[1])]
up = int(open(sys.argv[2]).read())
early = [p for p in probes if p <= up]
if not probes or early:
    print("probes %d, before tcp was up: %d" % (len(probes), len(early))); sys.exit(1)
print("%d probe(s), first %.1f ms after the listener" % (len(probes), (min(probes) - up) / 1e6))
PYEOF
); then ok "$CASE: exec probed only after tcp passed ($out)"; else fail "$CASE: exec probed only after tcp passed" "$out"; fi
leftovers

newcase c26_list_second_fails
PORT=$(free_port)
yml <<EOF
services:
  web:
    command: ["$TS", --http, "$PORT", "500", --hold]
    ready:
      - tcp: $PORT
      - http: "http://127.0.0.1:$PORT/"
    timeout: 1s
EOF
runx -- "$TS" --record "$D/cmd_start"
rep_fails web TimeoutExpired
at_timeout
leftovers

# ------------------------------------------------------ a check never passes
newcase c27_tcp_never
PORT=$(free_port)
yml <<EOF
services:
  svc:
    command: ["$TS", --hold]
    ready: {tcp: $PORT}
    timeout: 1s
EOF
runx -- "$TS" --record "$D/cmd_start"
rep_fails svc TimeoutExpired
rep "failed at its timeout, not before (>= 1000 ms after spawn)" 's("svc")["stopped_ms"] - s("svc")["started_ms"] >= 1000'
at_timeout
leftovers

newcase c28_tcp_at_once
# A polled check makes its first attempt at once.
PORT=$(free_port)
yml <<EOF
services:
  srv:
    command: ["$TS", --tcp, "$PORT", --hold]
    ready: {tcp: $PORT}
EOF
runx -- true
expect_rc 0
rep_all_ok
rep "ready within 1 s of spawn" 's("srv")["ready_ms"] - s("srv")["started_ms"] < 1000'
leftovers

finish
