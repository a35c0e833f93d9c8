#!/usr/bin/env bash
# The fast hostile set (issue 20): careless callers and hostile conditions
# that broke envrun's promise, each fixed at the root.  Run as root and, as
# hostile.t_fast_user, as the unprivileged user envrun-test; under ASan and
# UBSan in tests/run.
#   1. descriptors 0-2 closed by the caller: CMD and the services get
#      /dev/null there, never one of envrun's own files; up -d works;
#   2. a state base that does not exist: down says nothing is up (0),
#      status 3;
#   3. a control socket flooded with clients: status says the supervisor
#      answered 503 (exit 1), never a status that is not one;
#   4. a costly regex ((a+)+$ against a line of a's): the check fails at
#      once, naming the pattern; the loop never stalls;
#   5. a full disk (root only: a 1 MB tmpfs): a service's lost output is
#      counted in log_dropped_bytes and said once; supervision goes on;
#   6. a control socket path past sun_path's 108 bytes: bound and reached
#      through its directory (/proc/self/fd/N/control.sock);
#   7. planted files: a FIFO at an instance's lock or at a dead instance's
#      records, a symlink at the ports directory: refused, never waited on,
#      nothing written through them;
#   8. a supervisor that dies during the bring-up: up -d prints its reason;
#   9. a race of four up -d: every loser names the winner's real pid;
#  10. a stalled reader of a foreground up's output: the loop goes on (a
#      slow service is ready on time, status and down answer), what could
#      not be written is dropped, counted and said.
. "$(dirname "$0")/../integration/lib.sh"
: "${ENVRUN_BUILD:=$(dirname "$ENVRUN")}"
up_setup "envrun-t-hostile-$$"
TS=$UP_TS
D=$TEST_TMP/h
mkdir -p "$D"
F=$D/environment.yml
cat >"$F" <<YML
services:
  s:
    command: ["$TS", --stdout, ready, --hold]
    ready: {output: ready}
YML

# ------------------------------------------------ 1. closed stdio
(cd "$D" && TESTSVC_MARKER=$UP_M timeout -s KILL 30 "$ENVRUN" --state-dir "$UP_STATE" -q exec -- \
  sh -c 'readlink /proc/self/fd/0 >"$0/fd0"; readlink /proc/self/fd/2 >"$0/fd2"' "$D" <&- 2>&-)
rc=$?
up_is "closed stdin and stderr: exec exits 0" "$rc" 0
up_is "closed stdin: CMD's stdin is /dev/null" "$(cat "$D/fd0" 2>/dev/null)" /dev/null
up_is "closed stderr: CMD's stderr is /dev/null" "$(cat "$D/fd2" 2>/dev/null)" /dev/null
up_use "$F" hstdio
TESTSVC_MARKER=$UP_M timeout -s KILL 30 "$ENVRUN" --state-dir "$UP_STATE" -f "$F" -p hstdio up -d <&- >&- 2>&-
up_is "stdin, stdout and stderr closed: up -d exits 0" "$?" 0
up_status st1
up_is "... and the instance is up" "$(up_jq "$OUT" "j['state']")" up
up_run d1 down
up_is "... and down exits 0" "$RC" 0

# ------------------------------------------------ 2. a missing state base
out=$("$ENVRUN" --state-dir "$TEST_TMP/no/such/base" -p ghost down 2>&1 </dev/null)
up_is "down with a missing state base: exit 0" "$?" 0
case $out in *"nothing is up for 'ghost'"*) ok "... it says nothing is up" ;;
  *) fail "... it says nothing is up" "got: $out" ;; esac
"$ENVRUN" --state-dir "$TEST_TMP/no/such/base" -p ghost status >/dev/null 2>&1 </dev/null
up_is "status with a missing state base: exit 3" "$?" 3

# An inherited XDG_RUNTIME_DIR envrun cannot use (its envrun is a file
# here): exec says why and what to do, and exits 125.
mkdir -p "$TEST_TMP/badxdg" && : >"$TEST_TMP/badxdg/envrun"
out=$(cd "$D" && XDG_RUNTIME_DIR=$TEST_TMP/badxdg "$ENVRUN" exec -- true 2>&1 </dev/null)
up_is "unusable XDG_RUNTIME_DIR: exec exits 125" "$?" 125
case $out in
  *"cannot use the state directory '$TEST_TMP/badxdg/envrun': not a directory of yours; point XDG_RUNTIME_DIR at a directory of yours (or unset it), or use --state-dir DIR"*)
    ok "... it says why and what to do" ;;
  *) fail "... it says why and what to do" "got: $out" ;;
esac

# ------------------------------------------------ 3. a flooded control socket
up_use "$F" hflood
up_run u2 up -d
up_is "flood: up -d exits 0" "$RC" 0
SOCK=$UP_STATE/hflood/control.sock
"$UP_PY" - "$SOCK" "$D/flooding" <<'PYEOF' &
import socket, sys, time, os
conns = []
for _ in range(80):
    c = socket.socket(socket.AF_UNIX)
    c.connect(sys.argv[1])
    conns.append(c)
open(sys.argv[2], "w").close()
time.sleep(3)
PYEOF
FLOOD=$!
wait_path "$D/flooding" 10 || fail "flood: the clients connected"
up_run st2 status
up_is "flood: status exits 1" "$RC" 1
up_has "flood: status says the supervisor answered 503" "$ERR" "answered 503"
wait "$FLOOD"
up_run d2 down
up_is "flood: down afterwards exits 0" "$RC" 0

# ------------------------------------------------ 4. a costly regex
cat >"$D/regex.yml" <<YML
services:
  r:
    command: [sh, -c, 'printf "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab\\n"; exec sleep 60']
    ready: {output: '(a+)+\$'}
    timeout: 20s
YML
t0=$(date +%s%N)
TESTSVC_MARKER=$UP_M timeout -s KILL 60 "$ENVRUN" --state-dir "$UP_STATE" -f "$D/regex.yml" exec -- true \
  </dev/null >/dev/null 2>"$D/regex.err"
rc=$? ms=$((($(date +%s%N) - t0) / 1000000))
up_is "costly regex: exec exits 125" "$rc" 125
# A mechanism bound, far from any real time: the old loop stalled for
# seconds on it (and the timeout is 20 s).
[ "$ms" -lt 5000 ] && ok "costly regex: over in $ms ms, not stalled" || fail "costly regex: not stalled" "$ms ms"
up_has "costly regex: the failure names the pattern and the limit" "$D/regex.err" \
  "output /\(a\+\)\+\\$/: the pattern gave up on a line of 53 bytes"

# ------------------------------------------------ 6. a control socket path past sun_path
LONG=$TEST_TMP/$(printf 'l%.0s' $(seq 1 130))
mkdir -p "$LONG"
up_lp() { TESTSVC_MARKER=$UP_M timeout -s KILL 30 "$ENVRUN" --state-dir "$LONG" -f "$F" -p hlong "$@" </dev/null; }
[ "${#LONG}" -gt 140 ] && ok "long path: the socket path is $((${#LONG} + 20)) bytes (sun_path holds 108)" ||
  fail "long path: long enough" "${#LONG}"
up_lp up -d >"$D/long.out" 2>"$D/long.err"
up_is "long path: up -d exits 0" "$?" 0
up_lp status --json >"$D/long.st" 2>>"$D/long.err"
up_is "long path: status reaches the supervisor (exit 0)" "$?" 0
up_check "long path: ... and the instance is up" "$D/long.st" "j['state'] == 'up'"
up_lp down >/dev/null 2>>"$D/long.err"
up_is "long path: down exits 0" "$?" 0
[ ! -e "$LONG/hlong" ] && ok "long path: the instance is gone" || fail "long path: the instance is gone" "$(cat "$D/long.err")"

# ------------------------------------------------ 7. planted files
# A FIFO at an instance's lock: status and down refuse at once (never wait
# on it), exec runs in an instance of its own.
mkdir -p "$UP_STATE/hfifo" && chmod 700 "$UP_STATE/hfifo" && mkfifo "$UP_STATE/hfifo/lock"
for verb in status down; do
  t0=$(date +%s%N)
  timeout -s KILL 10 "$ENVRUN" --state-dir "$UP_STATE" -p hfifo "$verb" </dev/null >/dev/null 2>"$D/fifo.err"
  rc=$? ms=$((($(date +%s%N) - t0) / 1000000))
  [ "$rc" -ne 137 ] && ok "FIFO as the lock: $verb returns ($ms ms, exit $rc)" ||
    fail "FIFO as the lock: $verb returns" "killed after 10 s"
  up_has "FIFO as the lock: $verb says why it refuses" "$D/fifo.err" "'.*/hfifo/lock' is not a lock file of yours"
done
TESTSVC_MARKER=$UP_M timeout -s KILL 30 "$ENVRUN" --state-dir "$UP_STATE" -f "$F" -p hfifo -q exec -- true \
  </dev/null >/dev/null 2>"$D/fifo.exec"
up_is "FIFO as the lock: exec runs in an instance of its own (exit 0)" "$?" 0
# A FIFO at a dead instance's records.json: status does not hang on it.
mkdir -p "$UP_STATE/hrec" && chmod 700 "$UP_STATE/hrec" && : >"$UP_STATE/hrec/lock" && mkfifo "$UP_STATE/hrec/records.json"
timeout -s KILL 10 "$ENVRUN" --state-dir "$UP_STATE" -p hrec status </dev/null >/dev/null 2>&1
rc=$?
[ "$rc" -ne 137 ] && ok "FIFO as the records: status returns (exit $rc)" || fail "FIFO as the records: status returns" "killed after 10 s"
rm -rf "$UP_STATE/hfifo" "$UP_STATE/hrec"
# A symlink planted at the per-user ports directory: refused, nothing
# written where it points.
PB=$TEST_TMP/pbase
mkdir -p "$PB" "$TEST_TMP/elsewhere" && chmod 700 "$PB" && ln -s "$TEST_TMP/elsewhere" "$PB/ports"
cat >"$D/ports.yml" <<YML
ports: [P]
services:
  s:
    command: ["$TS", --hold]
YML
TESTSVC_MARKER=$UP_M timeout -s KILL 30 "$ENVRUN" --state-dir "$PB" -f "$D/ports.yml" exec -- true \
  </dev/null >/dev/null 2>"$D/ports.err"
up_is "symlink as the ports directory: exec refuses (125)" "$?" 125
up_has "symlink as the ports directory: it says so" "$D/ports.err" "cannot allocate ports"
up_is "symlink as the ports directory: nothing written where it points" "$(ls -A "$TEST_TMP/elsewhere" | wc -l)" 0

# A FIFO planted as a fresh instance's supervisor.log: up -d refuses at
# once and says why (it used to hang on the open).
up_use "$F" hlog
mkdir -p "$UP_STATE/hlog" && chmod 700 "$UP_STATE/hlog" && mkfifo "$UP_STATE/hlog/supervisor.log"
UP_LIMIT=10 up_run log1 up -d
up_is "FIFO as supervisor.log: up -d exits 1 (not killed after 10 s)" "$RC" 1
up_has "FIFO as supervisor.log: it says why" "$ERR" "cannot open '.*/hlog/supervisor.log': No such device or address"
rm -rf "$UP_STATE/hlog"

# ------------------------------------------------ 8. a supervisor that dies in the bring-up
# A directory planted where the control socket goes: the supervisor cannot
# listen and dies; up -d prints why (it used to go to supervisor.log, which
# is removed with the instance).
up_use "$F" hsock
mkdir -p "$UP_STATE/hsock/control.sock" && chmod 700 "$UP_STATE/hsock"
up_run sock1 up -d
up_is "supervisor dies in the bring-up: up -d exits 1" "$RC" 1
up_has "supervisor dies in the bring-up: up -d prints its reason" "$ERR" \
  "cannot listen on '.*/hsock/control.sock': File exists"
rm -rf "$UP_STATE/hsock"

# ------------------------------------------------ 9. a race of up -d
# Four at once, five times: one wins; every loser is AlreadyRunning and
# names the winner's real supervisor pid (it used to say 0 when it looked
# before the winner had written its records).
up_use "$F" hrace
race_bad=0
for round in 1 2 3 4 5; do
  for k in 1 2 3 4; do
    TESTSVC_MARKER=$UP_M timeout -s KILL 30 "$ENVRUN" --state-dir "$UP_STATE" -f "$F" -p hrace up -d \
      </dev/null >/dev/null 2>"$D/race.$k" &
  done
  wait
  winner=$(sed -n "s/^envrun: 'hrace' is up (supervisor pid \([0-9]*\))$/\1/p" "$D"/race.* | head -1)
  named=$(sed -n 's/^envrun: AlreadyRunning: .*(supervisor pid \([0-9]*\),.*/\1/p' "$D"/race.* | sort -u | tr '\n' ' ')
  nlosers=$(grep -l "AlreadyRunning" "$D"/race.* | wc -l)
  if [ -z "$winner" ] || [ "$nlosers" -ne 3 ] || [ "$named" != "$winner " ]; then
    race_bad=1
    fail "race of up -d (round $round): one winner, three losers naming it" \
      "winner '$winner', losers $nlosers naming '$named'" "$(cat "$D"/race.*)"
    break
  fi
  up_run rd down
done
[ "$race_bad" -eq 0 ] && ok "race of up -d, five rounds of four: every loser names the winner's real pid"
up_run rd2 down

# ------------------------------------------------ 10. a stalled reader
# A foreground up whose stdout is a FIFO that nobody reads (its reader
# holds it open, never reading), with a service printing 20 MB: the loop
# used to block in write(2), so a 1 s service showed ready after 25 s and
# status and down from another terminal hung.
cat >"$D/chatty.yml" <<YML
services:
  chatty:
    command: ["$TS", --spam, "20000000", --hold]
  slow:
    command: ["$TS", --sleep, "1", --stdout, ready, --hold]
    ready: {output: "^ready\$"}
YML
up_use "$D/chatty.yml" hstall
rm -f "$D/stall.fifo"
mkfifo "$D/stall.fifo"
(exec sleep 600 <"$D/stall.fifo") &
stall_reader=$!
(TESTSVC_MARKER=$UP_M exec timeout -s KILL 60 "$ENVRUN" --state-dir "$UP_STATE" -f "$D/chatty.yml" \
  -p hstall up </dev/null >"$D/stall.fifo" 2>"$D/stall.err") &
stall_up=$!
stall_ok=0
for _ in $(seq 100); do
  if up_ev status --json >"$D/stall.json" 2>/dev/null && grep -q '"slow"' "$D/stall.json" &&
     /usr/bin/python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if [s for s in j["services"] if s["name"] == "slow" and s["state"] == "ready"] else 1)' "$D/stall.json"; then
    stall_ok=1; break
  fi
  sleep 0.1
done
up_is "stalled reader: status answers and the slow service is ready within 10 s" "$stall_ok" 1
up_check "stalled reader: the slow service was ready in under 5 s (it takes 1 s)" "$D/stall.json" \
  "s('slow')['ready_ms'] < 5000"
UP_LIMIT=20 up_run stall_down down
up_is "stalled reader: down exits 0" "$RC" 0
wait "$stall_up"
up_is "stalled reader: the foreground up exits 0" "$?" 0
up_has "stalled reader: the dropped output is counted and said" "$D/stall.err" \
  "envrun: warning: [0-9]+ bytes of standard output were dropped: its reader did not keep up"
kill "$stall_reader" 2>/dev/null
wait "$stall_reader" 2>/dev/null

# ------------------------------------------------ 5. a full disk (root: a 1 MB tmpfs)
if [ "$(id -u)" -eq 0 ]; then
  SMALL=$TEST_TMP/small
  mkdir -p "$SMALL"
  if mount -t tmpfs -o size=1m tmpfs "$SMALL"; then
    trap 'umount "$SMALL" 2>/dev/null; up_teardown; rm -rf "$TEST_TMP"' EXIT
    cat >"$D/spam.yml" <<YML
services:
  spam:
    command: ["$TS", --spam, "3000000", --stdout, ready, --hold]
    ready: {output: ready}
    timeout: 20s
YML
    TESTSVC_MARKER=$UP_M timeout -s KILL 60 "$ENVRUN" --state-dir "$SMALL/state" -f "$D/spam.yml" \
      exec --report "$D/spam.json" -- true </dev/null >/dev/null 2>"$D/spam.err"
    rc=$?
    up_is "full disk: the service still came up and went down (exit 0)" "$rc" 0
    up_has "full disk: said once, while it runs" "$D/spam.err" \
      "its log cannot be written \(No space left on device\): its output is dropped and counted"
    up_is "full disk: said once only" "$(grep -c 'its log cannot be written' "$D/spam.err")" 1
    up_check "full disk: the lost output is counted in log_dropped_bytes (over 1 MB of 3 MB)" "$D/spam.json" \
      "j['services'][0]['log_dropped_bytes'] > 1000000"
    umount "$SMALL"
  else
    fail "full disk: mount a 1 MB tmpfs as root"
  fi
else
  echo "# full disk: not run as $(id -un): mounting a small tmpfs needs root (hostile.t_fast runs it)"
fi

up_settled "after the hostile set"
finish
