#!/usr/bin/env bash
# Runs an integration test script as the unprivileged user envrun-test
# (made by tests/run), the way most people run envrun: no cgroup to write,
# so reaper containment.  The build tree may sit below a private directory
# (a CI clone in a 0700 temporary directory): the binaries and the test
# scripts are copied where that user can read them first.  Run as a normal
# user already, it runs the script as is.
#   tests/integration/as_user.sh tests/integration/t_exec.sh
# Environment: as for every integration test (ENVRUN, ENVRUN_RELEASE,
# ENVRUN_SRC, ENVRUN_BUILD); ENVRUN_FORCE_REAPER and ENVRUN_NO_PIDFD pass on.
set -eu
script=$1
user=envrun-test
if [ "$(id -u)" -ne 0 ]; then
  exec bash "$script"
fi
if ! id "$user" >/dev/null 2>&1; then
  echo "FAIL setup: no user $user (tests/run creates it: useradd --system $user)"
  echo "0 passed, 1 failed"
  exit 1
fi
: "${ENVRUN_SRC:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${ENVRUN_BUILD:=$(dirname "$ENVRUN")}"
: "${ENVRUN_RELEASE:=$ENVRUN}"
dir=$(mktemp -d "${TMPDIR:-/tmp}/envrun-asuser.XXXXXX")
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/build/tests" "$dir/src" "$dir/release"
cp "$ENVRUN" "$dir/build/envrun"
cp "$ENVRUN_RELEASE" "$dir/release/envrun"
for h in testsvc procinfo; do
  [ -e "$ENVRUN_BUILD/tests/$h" ] && cp "$ENVRUN_BUILD/tests/$h" "$dir/build/tests/$h"
done
# The tests without the fuzz corpora (megabytes no script here reads, and
# rewritten while a fuzzer runs).
mkdir -p "$dir/src/tests"
for d in "$ENVRUN_SRC"/tests/*; do
  [ "$(basename "$d")" = fuzz ] || cp -r "$d" "$dir/src/tests/"
done
cp -r "$ENVRUN_SRC/examples" "$ENVRUN_SRC/schema" "$dir/src/"
# t_quickstart.sh runs the README's quick start.
cp "$ENVRUN_SRC/README.md" "$dir/src/"
chmod -R a+rX "$dir"
chmod 0755 "$dir"
pass=()
for v in ENVRUN_FORCE_REAPER ENVRUN_NO_PIDFD ASAN_OPTIONS UBSAN_OPTIONS ENVRUN_STRESS_SLOW STRESS_CASES; do
  [ -n "${!v:-}" ] && pass+=("$v=${!v}")
done
echo "# as $user (uid $(id -u "$user")): $(basename "$script")"
# Not exec: the trap removes the copy afterwards.
set +e
runuser -u "$user" -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$dir" LANG=C.UTF-8 \
  ENVRUN="$dir/build/envrun" ENVRUN_RELEASE="$dir/release/envrun" ENVRUN_SRC="$dir/src" \
  ENVRUN_BUILD="$dir/build" "${pass[@]}" bash "$dir/src/$(realpath --relative-to="$ENVRUN_SRC" "$script")"
