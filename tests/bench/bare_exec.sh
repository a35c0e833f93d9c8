#!/usr/bin/env bash
# The bare shell script that exec_overhead.sh holds `envrun exec -- true`
# against: it does the same starts and kills and nothing else.
#
#   tests/bench/bare_exec.sh N TESTSVC DIR
#
# Starts N fake services in the background ("TESTSVC --stdout ready --hold":
# each prints its ready line first thing, then waits for a signal), waits
# until every one has printed its line (all write into one fifo in DIR, read
# N lines: no polling), runs the test command (`true`, the binary, as envrun
# runs it), then sends each service SIGTERM and waits for all of them.  No
# logs, no checks, no report, no containment: what envrun does beyond this
# is its overhead.  Exit status: the test's.
set -euo pipefail
n=$1 svc=$2 dir=$3
fifo=$dir/bare.fifo.$$
mkfifo "$fifo"
# Opened read-write, so that neither side's open blocks; the services get it
# as their stdout.
exec 3<>"$fifo"
rm -f "$fifo"
pids=()
for ((i = 0; i < n; i++)); do
  "$svc" --stdout ready --hold >&3 3>&- &
  pids+=($!)
done
for ((i = 0; i < n; i++)); do
  read -r _ <&3
done
status=0
"$(type -P true)" || status=$?
kill -TERM "${pids[@]}"
wait "${pids[@]}" || true
exec 3<&-
exit "$status"
