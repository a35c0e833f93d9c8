#!/usr/bin/env bash
# Real servers that daemonize, rewrite their process title and drop their
# environment, under every containment a user gets (issue: containment for a
# normal user).  For each identity — root as the host allows (cgroup2 here),
# root with reapers forced (ENVRUN_FORCE_REAPER=1), and an unprivileged user
# (envrun-test, made by tests/run; reapers, since it has no cgroup) — and
# for each server:
#   redis-server --daemonize yes (pidfile + unix checks, redis-cli ping),
#   nginx in its default daemon mode (pidfile + http checks, curl),
#   a service whose daemon double-forks, calls setsid and execs with an
#   empty environment (tcp check, curl),
#   PostgreSQL by pg_ctl start (postmaster.pid + tcp, psql; not as root,
#   which PostgreSQL refuses),
# three ways: `exec`; `up -d`, exec against it, `down`; `up -d`, kill -9 of
# the supervisor, `down`.  Every run snapshots the instance's whole process
# tree while it is up (tests/helpers/ptree.py: pid and start time of every
# descendant of envrun or of the supervisor) and checks afterwards that none
# of them is alive.  Then: a test command that starts a daemon holding
# envrun's stdout, and $(envrun exec ...) still returns.
#
# ENVRUN_DAEMON_LOOPS (default 3) repeats each run; the issue's bar is 20.
. "$(dirname "$0")/lib.sh"

LOOPS=${ENVRUN_DAEMON_LOOPS:-3}
TEST_USER=envrun-test
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
SAFE_PATH=$PG_BIN:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

for t in redis-server redis-cli nginx curl; do
  command -v "$t" >/dev/null || { fail "setup: $t" "not installed (tests/run installs it)"; finish; exit 1; }
done
[ -x "$PG_BIN/pg_ctl" ] || { fail "setup: pg_ctl" "PostgreSQL not installed (tests/run installs it)"; finish; exit 1; }

# The binaries where any user can run them: the build tree may sit below a
# private directory.
chmod 0755 "$TEST_TMP"
BIN=$TEST_TMP/bin
mkdir -p "$BIN"
cp "$ENVRUN" "$BIN/envrun"
cp "$ENVRUN_SRC/tests/helpers/ptree.py" "$BIN/ptree.py"
chmod 0755 "$BIN" "$BIN/envrun" "$BIN/ptree.py"
PT="/usr/bin/python3 $BIN/ptree.py"

# W CMD...: runs CMD as the pass's identity, with a clean environment.
W() {
  local force=()
  [ "$WHO" = root-reaper ] && force=(ENVRUN_FORCE_REAPER=1)
  if [ "$WHO" = user ]; then
    runuser -u "$TEST_USER" -- env -i PATH="$SAFE_PATH" HOME="$D" LANG=C.UTF-8 "${force[@]}" "$@"
  else
    env -i PATH="$SAFE_PATH" HOME="$D" LANG=C.UTF-8 "${force[@]}" "$@"
  fi
}

E() { W "$BIN/envrun" -q -f "$D/$1.yml" --state-dir "$D/state" "${@:2}"; }

write_files() {
  cat >"$D/redis.yml" <<'YML'
name: dmn-redis
services:
  cache:
    command: redis-server --port 0 --unixsocket ${ENVRUN_STATE_DIR}/redis.sock --daemonize yes
             --pidfile ${ENVRUN_STATE_DIR}/redis.pid --dir ${ENVRUN_STATE_DIR} --save "" --appendonly no
    ready:
      - pidfile: ${ENVRUN_STATE_DIR}/redis.pid
      - unix: ${ENVRUN_STATE_DIR}/redis.sock
YML
  cat >"$D/nginx.yml" <<'YML'
name: dmn-nginx
ports: [WEB_PORT]
services:
  web:
    shell: true
    command: |
      d=$ENVRUN_STATE_DIR
      printf 'pid %s/nginx.pid; error_log stderr; events {}\nhttp { access_log off; client_body_temp_path %s/b; proxy_temp_path %s/p; fastcgi_temp_path %s/f; uwsgi_temp_path %s/u; scgi_temp_path %s/s;\nserver { listen 127.0.0.1:%s; location / { return 200 "hi\\n"; } } }\n' $d $d $d $d $d $d $WEB_PORT >$d/nginx.conf
      exec nginx -e stderr -p $d -c $d/nginx.conf
    ready:
      - pidfile: ${ENVRUN_STATE_DIR}/nginx.pid
      - http: http://127.0.0.1:${WEB_PORT}/
YML
  cat >"$D/daemon.yml" <<'YML'
name: dmn-daemon
ports: [D_PORT]
services:
  d:
    shell: true
    command: (setsid env -i /usr/bin/python3 -m http.server $D_PORT --bind 127.0.0.1 >/dev/null 2>&1 &); exec sleep 1000
    ready: {tcp: "${D_PORT}"}
YML
  cat >"$D/pg.yml" <<YML
name: dmn-pg
ports: [PG_PORT]
services:
  pg:
    command: pg_ctl start -D $D/pgdata -l \${ENVRUN_STATE_DIR}/pg.log
             -o "-p \${PG_PORT} -k \${ENVRUN_STATE_DIR} -c listen_addresses=127.0.0.1"
    ready:
      - pidfile: $D/pgdata/postmaster.pid
      - tcp: \${PG_PORT}
      # PostgreSQL listens before it accepts connections (recovery,
      # start-up): what answers is the server itself.
      - exec: pg_isready -q -h 127.0.0.1 -p \${PG_PORT}
YML
}

# What each test command does to talk to its server.
probe() {
  case $1 in
    redis) echo 'redis-cli -s "$ENVRUN_STATE_DIR/redis.sock" ping | grep -qx PONG' ;;
    nginx) echo 'curl -sf "http://127.0.0.1:$WEB_PORT/" | grep -qx hi' ;;
    daemon) echo 'curl -sf -o /dev/null "http://127.0.0.1:$D_PORT/"' ;;
    pg) echo 'psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -Atc "select 1" postgres | grep -qx 1' ;;
  esac
}

# survivors LABEL SNAP: ok when no process of the snapshot is alive, with
# no grace period (the promise is "when it returns"); else fails and kills
# the survivors by pid.
survivors() {
  local left
  if [ ! -s "$2" ]; then fail "$1: a snapshot of the tree was taken"; return; fi
  if left=$($PT alive "$2"); then
    ok "$1: nothing survives ($(wc -l <"$2") processes were up)"
  else
    fail "$1: nothing survives" "$left"
    for p in $(echo "$left" | cut -d' ' -f1); do kill -KILL "$p" 2>/dev/null; done
  fi
}

run_exec() {
  local s=$1 i=$2 snap=$D/snap.$s.exec.$i
  E "$s" exec -- sh -c "$PT snap-envrun >$snap && $(probe "$s")" >"$D/out" 2>&1
  local rc=$?
  [ "$rc" -eq 0 ] && ok "$WHO $s exec #$i: exit 0" || fail "$WHO $s exec #$i: exit 0" "exit $rc" "$(tail -n 15 "$D/out")"
  survivors "$WHO $s exec #$i" "$snap"
}

supervisor_of() {
  E "$1" status --json 2>/dev/null | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["supervisor_pid"])'
}

run_detached() {
  local s=$1 i=$2 how=$3 snap=$D/snap.$s.$3.$i sup rc
  E "$s" up -d >"$D/out" 2>&1
  rc=$?
  [ "$rc" -eq 0 ] || { fail "$WHO $s up -d #$i ($how): exit 0" "exit $rc" "$(tail -n 15 "$D/out")"; E "$s" down >/dev/null 2>&1; return; }
  sup=$(supervisor_of "$s")
  $PT snap "$sup" >"$snap"
  if [ "$how" = down ]; then
    E "$s" exec -- sh -c "$(probe "$s")" >"$D/out" 2>&1
    rc=$?
    [ "$rc" -eq 0 ] && ok "$WHO $s up -d, exec #$i: exit 0" || fail "$WHO $s up -d, exec #$i: exit 0" "exit $rc" "$(tail -n 15 "$D/out")"
  else
    kill -KILL "$sup"
    up_gone=0
    for _ in $(seq 500); do kill -0 "$sup" 2>/dev/null || { up_gone=1; break; }; sleep 0.01; done
    [ "$up_gone" = 1 ] || fail "$WHO $s: supervisor $sup killed"
  fi
  E "$s" down >"$D/out" 2>&1
  rc=$?
  [ "$rc" -eq 0 ] && ok "$WHO $s $how #$i: down exit 0" || fail "$WHO $s $how #$i: down exit 0" "exit $rc" "$(tail -n 15 "$D/out")"
  survivors "$WHO $s $how #$i" "$snap"
}

# A test command that leaves a daemon holding envrun's stdout: the reader
# of $(envrun exec ...) must see EOF when envrun exits.
run_stdout_daemon() {
  local out rc t0 t1 snap=$D/snap.stdout
  t0=$(date +%s%N)
  out=$(W timeout 60 "$BIN/envrun" -q -f "$D/daemon.yml" --state-dir "$D/state" exec -- \
        sh -c "setsid sh -c 'exec sleep 1000' & $PT snap-envrun >$snap; echo hello" 2>/dev/null)
  rc=$?
  t1=$(date +%s%N)
  [ "$rc" -eq 0 ] && [ "$out" = hello ] && ok "$WHO: \$(envrun exec) with a daemon on stdout returns ($(( (t1 - t0) / 1000000 )) ms)" ||
    fail "$WHO: \$(envrun exec) with a daemon on stdout returns" "exit $rc, output '$out' ($(( (t1 - t0) / 1000000 )) ms)"
  survivors "$WHO: the test's daemon" "$snap"
}

# Limits that cannot be enforced are named, each with its reason, in the
# text report's closing lines, and the JSON report says limits_enforced
# false; where they can (root on this host), nothing is said.
run_limits() {
  cat >"$D/limits.yml" <<'YML'
name: dmn-limits
services:
  w:
    command: sleep 100
    limits: {memory: 64M, pids: 20, cpu_time: 1m}
YML
  E limits exec --report "$D/limits.json" -- true >"$D/out" 2>&1
  local rc=$? kind
  kind=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["containment"])' "$D/limits.json" 2>/dev/null)
  [ "$rc" -eq 0 ] && ok "$WHO limits: exec exit 0" || fail "$WHO limits: exec exit 0" "exit $rc" "$(tail -n 5 "$D/out")"
  if [ "$kind" = reaper ]; then
    tail -n 3 "$D/out" | grep -qx "limits not enforced for w: memory: no cgroup to hold it (reaper containment); pids: no cgroup to hold it (reaper containment); cpu_time: no cgroup to read the tree's CPU time from (reaper containment)" &&
      ok "$WHO limits: each unenforced limit named with its reason in the report's last lines" ||
      fail "$WHO limits: each unenforced limit named with its reason in the report's last lines" "$(tail -n 4 "$D/out")"
    tail -n 3 "$D/out" | grep -q "^containment: reaper (.*): no cgroup, so no limit can be enforced" &&
      ok "$WHO limits: the weaker containment said and explained" ||
      fail "$WHO limits: the weaker containment said and explained" "$(tail -n 4 "$D/out")"
    /usr/bin/python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(not (r["limits_enforced"] is False and "pids:" in r["services"][0]["limits_not_enforced"]))' "$D/limits.json" &&
      ok "$WHO limits: JSON limits_enforced false, the service's limits_not_enforced" ||
      fail "$WHO limits: JSON limits_enforced false, the service's limits_not_enforced"
  else
    grep -q "limits not enforced" "$D/out" && fail "$WHO limits: enforced, nothing said" "$(tail -n 4 "$D/out")" ||
      ok "$WHO limits ($kind): enforced, nothing said"
  fi
}

# A daemon named by its pid file whose parent lives on in the tree (not the
# reaper's child, nor envrun's): when it ends, the service is seen to end
# ("exit status unknown": it went to its parent), and envrun does not spin
# on its pidfd meanwhile (a coarse CPU bound: ~10 ms normally, a spin burns
# the whole second).
run_adopted_elsewhere() {
  cat >"$D/adopt.yml" <<'YML'
name: dmn-adopt
services:
  d:
    shell: true
    command: ( sleep 1000 & echo $! > $ENVRUN_STATE_DIR/x.pid; wait; exec sleep 30 ) & exit 0
    ready: {pidfile: "${ENVRUN_STATE_DIR}/x.pid"}
YML
  W /usr/bin/time -o "$D/time" -f "%U %S" "$BIN/envrun" -q -f "$D/adopt.yml" --state-dir "$D/state" exec -- \
    sh -c 'kill $(cat $ENVRUN_STATE_DIR/x.pid); sleep 1' >"$D/out" 2>&1
  local rc=$? cpu
  [ "$rc" -eq 125 ] && grep -q "^d .*ProcessExitedWithError *ended (exit status unknown) while the test ran" "$D/out" &&
    ok "$WHO: an adopted daemon that is no child of envrun's is seen to end" ||
    fail "$WHO: an adopted daemon that is no child of envrun's is seen to end" "exit $rc" "$(head -n 5 "$D/out")"
  cpu=$(tail -n 1 "$D/time" | awk '{printf "%d", ($1 + $2) * 1000}' 2>/dev/null)
  [ -n "$cpu" ] && [ "$cpu" -lt 500 ] && ok "$WHO: envrun does not spin meanwhile (${cpu} ms CPU)" ||
    fail "$WHO: envrun does not spin meanwhile" "${cpu:-?} ms CPU"
}

one_pass() {
  WHO=$1
  D=$TEST_TMP/$WHO
  mkdir -p "$D"
  [ "$WHO" = user ] && chown "$TEST_USER:" "$D"
  write_files
  local servers=(redis nginx daemon)
  if [ "$WHO" = user ] || [ "$(id -u)" -ne 0 ]; then
    if W "$PG_BIN/initdb" -D "$D/pgdata" -A trust -U postgres >"$D/initdb.log" 2>&1; then
      servers+=(pg)
    else
      fail "$WHO: initdb" "$(tail -n 5 "$D/initdb.log")"
    fi
  fi
  for s in "${servers[@]}"; do
    for i in $(seq "$LOOPS"); do
      run_exec "$s" "$i"
      run_detached "$s" "$i" down
      run_detached "$s" "$i" kill-supervisor
    done
  done
  run_stdout_daemon
  run_limits
  run_adopted_elsewhere
  # The containment each identity got, as the report names it.
  E daemon exec --report "$D/report.json" -- true >/dev/null 2>&1
  echo "# $WHO: containment $(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["containment"])' "$D/report.json" 2>/dev/null)"
}

if [ "$(id -u)" -eq 0 ]; then
  one_pass root
  one_pass root-reaper
  if id "$TEST_USER" >/dev/null 2>&1; then
    one_pass user
  else
    fail "user pass" "no user $TEST_USER (tests/run creates it: useradd --system $TEST_USER)"
  fi
else
  one_pass self
fi
finish
