#!/usr/bin/env bash
# A detached environment whose supervisor is killed with SIGKILL (SPEC §2,
# §5.7).  With cgroup2 the services it leaves behind (a double-forked
# daemon, a forked grandchild) survive it until a clean-up; with reapers
# (ENVRUN_FORCE_REAPER=1, what a normal user gets) each service's reaper
# kills its whole tree when the supervisor dies.  Either way `status` then
# says stale (exit 1); `down` kills every survivor, removes the instance dir
# and exits 0; a later `up -d` of a project left stale cleans it up itself.
# Two passes: as the host allows (cgroup2 as root), then with reapers.
. "$(dirname "$0")/lib.sh"
: "${ENVRUN_BUILD:=$(dirname "$ENVRUN")}"
up_setup "envrun-t-upcrash-$$"
TS=$UP_TS
[ -x "$TS" ] || { fail "setup" "testsvc not found at $TS"; finish; exit 1; }

pid_in() { cat "$1" 2>/dev/null; }

# up_crashable TAG PROJECT: writes $D/environment.yml for PROJECT and brings
# it up; 0 when up -d succeeded and every pid file is there.
up_crashable() {
  D=$TEST_TMP/$1
  mkdir -p "$D"
  cat >"$D/environment.yml" <<YML
ports: [WEB_PORT]
services:
  daemon:
    command: ["$TS", --stdout, "daemonizing", --daemon, --pidfile, "$D/daemon.pid", --hold]
    ready: {pidfile: "$D/daemon.pid"}
  web:
    command: ["$TS", --pidfile, "$D/web.pid",
              --fork-child, --pidfile, "$D/webchild.pid", --hold, --end,
              --tcp, "\${WEB_PORT}", --hold]
    ready: {tcp: "\${WEB_PORT}"}
YML
  up_use "$D/environment.yml" "$2"
  up_run "$1.up" up -d
  [ "$RC" -eq 0 ] && wait_path "$D/webchild.pid" 5 && [ -s "$D/web.pid" ] && [ -s "$D/daemon.pid" ]
}

# one_pass LABEL: up, kill -9 the supervisor, status (stale), down.
one_pass() {
  local L=$1 P=crash-$1 SUP DAEMON WEB CHILD p n KIND
  up_crashable "$L" "$P" || up_bail "$L: up -d: exit 0, every service wrote its pid"
  ok "$L: up -d: exit 0"
  up_status "$L.st"
  up_is "$L: status exit 0" "$RC" 0
  SUP=$(up_jq "$OUT" 'j["supervisor_pid"]')
  DAEMON=$(pid_in "$D/daemon.pid")
  WEB=$(pid_in "$D/web.pid")
  CHILD=$(pid_in "$D/webchild.pid")
  KIND=$(up_jq "$OUT" 'j["containment"]')
  if [ "$L" = reaper ]; then
    up_check "$L: containment reaper (forced)" "$OUT" 'j["containment"] == "reaper"'
  else
    up_check "$L: containment named" "$OUT" 'j["containment"] in ("cgroup2", "cgroup1", "reaper")'
  fi
  # (whether the daemon's pid was adopted as the service's depends on
  # which came first, the pid file or the parent's exit: not checked here)
  echo "# $L: daemon service pid $(up_jq "$OUT" "s('daemon')['pid']"), daemon (pid file) $DAEMON"
  up_check "$L: web's pid is the service's" "$OUT" "s('web')['pid'] == $WEB"
  for p in "$SUP" "$DAEMON" "$WEB" "$CHILD"; do
    up_alive "$p" || fail "$L: pid $p alive before the crash"
  done

  kill -KILL "$SUP"
  up_wait_gone "$SUP" 5 && ok "$L: supervisor $SUP killed" || fail "$L: supervisor $SUP killed"
  if [ "$KIND" = reaper ]; then
    # Each service's reaper saw its parent die and killed its whole tree.
    up_wait_gone "$DAEMON" 5 && up_wait_gone "$CHILD" 5 && up_wait_gone "$WEB" 5 &&
      ok "$L: the daemon, web and web's child die with the supervisor" ||
      fail "$L: the daemon, web and web's child die with the supervisor" "daemon $DAEMON alive: $(up_alive "$DAEMON" && echo yes || echo no), child $CHILD: $(up_alive "$CHILD" && echo yes || echo no)"
  else
    # The double-forked daemon and web's forked child are no direct children
    # of the supervisor: nothing kills them until a clean-up does.  (When this
    # fails the rest proves nothing about down's clean-up.)
    up_alive "$DAEMON" && up_alive "$CHILD" && ok "$L: the daemon and web's child outlive the supervisor" ||
      fail "$L: the daemon and web's child outlive the supervisor" "daemon $DAEMON alive: $(up_alive "$DAEMON" && echo yes || echo no), child $CHILD: $(up_alive "$CHILD" && echo yes || echo no)"
  fi

  up_run "$L.stale" status
  up_is "$L: status of the stale instance: exit 1" "$RC" 1
  up_has "$L: status says stale" "$OUT" "^$P +stale +supervisor $SUP( |$)"
  up_status "$L.stale_json"
  up_is "$L: status --json of the stale instance: exit 1" "$RC" 1
  up_check "$L: status --json: state stale, the dead supervisor's pid" "$OUT" \
    "j['project'] == '$P' and j['state'] == 'stale' and j['supervisor_pid'] == $SUP"

  up_run "$L.down" down
  up_is "$L: down of the stale instance: exit 0" "$RC" 0
  up_has "$L: down says what it cleaned" "$ERR" "^envrun: cleaned up stale instance of '$P' \([0-9]+ process(es)? killed\)$"
  n=$(sed -n "s/^envrun: cleaned up stale instance of '$P' (\([0-9]*\) process.*/\1/p" "$ERR")
  if [ "$KIND" != reaper ]; then
    [ "${n:-0}" -ge 2 ] && ok "$L: down killed at least the daemon and web's child ($n)" ||
      fail "$L: down killed at least the daemon and web's child" "it says ${n:-nothing}"
  fi
  for p in "$DAEMON" "$WEB" "$CHILD" "$SUP"; do
    up_wait_gone "$p" 5 && ok "$L: pid $p gone" || fail "$L: pid $p gone" "$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"
  done
  [ ! -e "$UP_STATE/$P" ] && ok "$L: instance dir removed" || fail "$L: instance dir removed" "$(ls -la "$UP_STATE/$P" 2>&1)"
  up_settled "$L: after down"
  up_status "$L.after"
  up_is "$L: status after down: exit 3" "$RC" 3
}

# up_over_stale LABEL: up, kill -9 the supervisor, then up -d again: the new
# instance cleans up the stale one and comes up.
up_over_stale() {
  local L=$1 P=crash-$1 SUP DAEMON CHILD
  up_crashable "$L" "$P" || up_bail "$L: up -d: exit 0, every service wrote its pid"
  up_status "$L.st"
  SUP=$(up_jq "$OUT" 'j["supervisor_pid"]')
  DAEMON=$(pid_in "$D/daemon.pid")
  CHILD=$(pid_in "$D/webchild.pid")
  kill -KILL "$SUP"
  up_wait_gone "$SUP" 5 || fail "$L: supervisor $SUP killed"
  rm -f "$D/daemon.pid" "$D/web.pid" "$D/webchild.pid"
  up_run "$L.up2" up -d
  up_is "$L: up -d over a stale instance: exit 0" "$RC" 0
  up_wait_gone "$DAEMON" 5 && ok "$L: the old daemon is gone" || fail "$L: the old daemon $DAEMON is gone"
  up_wait_gone "$CHILD" 5 && ok "$L: web's old child is gone" || fail "$L: web's old child $CHILD is gone"
  up_status "$L.st2"
  up_is "$L: the new instance: status exit 0" "$RC" 0
  up_check "$L: a new supervisor" "$OUT" "j['supervisor_pid'] != $SUP"
  up_run "$L.down" down
  up_is "$L: down: exit 0" "$RC" 0
  [ ! -e "$UP_STATE/$P" ] && ok "$L: instance dir removed" || fail "$L: instance dir removed"
  up_settled "$L: after down"
}

one_pass native
up_over_stale native-again
export ENVRUN_FORCE_REAPER=1
one_pass reaper
up_over_stale reaper-again
unset ENVRUN_FORCE_REAPER
finish
