#!/usr/bin/env bash
# Detached environments that recover and grow (issue 18), end to end, as
# root here and as a normal user in t_detached_user: a service killed with
# SIGKILL is brought back by `start` and by `restart`; `exec` refuses the
# broken stack (125, naming the service) unless --allow-partial, and runs
# once it is whole again; a service stopped by hand makes it partial too,
# a completed job does not; `env` gives a shell what `exec` sees; `test`
# appends its arguments to the file's test command; `ls` lists two
# projects up and one stale; `up -d a` then `up -d b` grow one instance,
# and a service the running configuration does not know is refused.  Every process started carries TESTSVC_MARKER
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
test:
  command: [sh, -c, 'printf "<%s>" "\$@" >"\$0"', "$D/test_args"]
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
up_check "status: the job is 'completed', exit 0, with how long it ran (under 1 s)" "$OUT" \
  "s('migrate')['state'] == 'completed' and s('migrate')['exit_code'] == 0 and 0 <= s('migrate')['ran_ms'] < 1000"
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

# ------------------------------------------------ env
up_run env1 env
up_is "env: exit 0" "$RC" 0
ENV_OUT=$OUT
up_run ex6 exec -q -- sh -c 'echo "$CACHE_PORT $ENVRUN_STATE_DIR $ENVRUN_PROJECT"'
seen_by_exec=$(cat "$OUT")
seen_by_env=$(eval "$(cat "$ENV_OUT")"; echo "$CACHE_PORT $ENVRUN_STATE_DIR $ENVRUN_PROJECT")
up_is "eval \"\$(envrun env)\" gives the ports and state dir exec sees" "$seen_by_env" "$seen_by_exec"
case $seen_by_env in [0-9]*' '/*' tdet') ok "env: a port, an absolute state dir, the project" ;;
  *) fail "env: a port, an absolute state dir, the project" "got '$seen_by_env'" ;; esac
up_run env2 env --json
up_check "env --json: the same values as strings" "$OUT" \
  "' '.join([j['CACHE_PORT'], j['ENVRUN_STATE_DIR'], j['ENVRUN_PROJECT']]) == '$seen_by_exec'"

# ------------------------------------------------ test ARG...
up_run test1 test -k "a b" -x
up_is "test -k 'a b' -x: exit 0" "$RC" 0
up_is "test: the arguments reach the file's test command" "$(cat "$D/test_args" 2>/dev/null)" "<-k><a b><-x>"
up_run test2 test -- -v
up_is "test -- -v: everything after -- is the test's" "$(cat "$D/test_args" 2>/dev/null)" "<-v>"

# ------------------------------------------------ ls: two up, one stale
up_use "$F" tdet2
up_run up2 up -d
up_is "a second project of the file: up -d exit 0" "$RC" 0
up_use "$F" tdet3
up_run up3 up -d
up_is "a third project: up -d exit 0" "$RC" 0
up_status st5
SUP3=$(up_jq "$OUT" "j['supervisor_pid']")
kill -KILL "$SUP3" 2>/dev/null
up_wait_gone "$SUP3" 10 || fail "the third supervisor is gone after kill -9"
up_use "$F" tdet
up_run ls1 ls --json
up_is "ls --json: exit 0" "$RC" 0
up_check "ls: tdet and tdet2 up with 3/3 services and their ports, tdet3 stale" "$OUT" \
  "sorted((e['project'], e['state'], e.get('services_ready'), e.get('services_total'), 'CACHE_PORT' in e.get('ports', {})) for e in j) == [('tdet', 'up', 3, 3, True), ('tdet2', 'up', 3, 3, True), ('tdet3', 'stale', None, None, False)]"
up_run ls2 ls
up_has "ls (text): a line for the stale project" "$OUT" "^tdet3 +stale "
up_use "$F" tdet3
up_run down3 down
up_is "down of the stale project: exit 0" "$RC" 0
up_use "$F" tdet2
up_run down2 down
up_use "$F" tdet

# ------------------------------------------------ up -d a, then up -d b: one instance
G=$D/grow.yml
cat >"$G" <<YML
services:
  a:
    command: ["$TS", --stdout, "a up", --hold]
    ready: {output: "^a up\$"}
  c:
    command: ["$TS", --stdout, "c up", --hold]
    ready: {output: "^c up\$"}
  b:
    command: ["$TS", --stdout, "b up", --hold]
    ready: {output: "^b up\$"}
    depends_on: [c]
YML
up_use "$G" tgrow
up_run g1 up -d a
up_is "grow: up -d a: exit 0" "$RC" 0
up_status g1s
GSUP=$(up_jq "$OUT" "j['supervisor_pid']")
up_run g2 up -d b
up_is "grow: up -d b on the running instance: exit 0" "$RC" 0
up_has "grow: up -d b names b ready" "$ERR" "^b: ready$"
up_status g2s
up_check "grow: a, b and its dependency c ready in the one instance" "$OUT" \
  "j['supervisor_pid'] == $GSUP and [s('a')['state'], s('b')['state'], s('c')['state']] == ['ready'] * 3 and all(x['selected'] for x in j['services'])"
up_run g3 up -d a b
up_is "grow: up -d of services all up: AlreadyRunning, exit 1" "$RC" 1
up_has "grow: AlreadyRunning names the instance" "$ERR" "AlreadyRunning: 'tgrow' is already up"
printf '  d:\n    command: ["%s", --hold]\n' "$TS" >>"$G"
up_run g4 up -d d
up_is "grow: a service the running configuration does not know: exit 1" "$RC" 1
up_has "grow: the file changed since, said" "$ERR" "changed since 'tgrow' was started"
up_has "grow: the unknown service refused with the way out" "$ERR" "no service 'd' in the configuration 'tgrow' was started with: run .envrun down. first"
up_run g5 down
up_is "grow: down: exit 0" "$RC" 0
up_use "$F" tdet

# ------------------------------------------------ down returns after the supervisor's exit
S=$D/small.yml
printf 'services:\n  s:\n    command: ["%s", --hold]\n' "$TS" >"$S"
up_use "$S" tsmall
gone_bad=0
for i in $(seq 1 50); do
  up_run s1 up -d
  [ "$RC" -eq 0 ] || { gone_bad=$((gone_bad + 1)); break; }
  SSUP=$(tail -n 1 "$ERR" | sed -n 's/.*supervisor pid \([0-9]*\).*/\1/p')
  up_run s2 down
  # At once, no wait: the supervisor must have exited.  It may still be a
  # zombie for a moment: it is no child of envrun's, and its reaping is its
  # new parent's (init, or a subreaper), after its exit.
  if [ "$RC" -ne 0 ] || [ -z "$SSUP" ] || up_alive "$SSUP"; then
    gone_bad=$((gone_bad + 1))
    fail "down returns after its supervisor exited (round $i)" "rc $RC, supervisor '$SSUP' $(cat "/proc/$SSUP/stat" 2>/dev/null)"
    break
  fi
done
[ "$gone_bad" -eq 0 ] && ok "down, 50 times: the supervisor has exited as soon as down returns"
up_use "$F" tdet

up_run down1 down
up_is "down: exit 0" "$RC" 0
up_settled "after down"
finish
