#!/usr/bin/env bash
# SIGINT, SIGTERM and kill -9 at each phase of envrun's life (issue 22),
# made deterministic by the phase hook (core/base/testhook.h): envrun,
# built with -DENVRUN_TEST_HOOKS=ON, stops at the named phase and says so
# through a FIFO; the test signals it there, then lets it go on.  No sleeps.
#   exec: loaded, starting, waiting, test, stopping  x  INT, TERM, KILL
#   up -d: the supervisor at starting, waiting, stopping (during down) x
#          TERM, KILL
# INT/TERM: exec exits 130/143 and leaves nothing (process or instance
# directory); KILL: with reapers (a normal user) the trees die with envrun
# at once; with cgroups (root) the next exec of the project kills what
# survived (README's promise, doc/containment.md); either way, nothing is
# left once that ran.  Each service is a tree (a background child), so a
# main process's parent-death signal alone does not pass.
. "$(dirname "$0")/../integration/lib.sh"
M=envrun-phases-$$
D=$TEST_TMP/p
H=$D/hold
STATE=$TEST_TMP/state
mkdir -p "$H"
mkfifo "$H/at" "$H/go"
cat >"$D/environment.yml" <<'YML'
name: phases
services:
  db:
    command: [sh, -c, "sleep 300 & echo up; exec sleep 300"]
    ready: {output: up}
    stop_timeout: 5s
  api:
    command: [sh, -c, "sleep 300 & echo up; exec sleep 300"]
    ready: {output: up}
    depends_on: [db]
    stop_timeout: 5s
YML
user=root; [ "$(id -u)" -eq 0 ] || user=normal
BGPID=

# Kills, by pid, whatever this test started and left (after a FAIL).
cleanup() {
  local p
  [ -n "$BGPID" ] && kill -KILL "$BGPID" 2>/dev/null
  for p in $(marker_pids "$M"); do kill -KILL "$p" 2>/dev/null; done
  rm -rf "$TEST_TMP"
}
trap cleanup EXIT

# held LABEL: reads "PHASE PID" from the hold FIFO (30 s at most) into
# HELD_PID; 1 when envrun never got there.
held() {
  local line
  line=$(timeout 30 cat "$H/at") || { fail "$1: envrun never reached the phase" \
    "(is it built with -DENVRUN_TEST_HOOKS=ON? tests/run's sanitizer build is)"; return 1; }
  HELD_PID=${line#* }
  return 0
}

# release: lets a held envrun go on.
release() { timeout 10 sh -c 'echo go >"$1"' _ "$H/go" || true; }

# gone_within SECONDS: no process with the marker is left, polled.
gone_within() {
  local end=$(($(date +%s%N) + $1 * 1000000000))
  while [ -n "$(marker_pids "$M")" ]; do
    [ "$(date +%s%N)" -ge "$end" ] && return 1
    sleep 0.02
  done
}

# no_instances LABEL: no instance directory of the project is left.
no_instances() {
  local left
  left=$(find "$STATE" -mindepth 1 -maxdepth 1 -name '*phases*' 2>/dev/null)
  [ -z "$left" ] && ok "$1: no instance directory left" || fail "$1: instance directories left" "$left"
}

# lock_free SECONDS: no process holds a killed instance's lock open.  A
# child caught between its fork and its exec (killed by its parent-death
# signal a moment later) still has the lock's descriptor, and a live lock
# is an instance the next run must leave alone.
lock_free() {
  local end=$(($(date +%s%N) + $1 * 1000000000))
  while find /proc/[0-9]*/fd -lname "$STATE/*/lock" 2>/dev/null | grep -q .; do
    [ "$(date +%s%N)" -ge "$end" ] && return 1
    sleep 0.02
  done
}

# recover LABEL: the next exec of the project, which must clean up after
# a killed one, then nothing may be left.
recover() {
  lock_free 5 || fail "$1: the killed instance's lock is released" \
    "$(find /proc/[0-9]*/fd -lname "$STATE/*/lock" 2>/dev/null)"
  (cd "$D" && TESTSVC_MARKER=$M timeout -s KILL 60 "$ENVRUN" --state-dir "$STATE" -q exec -- true) \
    </dev/null >/dev/null 2>"$D/recover.err"
  local rc=$?
  [ "$rc" -eq 0 ] && ok "$1: the next exec runs (exit 0)" ||
    fail "$1: the next exec runs" "rc=$rc" "$(tail -5 "$D/recover.err")"
}

exec_case() {
  local phase=$1 sig=$2 label="exec, $1, SIG$2" want rc cmd=(true)
  # held while the test runs, a test that runs; else one that ends at once
  [ "$phase" = test ] && cmd=(sleep 300)
  (cd "$D" && TESTSVC_MARKER=$M ENVRUN_TEST_HOLD=$phase ENVRUN_TEST_HOLD_DIR=$H \
    exec timeout -s KILL 60 "$ENVRUN" --state-dir "$STATE" exec -- "${cmd[@]}") \
    </dev/null >"$D/out" 2>"$D/err" &
  BGPID=$!
  if ! held "$label"; then kill -KILL "$BGPID"; wait "$BGPID"; BGPID=; return; fi
  kill "-$sig" "$HELD_PID"
  [ "$sig" = KILL ] || release
  wait "$BGPID"; rc=$?; BGPID=
  case $sig in INT) want=130 ;; TERM) want=143 ;; KILL) want=137 ;; esac
  [ "$rc" -eq "$want" ] && ok "$label: exit $want" ||
    fail "$label: exit $want" "rc=$rc" "$(tail -5 "$D/err")"
  if [ "$sig" != KILL ]; then
    # the test, sent the signal (test.signal), dies of it: said as its end
    case $(tail -1 "$D/err") in *"stopped by SIG$sig"* | *"test killed by SIG$sig"*)
      ok "$label: the report says so" ;;
      *) fail "$label: the report says so" "$(tail -3 "$D/err")" ;; esac
    assert_no_leftovers "$M" "$label"
    no_instances "$label"
    return
  fi
  if [ "$user" = normal ]; then
    gone_within 5 && ok "$label: the reapers killed every tree with envrun" ||
      fail "$label: the reapers killed every tree with envrun" "left: $(marker_pids "$M")"
  fi
  recover "$label"
  assert_no_leftovers "$M" "$label, after the next exec"
  no_instances "$label, after the next exec"
}

for phase in loaded starting waiting test stopping; do
  for sig in INT TERM KILL; do exec_case "$phase" "$sig"; done
done

# ---------------------------------------------------------------- up -d
# The supervisor forks from `up -d` and holds at the phases it reaches; at
# "stopping", inside the `down` that follows.
E() { TESTSVC_MARKER=$M "$ENVRUN" --state-dir "$STATE" -f "$D/environment.yml" "$@"; }

sup_case() {
  local phase=$1 sig=$2 label="up -d supervisor, $1, SIG$2" rc st
  if [ "$phase" = stopping ]; then
    # the supervisor keeps the hold list of the up -d it forked from
    (ENVRUN_TEST_HOLD=stopping ENVRUN_TEST_HOLD_DIR=$H E up -d) </dev/null >/dev/null 2>"$D/err" ||
      { fail "$label: up -d" "$(tail -3 "$D/err")"; return; }
    E down </dev/null >/dev/null 2>"$D/err" &
  else
    (ENVRUN_TEST_HOLD=$phase ENVRUN_TEST_HOLD_DIR=$H E up -d) </dev/null >/dev/null 2>"$D/err" &
  fi
  BGPID=$!
  if ! held "$label"; then kill -KILL "$BGPID"; wait "$BGPID"; BGPID=; E down >/dev/null 2>&1; return; fi
  kill "-$sig" "$HELD_PID"
  [ "$sig" = KILL ] || release
  wait "$BGPID"; rc=$?; BGPID=
  [ "$rc" -ne 0 ] && ok "$label: the command in flight fails (exit $rc)" ||
    { [ "$phase" = stopping ] && [ "$sig" = TERM ] && ok "$label: down completes (exit 0)"; } ||
    fail "$label: the command in flight fails" "rc=0"
  if [ "$sig" = KILL ]; then
    E status >/dev/null 2>&1 </dev/null; st=$?
    [ "$st" -eq 1 ] || [ "$st" -eq 3 ] && ok "$label: status says stale or nothing up ($st)" ||
      fail "$label: status says stale or nothing up" "status exit $st"
    if [ "$user" = normal ]; then
      gone_within 5 && ok "$label: the reapers killed every tree with the supervisor" ||
        fail "$label: the reapers killed every tree with the supervisor" "left: $(marker_pids "$M")"
    fi
  fi
  E down </dev/null >/dev/null 2>"$D/err"; rc=$?
  [ "$rc" -eq 0 ] || [ "$rc" -eq 1 ] && ok "$label: down afterwards ($rc)" ||
    fail "$label: down afterwards" "rc=$rc" "$(tail -3 "$D/err")"
  gone_within 10 && ok "$label: no leftover processes" ||
    { assert_no_leftovers "$M" "$label"; }
  no_instances "$label"
}

for phase in starting waiting stopping; do
  for sig in TERM KILL; do sup_case "$phase" "$sig"; done
done

finish
