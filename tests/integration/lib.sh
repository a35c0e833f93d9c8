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
