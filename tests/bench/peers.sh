#!/usr/bin/env bash
# Benchmark: envrun side by side with the tools users would pick instead, on
# the same fake service and the same test command, in one run.
#
# Scenarios: N fake services (tests/helpers/testsvc) for each N of
# --services (default "1 10"; issue 17 asks for "1 10 50 200" too), each
# recording CLOCK_MONOTONIC (ready.N) and then listening on a free loopback
# port at once (the issue's setting; --wait SECONDS makes every runner's
# services wait first, as a server that needs time to start: 0.05 was the
# earlier setting); the test command is "testsvc --record test" (records its
# start, exits 0).  For every runner and N, over its runs (interleaved):
#   ready -> test start  test record minus the last service's record, p50
#   total                wall time of the whole up -> test -> down cycle, p50
#   survivors            processes carrying this run's TESTSVC_MARKER still
#                        alive 1 s after the runner exited (then killed by pid)
# Runners (there is no bare shell script runner: the floor is the ideal one):
# envrun (tcp checks), the floor (tests/bench/floor.c: readiness from one
# inotify event on the records), start-server-and-test (npm; http readiness
# via wait-on with its defaults, --http PORT 200, polled with GET
# (http-get://: its HEAD requests reject testsvc's reply); it takes at most
# two servers, so N services are a chain of N nested invocations, each a node
# process (~77 MB RSS each, 2.1.5 on node 20): chained up to --sst-chain
# (default 10) services only, above that it is not run and the table says
# why, with its measured time), pytest-xprocess (Debian package; tests/bench/peers/conftest.py),
# mirakuru (TCPExecutor, started one after the other;
# tests/bench/peers/mirakuru_run.py).
# Run counts: RUNS (-n) for envrun and the floor at every N and for the peers
# at 1 service (xprocess and mirakuru at 10 too); --slow-runs K (default 3)
# for start-server-and-test above 1 service and for xprocess and mirakuru
# above 10.  Above 10 services a peer is not run when its time a run,
# extrapolated linearly from its run at the next smaller N, exceeds
# --max-run S (default 60), and stops after a run that took longer than S;
# the table records the run count of every cell and why a cell is empty.
# Full issue-17 table (about 11 minutes on 2 cores):
#   tests/bench/peers.sh --services "1 10 50 200" --record build/release/envrun
#
#   tests/bench/peers.sh [--smoke] [--record] [-n RUNS] [--wait S]
#       [--services "N..."] [--slow-runs K] [--max-run S] [--sst-chain N]
#       [ENVRUN] [TESTSVC]
#
# Peers are installed into $ENVRUN_BENCH_CACHE (default ~/.cache/envrun-bench;
# nothing from npm or GitHub lands in the repository).  --smoke: 2 runs, no
# installing, peers that are not installed are skipped (and said so); without
# --smoke a peer that cannot be installed is an error.  --record rewrites the
# peers section of tests/bench/RESULTS.md (dated, with the commit, whether
# the tree had uncommitted changes, and the load average) and
# tests/bench/peers.svg (1 and 10 services; left alone without both).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/bench/lib.sh"
runs=20 record=0 smoke=0 wait=0 sizes="1 10" slow_runs=3 max_run=60
sst_max=10 # --sst-chain: the longest start-server-and-test chain run
cmdline=; [ $# = 0 ] || cmdline=$(printf ' %q' "$@")
while [ $# -gt 0 ]; do
  case $1 in
    --smoke) smoke=1; runs=2; shift ;;
    --record) record=1; shift ;;
    -n) runs=$2; shift 2 ;;
    --wait) wait=$2; shift 2 ;;
    --services) sizes=$2; shift 2 ;;
    --slow-runs) slow_runs=$2; shift 2 ;;
    --max-run) max_run=$2; shift 2 ;;
    --sst-chain) sst_max=$2; shift 2 ;;
    *) break ;;
  esac
done
# the sizes, ascending without repeats (a size's estimate uses the smaller ones)
sizes=$(printf '%s\n' $sizes | sort -nu | paste -sd' ' -)
for n in $sizes; do
  case $n in ''|*[!0-9]*|0) echo "peers: --services: '$n' is not a positive number" >&2; exit 2 ;; esac
  [ "$n" -le 1000 ] || { echo "peers: --services: at most 1000 services (floor.c's limit)" >&2; exit 2; }
done
[ -n "$sizes" ] || { echo "peers: --services: no size given" >&2; exit 2; }
for v in "$runs" "$slow_runs" "$max_run" "$sst_max"; do
  case $v in ''|*[!0-9]*|0) echo "peers: -n, --slow-runs, --max-run and --sst-chain take a positive whole number, not '$v'" >&2; exit 2 ;; esac
done
maxn=${sizes##* }
t_start=$(date +%s)
load_begin=$(cut -d' ' -f1-3 /proc/loadavg)
bin=${1:-$top/build/release/envrun}
# absolute: envrun reads a relative command as relative to the environment file
testsvc=$(realpath -m "${2:-$top/build/release/tests/testsvc}")
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
# until none is left: a runner killed mid-start may have forked in between
kill_all_marked() {
  local i
  for ((i = 0; i < 50; i++)); do
    kill_marked
    [ -n "$(marked)" ] || return 0
    sleep 0.1
  done
}
cleanup() { kill_all_marked; rm -rf "$tmp"; }
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

# Free loopback ports, one per service (testsvc binds with SO_REUSEADDR), as
# many as the largest N.  Taken below the ephemeral range
# (ip_local_port_range): they stay in use for the whole benchmark, and there
# no outgoing connection and no bind(0) (which other tests on the machine use
# to find free ports) can pick one in between.  Each is checked by binding
# it (without SO_REUSEADDR: not even in TIME_WAIT), all held at once so that
# they are distinct; a start at random keeps two benchmarks apart.
read -r -a ports < <("$py" - "$maxn" <<'PY'
import random, socket, sys
n = int(sys.argv[1])
lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
first = 10000 if lo - 10000 >= 4 * n else 1024
cands = list(range(first, lo))
start = random.randrange(len(cands)) if cands else 0
cands = cands[start:] + cands[:start]
held = []
for p in cands:
    if len(held) == n:
        break
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        held.append(s)
    except OSError:
        s.close()
while len(held) < n:  # the range below is too small: ephemeral ones
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    held.append(s)
print(" ".join(str(s.getsockname()[1]) for s in held))
PY
)
[ "${#ports[@]}" -ge "$maxn" ] || { echo "peers: could not find $maxn free ports" >&2; exit 1; }

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
  env TESTSVC_MARKER="$marker" PEERS_TESTSVC="$testsvc" PEERS_DIR="$tmp" PEERS_TEST="$tmp/test" PEERS_WAIT="$wait" \
    PEERS_PORTS="${ports[*]:0:n}" PYTHONDONTWRITEBYTECODE=1 \
    "$py" -m pytest -q -p no:randomly -o cache_dir="$tmp/pytest-cache" \
    --rootdir="$top/tests/bench/peers" "$top/tests/bench/peers/test_xprocess.py"
}
run_mirakuru() {
  local n=$1
  env TESTSVC_MARKER="$marker" PYTHONPATH="$mirakuru_path" PYTHONDONTWRITEBYTECODE=1 PEERS_WAIT="$wait" \
    "$py" "$top/tests/bench/peers/mirakuru_run.py" "$testsvc" "$tmp" "$tmp/test" "${ports[@]:0:n}"
}

# measure RUNNER N: appends latency and wall time (ns) and the survivor count
declare -A lat wall surv
# A peer's run above 10 services is given 3 x --max-run; then it is killed
# with all its services, and measure sets gave_up instead.
gave_up=
measure() {
  local r=$1 n=$2 t0 t1 ready=0 i v left deadline pid sp ended rc=0
  gave_up=
  rm -rf "$tmp"/ready.* "$tmp/test" "$tmp/pytest-cache"
  "prep_$r" "$n"
  if [ "$n" -le 10 ] || [ "$r" = envrun ] || [ "$r" = floor ]; then
    t0=$(date +%s%N)
    "run_$r" "$n" >"$tmp/out" 2>&1 || rc=$?
    t1=$(date +%s%N)
  else
    sleep $(( 3 * max_run )) & sp=$!
    t0=$(date +%s%N)
    "run_$r" "$n" >"$tmp/out" 2>&1 & pid=$!
    wait -n -p ended "$pid" "$sp" || rc=$?
    t1=$(date +%s%N)
    if [ "$ended" = "$sp" ]; then
      kill_all_marked; wait "$pid" 2>/dev/null || true
      gave_up=$(( 3 * max_run ))
      return 0
    fi
    kill "$sp" 2>/dev/null || true; wait "$sp" 2>/dev/null || true
  fi
  if [ "$rc" != 0 ]; then
    echo "peers: $r with $n services failed (exit status $rc):" >&2; tail -n 20 "$tmp/out" >&2; return 1
  fi
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
  [ "$left" = 0 ] || kill_all_marked
}

# p50 min max (ms) of ns values
stats() { printf '%s\n' $1 | sort -n | awk '{a[NR]=$1} END {
  printf "%.1f %.1f %.1f\n", a[int((NR+1)/2)]/1e6, a[1]/1e6, a[NR]/1e6 }'; }

# cap RUNNER N: how many runs the cell gets
cap() {
  local c=$runs
  case $1 in
    sst) [ "$2" -le 1 ] || c=$slow_runs ;;
    xprocess|mirakuru) [ "$2" -le 10 ] || c=$slow_runs ;;
  esac
  [ "$c" -le "$runs" ] || c=$runs
  echo "$c"
}
# s_of NS: nanoseconds as seconds, one decimal
s_of() { awk -v v="$1" 'BEGIN { printf "%.1f", v / 1e9 }'; }
# why_not RUNNER N: empty when the cell is to be run, else why not (decided
# before its first run, from what the smaller N measured so far)
why_not() {
  local r=$1 n=$2 m prev='' t
  case $r in envrun|floor) return 0 ;; esac
  if [ "$r" = sst ] && [ "$n" -gt "$sst_max" ]; then
    # the reason is written out at the end, with the final figures
    echo chain; return 0
  fi
  [ "$n" -gt 10 ] || return 0
  for m in $sizes; do
    if [ "$m" -lt "$n" ] && [ -n "${wall[$r.$m]:-}" ]; then prev=$m; fi
  done
  [ -n "$prev" ] || return 0 # nothing to go by: try it (a run over the limit stops it)
  t=$(printf '%s\n' ${wall[$r.$prev]} | sort -n | head -n 1)
  if [ $(( t / prev * n )) -gt $(( max_run * 1000000000 )) ]; then
    echo "a run at $prev services took $(s_of "$t") s, so ~$(s_of $(( t / prev * n ))) s a run at $n (linear) is over the --max-run limit of $max_run s"
  fi
}

declare -A notrun note
for ((k = 1; k <= runs; k++)); do
  echo "peers: round $k/$runs ($(( $(date +%s) - t_start )) s so far)" >&2
  for n in $sizes; do
    for r in "${runners[@]}"; do
      [ "$k" -le "$(cap "$r" "$n")" ] || continue
      [ -z "${notrun[$r.$n]:-}" ] || continue
      if [ "$k" = 1 ]; then
        notrun[$r.$n]=$(why_not "$r" "$n")
        [ -z "${notrun[$r.$n]}" ] || continue
      fi
      big=0; [ "$n" -le 10 ] || [ "$r" = envrun ] || [ "$r" = floor ] || big=1 # a slow peer cell
      [ "$big" = 0 ] || echo "peers: ${label[$r]} at $n services, run $k ..." >&2
      measure "$r" "$n"
      if [ -n "$gave_up" ]; then
        echo "peers: ... killed after $gave_up s" >&2
        note[$r.$n]="gave up on run $k: killed (with its services) after $gave_up s, 3 x the --max-run limit of $max_run s"
        notrun[$r.$n]=stopped
        continue
      fi
      w=${wall[$r.$n]##* }
      [ "$big" = 0 ] || echo "peers: ... $(s_of "$w") s" >&2
      if [ "$big" = 1 ] && [ "$w" -gt $(( max_run * 1000000000 )) ] && [ "$k" -lt "$(cap "$r" "$n")" ]; then
        note[$r.$n]="stopped after $k run(s): one took $(s_of "$w") s, over the --max-run limit of $max_run s"
        notrun[$r.$n]=stopped
      fi
    done
  done
done
t_total=$(( $(date +%s) - t_start ))
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# the reasons for the start-server-and-test cells not run, with its figures
sst_reason() {
  local n=$1 m prev='' t
  for m in $sizes; do
    if [ "$m" -le "$sst_max" ] && [ -n "${wall[sst.$m]:-}" ]; then prev=$m; fi
  done
  printf 'it takes at most two servers per invocation, so %d services would be a chain of %d nested invocations (node processes, each holding its server); chained up to %d services only (--sst-chain)' "$n" "$n" "$sst_max"
  if [ -n "$prev" ] && [ "$prev" -gt 1 ]; then
    read -r t _ _ < <(stats "${wall[sst.$prev]}")
    awk -v t="$t" -v p="$prev" -v n="$n" -v lim="$max_run" 'BEGIN {
      e = t / p * n / 1000
      printf "; %d took %.1f s a run here (p50), so ~%.0f s a run at %d (linear)", p, t / 1000, e, n
      if (e > lim) printf ", over the --max-run limit of %d s", lim }'
  fi
}
for n in $sizes; do
  [ "${notrun[sst.$n]:-}" != chain ] || notrun[sst.$n]=$(sst_reason "$n")
done

declare -A p50 lp50 mn mx nruns
for r in "${runners[@]}"; do
  for n in $sizes; do
    [ -n "${wall[$r.$n]:-}" ] || continue
    read -r p50[$r.$n] mn[$r.$n] mx[$r.$n] < <(stats "${wall[$r.$n]}")
    read -r lp50[$r.$n] _ _ < <(stats "${lat[$r.$n]}")
    nruns[$r.$n]=$(printf '%s\n' ${wall[$r.$n]} | wc -l)
  done
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1fx", (b > 0 ? a / b : 0) }'; }
rows="" tsv="" reasons="" survivors=0
printf '%-8s %-22s %5s %14s %32s %8s %s\n' services runner runs "ready->test" "total p50 (min-max)" "x envrun" survivors
for n in $sizes; do
  for r in "${runners[@]}"; do
    if [ -z "${wall[$r.$n]:-}" ]; then
      why=${note[$r.$n]:-${notrun[$r.$n]:-not run}}
      printf '%-8s %-22s %5s  not run: %s\n' "$n" "${label[$r]}" 0 "$why"
      rows+="| $n | ${label[$r]} | 0 | – | not run (see below) | – | – |"$'\n'
      reasons+="- ${label[$r]} at $n services, not run: $why."$'\n'
      continue
    fi
    s=${surv[$r.$n]}; survivors=$(( survivors + s ))
    x=$(ratio "${p50[$r.$n]}" "${p50[envrun.$n]:-0}")
    printf '%-8s %-22s %5s %11s ms %32s %8s %s\n' "$n" "${label[$r]}" "${nruns[$r.$n]}" "${lp50[$r.$n]}" \
      "${p50[$r.$n]} ms (${mn[$r.$n]}-${mx[$r.$n]})" "$x" "$s"
    rows+="| $n | ${label[$r]} | ${nruns[$r.$n]} | ${lp50[$r.$n]} | ${p50[$r.$n]} (${mn[$r.$n]}–${mx[$r.$n]}) | $x | $s |"$'\n'
    if [ -n "${note[$r.$n]:-}" ]; then
      echo "         ${label[$r]} at $n: ${note[$r.$n]}"
      reasons+="- ${label[$r]} at $n services: ${note[$r.$n]}."$'\n'
    fi
  done
done
for r in "${runners[@]}"; do
  [ -n "${p50[$r.1]:-}" ] && [ -n "${p50[$r.10]:-}" ] && tsv+="${label[$r]}"$'\t'"${p50[$r.1]}"$'\t'"${p50[$r.10]}"$'\n'
done
skipped=$(printf '%s\n' sst xprocess mirakuru | while read -r p; do
  case " ${runners[*]} " in *" $p "*) ;; *) printf '%s ' "${label[$p]}" ;; esac; done)
[ -z "$skipped" ] || echo "skipped (not installed): $skipped"
echo "took $t_total s; load average (1/5/15 min) $load_begin at the start, $load_end at the end, $(nproc) cores"
[ "$survivors" = 0 ] || echo "peers: $survivors process(es) left behind, see the survivors column" >&2

if [ "$record" = 1 ]; then
  commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)
  if [ -n "$(git -C "$top" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    commit="$commit (with uncommitted changes)"
  fi
  sstv=$(sed -n 's/^ *"version": "\(.*\)".*/\1/p' "$cache/node_modules/start-server-and-test/package.json" 2>/dev/null | head -n 1)
  xpv=$("$py" -c 'import importlib.metadata as m; print(m.version("pytest-xprocess"))' 2>/dev/null || echo "?")
  mkv=$(PYTHONPATH=$mirakuru_path "$py" -c 'import mirakuru; print(mirakuru.__version__)' 2>/dev/null || echo "?")
  nl=$'\n' reasons_md=
  [ -z "$reasons" ] || reasons_md=$'\n\n'${reasons%$'\n'}
  section=$(cat <<MD
<!-- peers:begin -->
### envrun against the tools users would pick instead

Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) cores ($(uname -r)), commit $commit, release build; load average
(1/5/15 min) $load_begin at the start, $load_end at the end; $t_total s in all; \`tests/bench/peers.sh$cmdline\`.
Runs (interleaved): $runs, fewer for the slow peer cells (the runs column; see the script's header).
Same fake service (tests/helpers/testsvc: $(if [ "$wait" = 0 ]; then echo "records CLOCK_MONOTONIC, then listens on a loopback
port at once"; else echo "waits ${wait} s, records CLOCK_MONOTONIC, then listens on a loopback
port"; fi)) and same test command (\`testsvc --record FILE\`) for every runner. ready -> test: test start minus the
last service's ready moment, p50. total: the whole up -> test -> down cycle, p50 (min–max), in ms.
Readiness: envrun tcp checks; floor one inotify event (tests/bench/floor.c); start-server-and-test ${sstv:-?}
HTTP via wait-on with its defaults (takes at most two servers: chained for more, up to $sst_max services); pytest-xprocess $xpv output
pattern + port check; mirakuru $mkv TCPExecutor; both start the services one after the other. survivors: processes
of the run still alive 1 s after the runner exited, summed over the cell's runs. Chart (1 and 10 services): peers.svg.

| services | runner | runs | ready -> test | total | vs envrun | survivors |
|---|---|---|---|---|---|---|
${rows%$nl}$reasons_md
<!-- peers:end -->
MD
)
  record_section peers "$section"
  if [ -n "$tsv" ]; then
    printf '%s' "$tsv" | "$py" "$top/tests/bench/chart.py" "$top/tests/bench/peers.svg" \
      "whole up -> test -> down cycle, p50, $runs runs, commit $commit (log scale)"
    echo "recorded in $top/tests/bench/peers.svg"
  else
    echo "peers.svg left alone: it needs both 1 and 10 services"
  fi
fi
