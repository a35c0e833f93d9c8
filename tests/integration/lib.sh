# Shared helpers for integration tests (sourced).  Each test script runs the
# real binary ($ENVRUN) and reports "ok"/"FAIL" lines, then a summary; it
# exits non-zero when any check failed.
set -u
: "${ENVRUN:?ENVRUN must point at the envrun binary (ctest sets it)}"
: "${ENVRUN_SRC:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${ENVRUN_RELEASE:=$ENVRUN}"
PASSED=0
FAILED=0

ok() { PASSED=$((PASSED + 1)); printf 'ok   %s\n' "$1"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL %s\n' "$1"; shift; [ $# -gt 0 ] && printf '     %s\n' "$@"; return 0; }

# expect_success NAME CMD...: runs CMD in a subshell; ok when it exits 0.
expect_success() {
  local name=$1; shift
  local out
  if out=$("$@" 2>&1); then ok "$name"; else fail "$name" "$out"; fi
}

# A private temp dir, removed at exit.
TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/envrun-test.XXXXXX")
trap 'rm -rf "$TEST_TMP"' EXIT

finish() {
  printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
  [ "$FAILED" -eq 0 ] && [ "$PASSED" -gt 0 ]
}

# marker_pids MARKER: the pids of live processes whose environment holds
# TESTSVC_MARKER=MARKER (zombies have an empty environ and are not listed).
marker_pids() {
  local f p
  for f in $(grep -lzxF "TESTSVC_MARKER=$1" /proc/[0-9]*/environ 2>/dev/null); do
    p=${f#/proc/}; p=${p%/environ}
    [ "$p" != "$$" ] && echo "$p"
  done
  return 0
}

# assert_no_leftovers MARKER [LABEL]: ok when no process carries the marker;
# otherwise fails, describing each survivor, and kills each one by pid.
assert_no_leftovers() {
  local m=$1 label=${2:-$1} pids p st info=()
  pids=$(marker_pids "$m")
  if [ -z "$pids" ]; then ok "$label: no leftover processes"; return 0; fi
  for p in $pids; do
    st=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | cut -d' ' -f1-2)
    info+=("survivor pid $p (state/ppid: $st): $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)")
  done
  for p in $pids; do kill -KILL "$p" 2>/dev/null; kill -CONT "$p" 2>/dev/null; done
  fail "$label: leftover processes" "${info[@]}"
}

# free_ports N: N distinct free TCP ports on 127.0.0.1, one per line (all are
# bound at once, then released, so they differ from each other).
free_ports() {
  /usr/bin/python3 - "$1" <<'PYEOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print("\n".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
PYEOF
}

# free_port: one free TCP port on 127.0.0.1.
free_port() { free_ports 1; }

# wait_path PATH SECONDS: waits (deadline loop, 10 ms steps) until PATH
# exists; returns 1 when the deadline passes first.
wait_path() {
  local end=$(($(date +%s%N) + $2 * 1000000000))
  while [ ! -e "$1" ]; do
    [ "$(date +%s%N)" -ge "$end" ] && return 1
    sleep 0.01
  done
  return 0
}

# ------------------------------------------------------------------------
# Detached environments (up -d, status, logs, stop/start/restart, down, the
# control API): helpers for t_up.sh, t_up_crash.sh and t_ctl_hostile.sh.
# Every envrun call goes through up_ev: --state-dir is the test's own
# $UP_STATE (so the instance dir is $UP_STATE/<project>), the file and
# project are those of the last up_use, TESTSVC_MARKER=$UP_M is exported (so
# every process of the environment, supervisor included, carries it), and
# timeout(1) guards against a hang.  Output always goes to files, never to a
# pipe: a supervisor that kept a pipe open would hang a $(...).

# up_setup MARKER: $UP_STATE, $UP_M, $UP_TS (testsvc), $UP_PY (python3),
# $UP_POKE (tests/helpers/ctlpoke.py), and an EXIT trap that brings down
# every project given to up_use, kills whatever still carries the marker,
# cleans up after it and removes $TEST_TMP.
up_setup() {
  UP_STATE=$TEST_TMP/state
  UP_M=$1
  UP_TS=${ENVRUN_BUILD:-$(dirname "$ENVRUN")}/tests/testsvc
  UP_PY=/usr/bin/python3
  UP_POKE=$ENVRUN_SRC/tests/helpers/ctlpoke.py
  UP_USED_F=()
  UP_USED_P=()
  UP_F=
  UP_P=
  trap 'up_teardown; rm -rf "$TEST_TMP"' EXIT
}

# up_use FILE PROJECT: the file and project of the following up_ev calls.
up_use() {
  local i
  UP_F=$1
  UP_P=$2
  for i in "${!UP_USED_P[@]}"; do
    [ "${UP_USED_F[$i]}" = "$1" ] && [ "${UP_USED_P[$i]}" = "$2" ] && return 0
  done
  UP_USED_F+=("$1")
  UP_USED_P+=("$2")
}

# up_ev ARGS...: envrun [global options] ARGS, stdin /dev/null, killed after
# ${UP_LIMIT:-30} s.
up_ev() {
  TESTSVC_MARKER=$UP_M timeout -s KILL "${UP_LIMIT:-30}" \
    "$ENVRUN" --state-dir "$UP_STATE" -f "$UP_F" -p "$UP_P" "$@" </dev/null
}

# up_run TAG ARGS...: up_ev ARGS with stdout in $OUT ($TEST_TMP/TAG.out),
# stderr in $ERR; sets RC and MS (wall milliseconds).
up_run() {
  local tag=$1 t0
  shift
  OUT=$TEST_TMP/$tag.out
  ERR=$TEST_TMP/$tag.err
  t0=$(date +%s%N)
  up_ev "$@" >"$OUT" 2>"$ERR"
  RC=$?
  MS=$((($(date +%s%N) - t0) / 1000000))
}

# up_diag: the last run's stdout and stderr (tails), for a failure message.
up_diag() {
  printf 'exit %s; stdout:\n' "${RC:-?}"
  tail -n 8 "$OUT" 2>/dev/null | sed 's/^/  | /'
  printf 'stderr:\n'
  tail -n 12 "$ERR" 2>/dev/null | sed 's/^/  | /'
}

# up_is LABEL ACTUAL EXPECTED: ok when equal; else fails with up_diag.
up_is() {
  if [ "$2" = "$3" ]; then ok "$1"; else fail "$1" "got '$2', want '$3'" "$(up_diag)"; fi
}

# up_has LABEL FILE ERE: ok when a line of FILE matches ERE.
up_has() {
  if grep -Eq -- "$3" "$2" 2>/dev/null; then ok "$1"
  else fail "$1" "no line matching /$3/ in $(basename "$2"):" "$(tail -n 12 "$2" 2>/dev/null | sed 's/^/  | /')"; fi
}

# up_jq FILE EXPR: prints EXPR, a python expression over j (the JSON in
# FILE) and s(NAME) (the entry of j["services"] named NAME): a string as
# is, None as "null", anything else as JSON.  Exit 1 with a message when
# FILE is no JSON or EXPR fails.
up_jq() {
  "$UP_PY" - "$1" "$2" <<'PYEOF'
import json, sys
try:
    j = json.load(open(sys.argv[1]))
except Exception as e:
    print("no JSON in %s: %s" % (sys.argv[1], e)); sys.exit(1)
def s(name):
    for x in j.get("services") or []:
        if x.get("name") == name:
            return x
    raise KeyError("no service %r" % name)
try:
    v = eval(sys.argv[2])
except Exception as e:
    print("%s: %r" % (sys.argv[2], e)); sys.exit(1)
print(v if isinstance(v, str) else "null" if v is None else json.dumps(v))
PYEOF
}

# up_check LABEL FILE EXPR: ok when EXPR (as up_jq) is true.
up_check() {
  local v
  if v=$(up_jq "$2" "$3") && [ "$v" = true ]; then ok "$1"
  else fail "$1" "false: $3 (got $v)" "JSON: $(head -c 1500 "$2" 2>/dev/null)"; fi
}

# up_status TAG: `status --json` into $OUT (RC: its exit status).
up_status() { up_run "$1" status --json; }

# up_alive PID: the process exists and is not a zombie.
up_alive() {
  local st
  case $1 in '' | *[!0-9]*) return 1 ;; esac
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
  [ -n "$st" ] && [ "$st" != Z ]
}

# up_wait_gone PID SECONDS: deadline loop until PID is gone or a zombie.
up_wait_gone() {
  local end=$(($(date +%s%N) + $2 * 1000000000))
  while up_alive "$1"; do
    [ "$(date +%s%N)" -ge "$end" ] && return 1
    sleep 0.02
  done
  return 0
}

# up_poll SECONDS CMD...: runs CMD every 50 ms until it succeeds; 1 when
# the deadline passes first.
up_poll() {
  local end=$(($(date +%s%N) + $1 * 1000000000))
  shift
  until "$@"; do
    [ "$(date +%s%N)" -ge "$end" ] && return 1
    sleep 0.05
  done
  return 0
}

# up_status_is CODE: `status --json` (tag poll) exits CODE; for up_poll.
up_status_is() { up_status poll; [ "$RC" -eq "$1" ]; }

# up_teardown: for the EXIT trap: `down` of every project used, SIGKILL to
# whatever still carries the marker, then `down` again (a stale instance's
# clean-up: cgroups, records).  Says what it had to do.
up_teardown() {
  local i pids
  for i in "${!UP_USED_P[@]}"; do
    TESTSVC_MARKER= timeout -s KILL 20 "$ENVRUN" --state-dir "$UP_STATE" -f "${UP_USED_F[$i]}" \
      -p "${UP_USED_P[$i]}" down </dev/null >/dev/null 2>&1
  done
  pids=$(marker_pids "$UP_M")
  [ -z "$pids" ] && return 0
  echo "# teardown: killing survivors $pids"
  for i in $pids; do kill -KILL "$i" 2>/dev/null; done
  sleep 0.2
  for i in "${!UP_USED_P[@]}"; do
    TESTSVC_MARKER= timeout -s KILL 20 "$ENVRUN" --state-dir "$UP_STATE" -f "${UP_USED_F[$i]}" \
      -p "${UP_USED_P[$i]}" down </dev/null >/dev/null 2>&1
  done
  return 0
}

# up_bail MESSAGE: a check the rest of the script depends on failed: fail,
# print the summary and exit (the EXIT trap cleans up).
up_bail() {
  fail "$1" "$(up_diag)" "(the remaining checks depend on this one: stopping here)"
  finish
  exit 1
}

# up_settled LABEL: like assert_no_leftovers, but gives the processes
# carrying the marker up to 5 s to be gone first (a supervisor may still be
# in its exit, e.g. a sanitizer's leak check, when the CLI has returned).
up_settled() {
  local end=$(($(date +%s%N) + 5000000000))
  while [ -n "$(marker_pids "$UP_M")" ] && [ "$(date +%s%N)" -lt "$end" ]; do sleep 0.05; done
  assert_no_leftovers "$UP_M" "$1"
}
