#!/usr/bin/env bash
# Benchmark: envrun side by side with the tools users would pick instead, on
# the same fake service and the same test command, in one run.
#
# Scenario: 1 and 10 fake services (tests/helpers/testsvc), each recording
# CLOCK_MONOTONIC (ready.N) and then listening on a free loopback port at
# once (the issue's setting; --wait SECONDS makes them wait first, as a
# server that needs time to start: 0.05 was the earlier setting); the test
# command is "testsvc --record test" (records its start, exits 0).  For every runner, over N runs (interleaved):
#   ready -> test start  test record minus the last service's record, p50
#   total                wall time of the whole up -> test -> down cycle, p50
#   survivors            processes carrying this run's TESTSVC_MARKER still
#                        alive 1 s after the runner exited (then killed by pid)
# Runners: envrun (tcp checks), the floor (tests/bench/floor.c: readiness
# from one inotify event on the records), start-server-and-test (npm; http
# readiness via wait-on with its defaults, --http PORT 200, polled with GET
# (http-get://: its HEAD requests reject testsvc's reply); 10 services by
# chaining it, as it takes at most two; ~28 s a run, so at most 3 runs), pytest-xprocess (Debian package;
# tests/bench/peers/conftest.py), mirakuru (TCPExecutor, started one after the
# other; tests/bench/peers/mirakuru_run.py).
#
#   tests/bench/peers.sh [--smoke] [--record] [-n RUNS] [--wait S] [ENVRUN] [TESTSVC]
#
# Peers are installed into $ENVRUN_BENCH_CACHE (default ~/.cache/envrun-bench;
# nothing from npm or GitHub lands in the repository).  --smoke: 2 runs, no
# installing, peers that are not installed are skipped (and said so); without
# --smoke a peer that cannot be installed is an error.  --record rewrites the
# peers section of tests/bench/RESULTS.md and tests/bench/peers.svg.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/bench/lib.sh"
runs=20 record=0 smoke=0 wait=0
while [ $# -gt 0 ]; do
  case $1 in
    --smoke) smoke=1; runs=2; shift ;;
    --record) record=1; shift ;;
    -n) runs=$2; shift 2 ;;
    --wait) wait=$2; shift 2 ;;
    *) break ;;
  esac
done
bin=${1:-$top/build/release/envrun}
testsvc=${2:-$top/build/release/tests/testsvc}
cache=${ENVRUN_BENCH_CACHE:-$HOME/.cache/envrun-bench}
py=/usr/bin/python3
[ -x "$bin" ] || { echo "no envrun binary at $bin" >&2; exit 1; }

tmp=$(mktemp -d)
marker=envrun-bench-peers-$$-$RANDOM
# Every process a runner starts inherits the marker; a process that still
# carries it once its runner is gone is a leftover.
marked() { grep -lsaF "TESTSVC_MARKER=$marker" /proc/[0-9]*/environ 2>/dev/null |
  sed -n 's|^/proc/\([0-9]*\)/environ$|\1|p' || true; }
kill_marked() {
  local p
  for p in $(marked); do kill -KILL "$p" 2>/dev/null || true; done
}
cleanup() { kill_marked; rm -rf "$tmp"; }
trap cleanup EXIT

testsvc=$(testsvc_or_build "$testsvc" "$tmp")
cc -O2 -o "$tmp/floor" "$top/tests/bench/floor.c"

# --- the peers: install (full run) or find (smoke) -------------------------
sst=$cache/node_modules/.bin/start-server-and-test
mirakuru_path=$cache/mirakuru-src
have_sst() { [ -x "$sst" ]; }
have_xprocess() { "$py" -c 'import xprocess, pytest' 2>/dev/null; }
have_mirakuru() { PYTHONPATH=$mirakuru_path "$py" -c 'import mirakuru, psutil' 2>/dev/null; }
install_peers() {
  mkdir -p "$cache"
  have_sst || npm install --silent --prefix "$cache" start-server-and-test >&2
  have_xprocess || apt-get install -y -q python3-pytest-xprocess >&2
  "$py" -c 'import psutil' 2>/dev/null || apt-get install -y -q python3-psutil >&2
  if ! have_mirakuru; then
    rm -rf "$cache/mirakuru-git" "$mirakuru_path"
    # MIRAKURU_GIT: another clone source (a local mirror where GitHub is unreachable).
    git clone -q --depth 1 "${MIRAKURU_GIT:-https://github.com/ClearcodeHQ/mirakuru}" "$cache/mirakuru-git" >&2
    mkdir -p "$mirakuru_path"
    cp -r "$cache/mirakuru-git/mirakuru" "$mirakuru_path/"
  fi
}
[ "$smoke" = 1 ] || install_peers
runners=(envrun floor)
for peer in sst xprocess mirakuru; do
  if "have_$peer"; then
    runners+=("$peer")
  elif [ "$smoke" = 1 ]; then
    echo "peers: $peer is not installed, skipped (smoke mode)"
  else
    echo "peers: $peer could not be installed" >&2; exit 1
  fi
done
declare -A label=([envrun]=envrun [floor]="floor (ideal runner)" [sst]=start-server-and-test
  [xprocess]=pytest-xprocess [mirakuru]=mirakuru)

# Free loopback ports, one per service (testsvc binds with SO_REUSEADDR).
read -r -a ports < <("$py" -c '
import socket
ss = [socket.socket() for _ in range(10)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')

svc_args() { # INDEX READY-ACTION... -> the service's argv, one word a line
  printf '%s\n' "$testsvc" --sleep "$wait" --record "$tmp/ready.$1"; shift; printf '%s\n' "$@" --hold; }

# --- one run of each runner: RUNNER NSERVICES ------------------------------
# prep_RUNNER N builds the runner's configuration or command line before the
# clock starts; run_RUNNER N is what is timed.
prep_envrun() {
  local n=$1 i q
  { echo "services:"
    for ((i = 0; i < n; i++)); do
      q=$(svc_args "$i" --tcp "${ports[i]}" | sed 's/.*/"&"/' | paste -sd, -)
      printf '  s%d:\n    command: [%s]\n    ready: {tcp: %s}\n    stop_timeout: 5s\n' "$i" "$q" "${ports[i]}"
    done; } >"$tmp/environment.yml"
}
run_envrun() {
  env TESTSVC_MARKER="$marker" "$bin" -q exec -f "$tmp/environment.yml" -- "$testsvc" --record "$tmp/test"
}
floor_args=()
prep_floor() {
  local n=$1 i files=() svcs=()
  for ((i = 0; i < n; i++)); do
    files+=("$tmp/ready.$i")
    mapfile -t a < <(svc_args "$i" --tcp "${ports[i]}")
    svcs+=(-- "${a[@]}")
  done
  floor_args=("${files[@]}" "${svcs[@]}" --- "$testsvc" --record "$tmp/test")
}
run_floor() {
  env TESTSVC_MARKER="$marker" "$tmp/floor" "${floor_args[@]}"
}
sst_cmd=
prep_sst() { # start-server-and-test takes one or two servers: chain it for more
  local n=$1 i cmd
  cmd=$(printf '%q ' "$testsvc" --record "$tmp/test")
  for ((i = n - 1; i >= 0; i--)); do
    mapfile -t a < <(svc_args "$i" --http "${ports[i]}" 200)
    cmd=$(printf '%q ' "$sst" "$(printf '%q ' "${a[@]}")" "http-get://127.0.0.1:${ports[i]}" "$cmd")
  done
  sst_cmd=$cmd
}
run_sst() {
  env TESTSVC_MARKER="$marker" sh -c "$sst_cmd"
}
prep_xprocess() { :; }
prep_mirakuru() { :; }
run_xprocess() {
  local n=$1
  env TESTSVC_MARKER="$marker" PEERS_TESTSVC="$testsvc" PEERS_DIR="$tmp" PEERS_TEST="$tmp/test" \
    PEERS_PORTS="${ports[*]:0:n}" PYTHONDONTWRITEBYTECODE=1 \
    "$py" -m pytest -q -p no:randomly -o cache_dir="$tmp/pytest-cache" \
    --rootdir="$top/tests/bench/peers" "$top/tests/bench/peers/test_xprocess.py"
}
run_mirakuru() {
  local n=$1
  env TESTSVC_MARKER="$marker" PYTHONPATH="$mirakuru_path" PYTHONDONTWRITEBYTECODE=1 \
    "$py" "$top/tests/bench/peers/mirakuru_run.py" "$testsvc" "$tmp" "$tmp/test" "${ports[@]:0:n}"
}

# measure RUNNER N: appends latency and wall time (ns) and the survivor count
declare -A lat wall surv
measure() {
  local r=$1 n=$2 t0 t1 ready=0 i v left deadline
  rm -rf "$tmp"/ready.* "$tmp/test" "$tmp/pytest-cache"
  "prep_$r" "$n"
  t0=$(date +%s%N)
  if ! "run_$r" "$n" >"$tmp/out" 2>&1; then
    echo "peers: $r with $n services failed:" >&2; tail -n 20 "$tmp/out" >&2; return 1
  fi
  t1=$(date +%s%N)
  for ((i = 0; i < n; i++)); do
    v=$(cat "$tmp/ready.$i"); [ "$v" -gt "$ready" ] && ready=$v
  done
  lat[$r.$n]+=" $(( $(cat "$tmp/test") - ready ))"
  wall[$r.$n]+=" $(( t1 - t0 ))"
  # Leftovers: whatever still carries the marker 1 s after the runner is gone.
  deadline=$(( $(date +%s%N) + 1000000000 ))
  left=$(marked | wc -l)
  while [ "$left" -gt 0 ] && [ "$(date +%s%N)" -lt "$deadline" ]; do
    sleep 0.01; left=$(marked | wc -l)
  done
  surv[$r.$n]=$(( ${surv[$r.$n]:-0} + left ))
  [ "$left" = 0 ] || kill_marked
}

# p50 min max (ms) of ns values
stats() { printf '%s\n' $1 | sort -n | awk '{a[NR]=$1} END {
  printf "%.1f %.1f %.1f\n", a[int((NR+1)/2)]/1e6, a[1]/1e6, a[NR]/1e6 }'; }

for ((k = 1; k <= runs; k++)); do
  for n in 1 10; do
    for r in "${runners[@]}"; do
      # The start-server-and-test chain of 10 takes ~28 s a run: 3 runs of it.
      [ "$r.$n" = sst.10 ] && [ "$k" -gt 3 ] && continue
      measure "$r" "$n"
    done
  done
done

declare -A p50 lp50 mn mx
for r in "${runners[@]}"; do
  for n in 1 10; do
    read -r p50[$r.$n] mn[$r.$n] mx[$r.$n] < <(stats "${wall[$r.$n]}")
    read -r lp50[$r.$n] _ _ < <(stats "${lat[$r.$n]}")
  done
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1fx", (b > 0 ? a / b : 0) }'; }
rows="" tsv=""
printf '%-24s %14s %12s %8s %14s %12s %8s %s\n' runner "1svc ready->t" "1svc total" "x envrun" \
  "10svc ready->t" "10svc total" "x envrun" survivors
for r in "${runners[@]}"; do
  s=$(( ${surv[$r.1]} + ${surv[$r.10]} ))
  x1=$(ratio "${p50[$r.1]}" "${p50[envrun.1]}") x10=$(ratio "${p50[$r.10]}" "${p50[envrun.10]}")
  printf '%-24s %11s ms %9s ms %8s %11s ms %9s ms %8s %s\n' "${label[$r]}" "${lp50[$r.1]}" "${p50[$r.1]}" "$x1" \
    "${lp50[$r.10]}" "${p50[$r.10]}" "$x10" "$s"
  rows+="| ${label[$r]} | ${lp50[$r.1]} | ${p50[$r.1]} (${mn[$r.1]}–${mx[$r.1]}) | $x1 | ${lp50[$r.10]} | ${p50[$r.10]} (${mn[$r.10]}–${mx[$r.10]}) | $x10 | $s |"$'\n'
  tsv+="${label[$r]}"$'\t'"${p50[$r.1]}"$'\t'"${p50[$r.10]}"$'\n'
done
skipped=$(printf '%s\n' sst xprocess mirakuru | while read -r p; do
  case " ${runners[*]} " in *" $p "*) ;; *) printf '%s ' "${label[$p]}" ;; esac; done)
[ -z "$skipped" ] || echo "skipped (not installed): $skipped"

if [ "$record" = 1 ]; then
  f=$top/tests/bench/RESULTS.md
  commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)
  sstv=$(sed -n 's/^ *"version": "\(.*\)".*/\1/p' "$cache/node_modules/start-server-and-test/package.json" 2>/dev/null | head -n 1)
  xpv=$("$py" -c 'import importlib.metadata as m; print(m.version("pytest-xprocess"))' 2>/dev/null || echo "?")
  mkv=$(PYTHONPATH=$mirakuru_path "$py" -c 'import mirakuru; print(mirakuru.__version__)' 2>/dev/null || echo "?")
  section=$(cat <<MD
<!-- peers:begin -->
### envrun against the tools users would pick instead

Measured $(date -u +%Y-%m-%d) on $(nproc) cores ($(uname -r)), commit $commit, release build, $runs runs each (interleaved).
Same fake service (tests/helpers/testsvc: $(if [ "$wait" = 0 ]; then echo "records CLOCK_MONOTONIC, then listens on a loopback
port at once"; else echo "waits ${wait} s, records CLOCK_MONOTONIC, then listens on a loopback
port"; fi)) and same test command (\`testsvc --record FILE\`) for every runner. ready -> test: test start minus the
last service's ready moment, p50. total: the whole up -> test -> down cycle, p50 (min–max), in ms.
Readiness: envrun tcp checks; floor one inotify event (tests/bench/floor.c); start-server-and-test ${sstv:-?}
HTTP via wait-on with its defaults (chained for 10 services: it takes at most two; at most 3 runs of that); pytest-xprocess $xpv output
pattern + port check; mirakuru $mkv TCPExecutor, services started one after the other. survivors: processes
of the run still alive 1 s after the runner exited, summed over all runs. Chart: peers.svg.

| runner | 1 svc ready -> test | 1 svc total | vs envrun | 10 svc ready -> test | 10 svc total | vs envrun | survivors |
|---|---|---|---|---|---|---|---|
${rows%$'\n'}
<!-- peers:end -->
MD
)
  "$py" - "$f" "$section" <<'PY'
import re, sys
path, section = sys.argv[1], sys.argv[2]
text = open(path).read()
if "<!-- peers:begin -->" in text:
    text = re.sub(r"<!-- peers:begin -->.*?<!-- peers:end -->", lambda m: section, text, flags=re.S)
else:
    text = text.rstrip("\n") + "\n\n" + section + "\n"
open(path, "w").write(text)
PY
  printf '%s' "$tsv" | "$py" "$top/tests/bench/chart.py" "$top/tests/bench/peers.svg" \
    "whole up -> test -> down cycle, p50, $runs runs, commit $commit (log scale)"
  echo "recorded in $f and $top/tests/bench/peers.svg"
fi
