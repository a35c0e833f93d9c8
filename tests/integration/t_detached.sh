#!/usr/bin/env bash
# Detached environments that recover and grow (issue 18), end to end, as
# root here and as a normal user in t_detached_user: a service killed with
# SIGKILL is brought back by `start` and by `restart`; `exec` refuses the
# broken stack (125, naming the service) unless --allow-partial, and runs
# once it is whole again; a service stopped by hand makes it partial too,
# a completed job does not.  Every process started carries TESTSVC_MARKER
# and none may survive.
. "$(dirname "$0")/lib.sh"
: "${ENVRUN_BUILD:=$(dirname "$ENVRUN")}"
up_setup "envrun-t-detached-$$"
TS=$UP_TS
[ -x "$TS" ] || { fail "setup" "testsvc not found at $TS"; finish; exit 1; }
D=$TEST_TMP/stack
mkdir -p "$D"
F=$D/environment.yml
cat >"$F" <<YML
ports: [CACHE_PORT]
services:
  migrate:
    command: ["$TS", --stdout, "migrated", --exit, "0"]
    ready: {exit: 0}
  cache:
    command: ["$TS", --tcp, "\${CACHE_PORT}", --hold]
    ready: {tcp: "\${CACHE_PORT}"}
    depends_on:
      migrate: {condition: completed}
  app:
    command: ["$TS", --stdout, "app up", --hold]
    ready: {output: "^app up\$"}
    depends_on: [cache]
YML

pid_of() { up_jq "$OUT" "s('$1')['pid']"; }
state_of() { up_jq "$OUT" "s('$1')['state']"; }
# crash NAME: SIGKILL to the service's main process, then waits until
# status shows it failed.
crash() {
  local pid
  up_status "crash-$1"
  pid=$(pid_of "$1")
  case $pid in '' | *[!0-9]*) fail "crash $1: a pid in status" "$(head -c 600 "$OUT")"; return 1 ;; esac
  kill -KILL "$pid"
  up_poll 10 eval 'up_status poll; [ "$(state_of '"$1"')" = failed ]' ||
    fail "crash $1: status shows it failed within 10 s" "$(head -c 600 "$OUT")"
}

up_use "$F" tdet
up_run up1 up -d
[ "$RC" -eq 0 ] || up_bail "up -d: exit 0"
ok "up -d: exit 0"
up_status st1
up_is "a completed job leaves the instance up" "$(up_jq "$OUT" "j['state']")" up
up_run ex0 exec -- true
up_is "exec against the whole stack: exit 0" "$RC" 0

# ------------------------------------------------ kill -9, then start
crash cache
up_status st2
up_is "after kill -9: the instance is failed" "$(up_jq "$OUT" "j['state']")" failed
up_run ex1 exec -- true
up_is "exec against the broken stack: exit 125" "$RC" 125
up_has "exec names the broken service and the way out" "$ERR" \
  "'cache' failed \(killed by SIGKILL after it was ready\); bring it back with .envrun start SERVICE."
up_run ex2 exec --allow-partial -- true
up_is "exec --allow-partial: runs anyway, exit 0" "$RC" 0
up_has "exec --allow-partial says what is missing" "$ERR" "which is not whole \(--allow-partial\): 'cache' failed"
up_run start1 start cache
up_is "start brings back a service killed with SIGKILL: exit 0" "$RC" 0
up_status st3
up_is "after start: cache ready" "$(state_of cache)" ready
up_is "after start: the instance is up" "$(up_jq "$OUT" "j['state']")" up
up_run ex3 exec -- bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$CACHE_PORT"'
up_is "exec after the recovery: exit 0, the new cache answers on CACHE_PORT" "$RC" 0

# ------------------------------------------------ kill -9, then restart
crash cache
up_run rs1 restart cache
up_is "restart brings back a service killed with SIGKILL: exit 0" "$RC" 0
up_status st4
up_is "after restart: cache ready" "$(state_of cache)" ready
up_is "after restart: one restart counted" "$(up_jq "$OUT" "s('cache')['restarts']")" 1
up_is "app kept running through both" "$(state_of app)" ready

# ------------------------------------------------ stopped by hand: partial
up_run stop1 stop app
up_is "stop app: exit 0" "$RC" 0
up_run ex4 exec -- true
up_is "exec with a service stopped by hand: exit 125" "$RC" 125
up_has "exec names the stopped service" "$ERR" "'app' stopped"
up_run start2 start app
up_is "start app again: exit 0" "$RC" 0
up_run ex5 exec -- true
up_is "exec once it is whole again: exit 0" "$RC" 0

up_run down1 down
up_is "down: exit 0" "$RC" 0
up_settled "after down"
finish
