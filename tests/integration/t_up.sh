#!/usr/bin/env bash
# Detached environments, end to end (SPEC §1, §2, §7, §8): `up -d` of a
# three-service chain (db <- api <- worker), then status (text and --json),
# logs (-n, --timestamps, -f), restart/stop/start of single services,
# `exec` against the running instance, a second `up -d` (AlreadyRunning),
# down (a follower ends with it; then down again), status when nothing is
# up; a foreground `up` ended by SIGINT and by SIGTERM; two projects of one
# file side by side (and down --keep); an `up -d` whose bring-up fails.  Every run uses the test's own --state-dir, so the instance dir of
# project P is $UP_STATE/P; every process started carries TESTSVC_MARKER and
# none may survive.
. "$(dirname "$0")/lib.sh"
: "${ENVRUN_BUILD:=$(dirname "$ENVRUN")}"
up_setup "envrun-t-up-$$"
TS=$UP_TS
[ -x "$TS" ] || { fail "setup" "testsvc not found at $TS"; finish; exit 1; }
D=$TEST_TMP/chain
mkdir -p "$D"
F=$D/environment.yml
cat >"$F" <<YML
ports: [DB_PORT, API_PORT]
services:
  db:
    command: ["$TS", --stdout, "db line 1", --stdout, "db line 2", --stdout, "db line 3",
              --tcp, "\${DB_PORT}", --stdout, "db line 4", --hold]
    ready: {tcp: "\${DB_PORT}"}
  api:
    command: ["$TS", --tcp, "\${API_PORT}", --stdout, "api listening", --hold]
    ready: {output: "^api listening\$"}
    depends_on: [db]
  worker:
    command: ["$TS", --stdout, "worker 1", --stdout, "worker 2", --record, "$D/worker_started",
              --wait-file, "$D/go", --stdout, "worker got go", --hold]
    depends_on: [api]
YML
SVCS="db api worker"

# pid_of NAME: the service's pid in the last status --json ($OUT).
pid_of() { up_jq "$OUT" "s('$1')['pid']"; }

# ------------------------------------------------------------- 1. up -d
up_use "$F" tup
up_run up1 up -d
echo "# up -d took $MS ms"
[ "$RC" -eq 0 ] || up_bail "up -d: exit 0"
ok "up -d: exit 0"
tail -n 1 "$ERR" >"$TEST_TMP/up1.last"
up_has "up -d: stderr ends with \"'tup' is up (supervisor pid N)\"" "$TEST_TMP/up1.last" \
  "^envrun: 'tup' is up \(supervisor pid [0-9]+\)$"
SUP=$(tail -n 1 "$ERR" | sed -n 's/.*supervisor pid \([0-9]*\).*/\1/p')
INST=$UP_STATE/tup
[ -d "$INST" ] && ok "instance dir $INST exists" || fail "instance dir $INST exists"
[ -S "$INST/control.sock" ] && ok "control.sock is a socket" || fail "control.sock is a socket"
mode=$(stat -c %a "$INST/control.sock" 2>/dev/null)
up_is "control.sock mode 600" "$mode" 600

# ------------------------------------------------------------- 2. status
up_status st1
up_is "status --json: exit 0 when all ready" "$RC" 0
cp "$OUT" "$TEST_TMP/status1.json"
S1=$TEST_TMP/status1.json
up_check "status --json: project tup, state up" "$S1" 'j["project"] == "tup" and j["state"] == "up"'
up_check "status --json: supervisor_pid is the one up -d named" "$S1" "j['supervisor_pid'] == ${SUP:-0}"
up_alive "$SUP" && ok "supervisor $SUP alive" || fail "supervisor ${SUP:-?} alive"
up_check "status --json: three services, each ready with a pid, restarts 0" "$S1" \
  'sorted(x["name"] for x in j["services"]) == ["api", "db", "worker"] and all(x["state"] == "ready" and isinstance(x["pid"], int) and x["pid"] > 0 and x["restarts"] == 0 and x["error"] is None and isinstance(x["ready_ms"], int) for x in j["services"])'
up_check "status --json: ports DB_PORT and API_PORT" "$S1" \
  'sorted(j["ports"]) == ["API_PORT", "DB_PORT"] and all(isinstance(p, int) and 0 < p < 65536 for p in j["ports"].values())'
up_check "status --json: instance_dir and state_dir" "$S1" \
  "__import__('os').path.realpath(j['instance_dir']) == __import__('os').path.realpath('$INST') and __import__('os').path.realpath(j['state_dir']) == __import__('os').path.realpath('$INST/tmp')"
up_check "status --json: containment named" "$S1" 'j["containment"] in ("cgroup2", "cgroup1", "reaper")'
declare -A PID
for s in $SVCS; do
  PID[$s]=$(up_jq "$S1" "s('$s')['pid']")
  up_alive "${PID[$s]}" && ok "$s pid ${PID[$s]} alive" || fail "$s pid ${PID[$s]} alive"
done
DB_PORT=$(up_jq "$S1" 'j["ports"]["DB_PORT"]')
up_run st_text status
up_is "status (text): exit 0" "$RC" 0
head -n 1 "$OUT" >"$TEST_TMP/st_text.first"
up_has "status (text): first line '<project>  up  supervisor N'" "$TEST_TMP/st_text.first" "^tup +up +supervisor $SUP$"
for s in $SVCS; do
  up_has "status (text): $s line" "$OUT" "^$s +ready +pid ${PID[$s]} +ready [0-9]+ms +restarts 0$"
done

# ------------------------------------------------------------- 3. logs
up_run st_v status -v
up_is "status -v: exit 0" "$RC" 0
up_has "status -v: names the containment" "$OUT" "$(up_jq "$S1" 'j["containment"]')"

up_run logs_n logs -n 2 db
up_is "logs -n 2 db: exit 0" "$RC" 0
up_is "logs -n 2 db: its last two lines, bare" "$(cat "$OUT")" "$(printf 'db line 3\ndb line 4')"
up_run logs_ts logs -n 1 --timestamps db
up_has "logs --timestamps: RFC 3339 UTC ms timestamp, a space, the text" "$OUT" \
  '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z db line 4$'
up_run logs_all logs -n 1
up_is "logs -n 1 (all services): exit 0" "$RC" 0
up_has "logs (all): db's line prefixed" "$OUT" '^db +\| db line 4$'
up_has "logs (all): api's line prefixed" "$OUT" '^api +\| api listening$'
up_has "logs (all): worker's line prefixed" "$OUT" '^worker +\| worker 2$'
up_is "logs (all): one line per service" "$(wc -l <"$OUT")" 3
up_run logs_unknown logs nosuch
up_is "logs of an unknown service: exit 2" "$RC" 2

# logs -f: the follower shows worker's last line, then the line worker
# prints once $D/go exists; then it is killed.
FOL=$TEST_TMP/follow
up_ev logs -f -n 1 worker >"$FOL.out" 2>"$FOL.err" &
FPID=$!
if up_poll 10 grep -qx 'worker 2' "$FOL.out"; then ok "logs -f: the last line first"
else fail "logs -f: the last line first" "$(cat "$FOL.out" "$FOL.err")"; fi
touch "$D/go"
if up_poll 10 grep -qx 'worker got go' "$FOL.out"; then ok "logs -f: a new line streams in"
else fail "logs -f: a new line streams in" "$(cat "$FOL.out" "$FOL.err")"; fi
up_alive "$FPID" && ok "logs -f: still following" || fail "logs -f: still following" "$(cat "$FOL.err")"
kill -TERM "$FPID" 2>/dev/null
up_wait_gone "$FPID" 10 || { fail "logs -f: ends on SIGTERM"; kill -KILL "$FPID" 2>/dev/null; }
wait "$FPID" 2>/dev/null

# ------------------------------------------------------------- 4. restart db
up_run restart restart db
up_is "restart db: exit 0" "$RC" 0
up_has "restart db: stdout 'db: <state>'" "$OUT" '^db: (ready|starting)$'
db_restarted() { up_status_is 0 && [ "$(pid_of db)" != "${PID[db]}" ]; }
if up_poll 10 db_restarted; then ok "restart db: status 0 again, db has a new pid"
else fail "restart db: status 0 again, db has a new pid" "$(up_diag)"; fi
cp "$OUT" "$TEST_TMP/status2.json"
S2=$TEST_TMP/status2.json
up_wait_gone "${PID[db]}" 5 && ok "restart db: the old db process is gone" || fail "restart db: the old db process is gone"
up_is "restart db: api kept its pid" "$(up_jq "$S2" "s('api')['pid']")" "${PID[api]}"
up_is "restart db: worker kept its pid" "$(up_jq "$S2" "s('worker')['pid']")" "${PID[worker]}"
up_check "restart db: db ready" "$S2" 's("db")["state"] == "ready"'
PID[db]=$(up_jq "$S2" "s('db')['pid']")

# ------------------------------------------------------------- 5. stop / start
up_run stop_w stop worker
up_is "stop worker: exit 0" "$RC" 0
up_is "stop worker: stdout 'worker: stopped'" "$(cat "$OUT")" "worker: stopped"
up_wait_gone "${PID[worker]}" 10 && ok "stop worker: its process is gone" || fail "stop worker: its process is gone"
up_status st_stopped
up_is "status with worker stopped: exit 1 (not all ready)" "$RC" 1
up_check "status: worker stopped, db and api ready" "$OUT" \
  's("worker")["state"] == "stopped" and s("db")["state"] == "ready" and s("api")["state"] == "ready"'
up_check "status: a stopped service's pid is null" "$OUT" 's("worker")["pid"] is None'
up_check "status: a service stopped by hand makes the environment partial" "$OUT" 'j["state"] == "partial"'
up_run stop_a stop api
up_is "stop api: exit 0" "$RC" 0
up_run start_w_dep start worker
up_is "start worker while api (its dependency) is stopped: exit 1" "$RC" 1
up_has "start worker: the message names api" "$ERR" 'api'
up_run restart_w_dep restart worker
up_is "restart worker while api is stopped: exit 1 (it would stay down)" "$RC" 1
up_has "restart worker: the message names api" "$ERR" "dependency 'api'"
up_run start_a start api
up_is "start api: exit 0" "$RC" 0
up_has "start api: answers once api is ready" "$OUT" '^api: ready$'
up_run start_w start worker
up_is "start worker: exit 0" "$RC" 0
up_has "start worker: answers once worker is ready" "$OUT" '^worker: ready$'
if up_poll 10 up_status_is 0; then ok "after start: status exit 0 again"; else fail "after start: status exit 0 again" "$(up_diag)"; fi
cp "$OUT" "$TEST_TMP/status3.json"
S3=$TEST_TMP/status3.json
up_check "after start: every service ready" "$S3" 'all(x["state"] == "ready" for x in j["services"])'
PID[api]=$(up_jq "$S3" "s('api')['pid']")
PID[worker]=$(up_jq "$S3" "s('worker')['pid']")
up_is "db kept its pid through api's stop and start" "$(up_jq "$S3" "s('db')['pid']")" "${PID[db]}"
up_run stop_unknown stop nosuch
up_is "stop of an unknown service: exit 2" "$RC" 2

# ------------------------------------------------------------- 6. exec against the instance
up_run exec exec -- sh -c 'echo "$DB_PORT $ENVRUN_STATE_DIR"'
up_is "exec against the instance: exit 0" "$RC" 0
read -r got_port got_sd <"$OUT"
up_is "exec: DB_PORT is the instance's port" "${got_port:-}" "$DB_PORT"
up_is "exec: ENVRUN_STATE_DIR is the instance's tmp/" "$(realpath -m "${got_sd:-x}")" "$(realpath -m "$INST/tmp")"
up_has "exec: stderr says it runs against 'tup'" "$ERR" "running against 'tup'.*supervisor pid $SUP"
up_run exec_rc exec -- sh -c 'exit 7'
up_is "exec against the instance: CMD's exit status" "$RC" 7
up_status st_after_exec
up_is "after exec: status exit 0" "$RC" 0
for s in $SVCS; do up_is "after exec: $s kept its pid" "$(pid_of "$s")" "${PID[$s]}"; done
up_is "after exec: same supervisor" "$(up_jq "$OUT" 'j["supervisor_pid"]')" "$SUP"

# ------------------------------------------------------------- 7. a second up -d
up_run up2 up -d
up_is "second up -d of tup: exit 1" "$RC" 1
up_has "second up -d: AlreadyRunning, the supervisor pid" "$ERR" "AlreadyRunning.*supervisor pid $SUP|supervisor pid $SUP.*AlreadyRunning"
up_has "second up -d: names the instance dir" "$ERR" "$UP_STATE/tup"
up_status st_after_up2
up_is "after the second up -d: status exit 0" "$RC" 0
for s in $SVCS; do up_is "after the second up -d: $s kept its pid" "$(pid_of "$s")" "${PID[$s]}"; done

# ------------------------------------------------------------- 8. down
# A follower started before down ends by itself once the environment is down.
up_ev logs -f -n 1 db >"$FOL.2.out" 2>"$FOL.2.err" &
FPID=$!
up_poll 10 grep -qx 'db line 4' "$FOL.2.out" || fail "logs -f db: following before down" "$(cat "$FOL.2.out" "$FOL.2.err")"
up_run down down
up_is "down: exit 0" "$RC" 0
for s in $SVCS; do up_has "down: report line for $s, ok" "$ERR" "^$s +ok( |$)"; done
for s in $SVCS; do up_alive "${PID[$s]}" && fail "down: $s (pid ${PID[$s]}) gone" || ok "down: $s (pid ${PID[$s]}) gone"; done
up_wait_gone "$SUP" 5 && ok "down: supervisor gone" || fail "down: supervisor $SUP gone"
[ ! -e "$INST" ] && ok "down: instance dir removed" || fail "down: instance dir removed" "$(ls -la "$INST")"
if up_wait_gone "$FPID" 10; then
  wait "$FPID"
  up_is "logs -f: ends by itself (exit 0) when the environment goes down" "$?" 0
else
  fail "logs -f: ends by itself when the environment goes down (within 10 s)"
  kill -KILL "$FPID" 2>/dev/null
  wait "$FPID" 2>/dev/null
fi
up_settled "after down"
up_run down2 down
up_is "down when nothing is up: exit 0" "$RC" 0
up_has "down when nothing is up: says so" "$ERR" "^envrun: nothing is up for 'tup'$"
up_status st_down
up_is "status when nothing is up: exit 3" "$RC" 3
up_check "status --json when nothing is up: state down" "$OUT" 'j == {"project": "tup", "state": "down"}'
up_run stop_down stop db
up_is "stop when nothing is up: exit 1" "$RC" 1
up_has "stop when nothing is up: says so" "$ERR" "nothing is up for 'tup'"

# ------------------------------------------------------------- 9. foreground up, SIGINT / SIGTERM
# fg_case SIG STATUS: `up` in the foreground (SIG at its default
# disposition: a background job of a script would have SIGINT ignored),
# SIG once the last service started, then: exit STATUS, the report, the
# services' output prefixed on stdout, nothing left.
fg_case() {
  local sig=$1 want=$2 FG=$TEST_TMP/fg_$1 FGPID
  up_use "$F" "tfg-$sig"
  rm -f "$D/worker_started"
  TESTSVC_MARKER=$UP_M env --default-signal="$sig" "$ENVRUN" --state-dir "$UP_STATE" -f "$F" -p "tfg-$sig" up \
    </dev/null >"$FG.out" 2>"$FG.err" &
  FGPID=$!
  if ! wait_path "$D/worker_started" 20; then
    fail "foreground up: the last service started within 20 s" "$(tail -n 8 "$FG.err")"
    kill -KILL "$FGPID" 2>/dev/null
    wait "$FGPID" 2>/dev/null
    up_settled "foreground up ($sig)"
    return 0
  fi
  up_poll 5 up_status_is 0 || true   # up (or $sig comes mid-bring-up: the same outcome)
  kill -"$sig" "$FGPID"
  if ! up_wait_gone "$FGPID" 20; then
    fail "foreground up: exits within 20 s of SIG$sig" "$(tail -n 5 "$FG.err")"
    kill -KILL "$FGPID" 2>/dev/null
    wait "$FGPID" 2>/dev/null
    up_settled "foreground up ($sig)"
    return 0
  fi
  wait "$FGPID"
  RC=$?
  OUT=$FG.out ERR=$FG.err
  up_is "foreground up: SIG$sig -> exit $want" "$RC" "$want"
  for s in $SVCS; do up_has "foreground up ($sig): report line for $s" "$ERR" "^$s +ok( |$)"; done
  up_has "foreground up ($sig): the summary says it was stopped, not failed" "$ERR" \
    "^envrun: stopped by SIG$sig \(3 services\) \(exit status $want\)$"
  up_has "foreground up ($sig): db's output on stdout, prefixed" "$OUT" '^db +\| db line 1$'
  up_has "foreground up ($sig): worker's output on stdout, prefixed" "$OUT" '^worker +\| worker got go$'
  [ ! -e "$UP_STATE/tfg-$sig" ] && ok "foreground up ($sig): instance dir removed" ||
    fail "foreground up ($sig): instance dir removed" "$(ls -la "$UP_STATE/tfg-$sig" 2>&1)"
  up_settled "after foreground up ($sig)"
}
fg_case INT 130
fg_case TERM 143

# ------------------------------------------------------------- 10. two projects of one file
up_use "$F" ta
up_run up_a up -d
up_is "up -d -p ta: exit 0" "$RC" 0
up_use "$F" tb
up_run up_b up -d
up_is "up -d -p tb (same file, ta still up): exit 0" "$RC" 0
up_use "$F" ta
up_status st_a
up_is "status -p ta: exit 0" "$RC" 0
cp "$OUT" "$TEST_TMP/a.json"
up_use "$F" tb
up_status st_b
up_is "status -p tb: exit 0" "$RC" 0
up_check "ta and tb: distinct supervisors, ports and service pids" "$OUT" \
  "(lambda a: a['supervisor_pid'] != j['supervisor_pid'] and not set(a['ports'].values()) & set(j['ports'].values()) and not {x['pid'] for x in a['services']} & {x['pid'] for x in j['services']})(__import__('json').load(open('$TEST_TMP/a.json')))"
up_run keep_b exec -- sh -c 'echo kept >"$ENVRUN_STATE_DIR/kept"'
up_is "exec against tb: writes into its ENVRUN_STATE_DIR" "$RC" 0
up_run down_b down --keep
up_is "down --keep -p tb: exit 0" "$RC" 0
up_is "down --keep: tmp/ stays, with what was written there" "$(cat "$UP_STATE/tb/tmp/kept" 2>&1)" kept
[ ! -e "$UP_STATE/tb/control.sock" ] && [ ! -e "$UP_STATE/tb/logs" ] && ok "down --keep: the rest is removed" ||
  fail "down --keep: the rest is removed" "$(ls -la "$UP_STATE/tb")"
up_status st_b_kept
up_is "status after down --keep: exit 3" "$RC" 3
rm -rf "$UP_STATE/tb"
up_use "$F" ta
up_status st_a2
up_is "ta still up after tb went down: status exit 0" "$RC" 0
up_run down_a down
up_is "down -p ta: exit 0" "$RC" 0
[ ! -e "$UP_STATE/ta" ] && [ ! -e "$UP_STATE/tb" ] && ok "both instance dirs removed" || fail "both instance dirs removed" "$(ls -la "$UP_STATE")"
up_settled "after two projects"

# ------------------------------------------------------------- 11. a bring-up that fails
BD=$TEST_TMP/bad
mkdir -p "$BD"
cat >"$BD/environment.yml" <<YML
services:
  good:
    command: ["$TS", --stdout, "good up", --hold]
    ready: {output: "good up"}
  bad:
    command: ["$TS", --stdout, "bad starting", --exit, "3"]
    ready: {output: "never printed"}
    depends_on: [good]
  never:
    command: ["$TS", --hold]
    depends_on: [bad]
YML
up_use "$BD/environment.yml" tbad
up_run up_bad up -d
up_is "up -d with a service exiting before ready: exit 1" "$RC" 1
up_has "failed up -d: the report names bad's error" "$ERR" '^bad +ProcessExitedWithError'
up_settled "failed up -d"
[ ! -e "$UP_STATE/tbad" ] && ok "failed up -d: instance dir removed" || fail "failed up -d: instance dir removed" "$(ls -la "$UP_STATE/tbad")"
up_status st_bad
up_is "failed up -d: status exit 3 (nothing up)" "$RC" 3

# ------------------------------------------ up SERVICE...: a part of the file
# up -d api brings up api and what it depends on (db), not worker.
up_use "$F" tpart
rm -f "$D/worker_started"
up_run up_part up -d api
up_is "up -d api: exit 0" "$RC" 0
up_status st_part
up_is "up -d api: status exit 0 (every selected service ready)" "$RC" 0
up_check "up -d api: db and api ready, worker not selected and never started" "$OUT" \
  's("db")["state"] == "ready" and s("api")["state"] == "ready" and s("worker")["selected"] is False and s("worker")["state"] == "pending" and s("worker")["pid"] is None'
[ ! -e "$D/worker_started" ] && ok "up -d api: worker did not run" || fail "up -d api: worker did not run"
up_run down_part down
up_is "down of tpart: exit 0" "$RC" 0
if grep -q '^worker ' "$ERR"; then fail "down of tpart: the report leaves worker out" "$(cat "$ERR")"; else ok "down of tpart: the report leaves worker out"; fi
up_has "down of tpart: the report has api" "$ERR" '^api +ok'
up_run up_nosuch up -d nosuch
up_is "up -d of an unknown service: exit 2" "$RC" 2
up_has "up -d nosuch: names it" "$ERR" "no service 'nosuch'"

# ------------------------------------------ the supervisor keeps no caller fds
# A caller's pipe (a shell's $(...), a CI runner's log) must not stay open
# in the supervisor: $(envrun up -d) would otherwise never return.
up_use "$BD/environment.yml" tfd
cat >"$BD/environment.yml" <<YML
services:
  good:
    command: ["$TS", --stdout, "good up", --hold]
    ready: {output: "good up"}
YML
# fd 7 is the pipe to cat: if the supervisor kept it, cat would never see
# the end of its input (and timeout would end it: 124).
{ timeout 20 "$ENVRUN" --state-dir "$UP_STATE" -f "$BD/environment.yml" -p tfd up -d 7>&1 2>&1 </dev/null; echo "rc=$?"; } | timeout 20 cat >"$TEST_TMP/fd.out"
rc=${PIPESTATUS[1]}
up_is "up -d inside a pipe returns (the supervisor holds no caller fd)" "$rc" 0
up_has "up -d inside a pipe: exit 0" "$TEST_TMP/fd.out" '^rc=0$'
up_run down_fd down
up_is "down of tfd: exit 0" "$RC" 0

finish
