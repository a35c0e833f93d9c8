#!/usr/bin/env bash
# Benchmark: a service printing a lot (1 GiB of 100-byte lines): envrun's
# throughput into the service's log (timestamped, bounded by log.max_size
# 64M) against `cat` copying the same bytes into a file on the same disk,
# and envrun's peak RSS meanwhile (goals: within 3x of cat, under 32 MB).
#   tests/bench/output.sh [--smoke] [--record] [ENVRUN] [TESTSVC]
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/bench/lib.sh"
size=1G record=0
while [ $# -gt 0 ]; do
  case $1 in
    --smoke) size=16M; shift ;;
    --record) record=1; shift ;;
    *) break ;;
  esac
done
bin=${1:-$top/build/release/envrun}
testsvc=${2:-$top/build/release/tests/testsvc}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
testsvc=$(testsvc_or_build "$testsvc" "$tmp")
cat >"$tmp/environment.yml" <<YML
services:
  spammer:
    command: ["$testsvc", --spam, "$size", --exit, "0"]
    ready: {exit: 0}
    timeout: 10m
YML
ms() { echo $(( $(date +%s%N) / 1000000 )); }
t0=$(ms)
hwm=$("$bin" -q --state-dir "$tmp/state" exec -f "$tmp/environment.yml" -- \
      sh -c 'sed -n "s/^VmHWM:[[:space:]]*\([0-9]*\).*/\1/p" /proc/$PPID/status' 2>/dev/null)
t1=$(ms)
"$testsvc" --spam "$size" --exit 0 | cat >"$tmp/cat.out"
t2=$(ms)
bytes=$(stat -c %s "$tmp/cat.out")
e=$((t1 - t0)); c=$((t2 - t1))
mbs() { awk -v b="$bytes" -v ms="$1" 'BEGIN { printf "%.0f", b / 1048576 / (ms / 1000) }'; }
echo "output of $size: envrun $e ms ($(mbs "$e") MB/s), cat $c ms ($(mbs "$c") MB/s), ratio $(awk -v a="$e" -v b="$c" 'BEGIN{printf "%.2f", a/b}'); envrun peak RSS $hwm KiB"
if [ "$record" = 1 ]; then
  commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)
  section=$(cat <<MD
<!-- output:begin -->
### a service printing $size (goals: within 3x of cat, peak RSS < 32 MB)

Measured $(date -u +%Y-%m-%d), commit $commit, release build: 100-byte lines, each logged with its timestamp into a log bounded at 64M.

| | time | throughput |
|---|---|---|
| envrun exec (log, regex-free exit check) | $e ms | $(mbs "$e") MB/s |
| the same bytes through cat into a file | $c ms | $(mbs "$c") MB/s |

Ratio $(awk -v a="$e" -v b="$c" 'BEGIN{printf "%.2f", a/b}'); envrun's peak RSS meanwhile: $hwm KiB.
<!-- output:end -->
MD
)
  record_section output "$section"
fi
