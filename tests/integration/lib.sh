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
