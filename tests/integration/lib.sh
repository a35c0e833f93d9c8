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
