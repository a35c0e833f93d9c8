#!/usr/bin/env bash
# Benchmark: the system calls envrun's own process makes (strace -c, not
# its children) for `exec -- true` with 1, 10 and 50 services ready on their
# first line (output checks), and what each service beyond the first costs.
# Medians of RUNS runs (the count varies by a few with timing: epoll_wait
# and reads that find nothing yet).  Release build.  With OLD: both
# binaries, side by side.
#   tests/bench/syscalls.sh [--smoke] [--record] [--old OLD] [ENVRUN] [TESTSVC]
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/bench/lib.sh"
record=0 runs=5 old=
while [ $# -gt 0 ]; do
  case $1 in
    --smoke) runs=1; shift ;;
    --record) record=1; shift ;;
    --old) old=$2; shift 2 ;;
    *) break ;;
  esac
done
command -v strace >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace >/dev/null; }
bench_begin syscalls "${1:-$top/build/release/envrun}" "$(realpath -m "${2:-$top/build/release/tests/testsvc}")"

gen() {
  local n=$1 i
  echo "services:"
  for ((i = 0; i < n; i++)); do
    echo "  s$i:"
    echo "    command: [\"$testsvc\", --stdout, ready, --hold]"
    echo "    ready: {output: \"^ready\$\"}"
  done
}
sizes=(1 10 50)
for n in "${sizes[@]}"; do gen "$n" >"$tmp/e$n.yml"; done

# count BIN N: the median total of RUNS runs; the last run's table in $tmp/table
count() {
  local bin=$1 n=$2 i totals=()
  for ((i = 0; i < runs; i++)); do
    TESTSVC_MARKER=$marker strace -c -o "$tmp/table" "$bin" -q --state-dir "$tmp/state" \
      exec -f "$tmp/e$n.yml" -- true >/dev/null 2>&1 || { echo "exec with $bin, $n services failed" >&2; exit 1; }
    [ -z "$(marked_pids "$marker")" ] || { echo "processes left behind by $bin" >&2; exit 1; }
    # columns: % time, seconds, usecs/call, calls, [errors,] syscall
    totals+=("$(awk '$NF == "total" {print $4}' "$tmp/table")")
  done
  printf '%s\n' "${totals[@]}" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
}

declare -A new_total old_total
for n in "${sizes[@]}"; do
  new_total[$n]=$(count "$bin" "$n")
  [ "$n" = 10 ] && cp "$tmp/table" "$tmp/table10"
  [ -n "$old" ] && old_total[$n]=$(count "$old" "$n")
  echo "$n services: ${new_total[$n]} system calls${old:+ (old: ${old_total[$n]})}"
done
per() { echo $(( ($2 - $1) / 49 )); }
echo "per service beyond the first (1 -> 50): $(per "${new_total[1]}" "${new_total[50]}")"

if [ "$record" = 1 ]; then
  commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)
  rows=
  for n in "${sizes[@]}"; do
    rows+="| $n | ${new_total[$n]} |${old:+ ${old_total[$n]} |}"$'\n'
  done
  rows+="| per service beyond the first (1 -> 50) | $(per "${new_total[1]}" "${new_total[50]}") |${old:+ $(per "${old_total[1]}" "${old_total[50]}") |}"
  top10=$(awk 'NR > 2 && $NF != "total" && $1 !~ /^-/ {print $4, $NF}' "$tmp/table10" |
          sort -rn | head -10 | awk '{printf "%s %s, ", $2, $1}' | sed 's/, $//')
  section=$(cat <<MD
<!-- syscalls:begin -->
### system calls of envrun's own process (tests/bench/syscalls.sh)

Measured $(date -u +%Y-%m-%d), commit $commit, release build, cgroup2 containment, median of $runs runs
of \`strace -c\` (envrun's process only, not the services): \`exec -- true\` with N services ready on
their first line.${old:+ Old: $old.}

| services | system calls |${old:+ old |}
|---|---|${old:+---|}
$rows

The ten most frequent with 10 services: $top10.
<!-- syscalls:end -->
MD
)
  record_section syscalls "$section"
fi
