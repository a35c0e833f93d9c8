#!/usr/bin/env bash
# The stress set (issue 22): process trees and loads that push envrun's
# stop sequence, reaping and descriptors to their limits.  Each case checks
# the documented outcome (SPEC §2, §5.5-5.7, §6, §8) and that no process of
# it is left, whoever runs it: hostile.t_stress as root (cgroup2) and
# hostile.t_stress_user as envrun-test (reaper).  tests/hostile/README.md,
# "Stress cases", names the break in envrun that makes each case fail.
#   1. a tree that ignores every catchable signal: SIGKILL after the
#      service's 500ms stop_timeout, not before, and the report says killed;
#   2. a zombie factory (500 zombies, always renewed): restart, stop and
#      down work, and every orphaned zombie is reaped at once;
#   3. a SIGSTOPped tree whose processes handle SIGTERM: a clean stop
#      (SIGCONT with the stop signal), long before its stop_timeout;
#   4. a fork storm set off by SIGTERM: over within stop_timeout + 4 s,
#      its exits reaped as they come (not run by default: envrun fails it
#      still, bugs B and C in the README; STRESS_CASES=storm);
#   5. grandchildren holding stdout after their parent exited: exec and
#      down do not wait for an EOF, the grandchildren are killed;
#   6. EMFILE: 50 services under `ulimit -n 64` fail cleanly (125, the
#      reason said, no crash); under a soft limit of 64 with a higher hard
#      limit, services and CMD get the limits envrun was given;
#   7. ten `exec` of one file in one directory at once: all pass;
#   8. (ENVRUN_STRESS_SLOW=1) 1,000 restarts and 1,000 status requests, and
#      more, against one supervisor (the release build): its descriptors
#      unchanged, its RSS within 1 MiB.
. "$(dirname "$0")/../integration/lib.sh"
: "${ENVRUN_BUILD:=$(dirname "$ENVRUN")}"
up_setup "envrun-t-stress-$$"
BASE_M=$UP_M
MARK_PREFIX=envrun-t-stress
PY=$UP_PY
TS=$UP_TS
. "$ENVRUN_SRC/tests/integration/exec_lib.sh"
[ -x "$TS" ] || { fail "setup" "testsvc not found at $TS"; finish; exit 1; }

# Every process any case started carries $BASE_M-<case> (exec_lib's
# newcase marker): SIGKILL (and SIGCONT, for stopped ones) to them until
# none is left, chasing a storm's new pids.
prefix_pids() {
  grep -lzaE "^TESTSVC_MARKER=$BASE_M(-|\$)" /proc/[0-9]*/environ 2>/dev/null |
    sed 's#^/proc/##; s#/environ$##' | grep -vx "$$"
  return 0
}
sweep() {
  local end=$(($(date +%s%N) + 20000000000)) pids p
  while pids=$(prefix_pids) && [ -n "$pids" ]; do
    [ "$(date +%s%N)" -ge "$end" ] && { echo "# teardown: survivors left: $pids"; return 1; }
    for p in $pids; do kill -KILL "$p" 2>/dev/null; kill -CONT "$p" 2>/dev/null; done
    sleep 0.05
  done
}
WATCH=
stress_teardown() {
  [ -n "$WATCH" ] && kill "$WATCH" 2>/dev/null
  up_teardown
  sweep
  rm -rf "$TEST_TMP"
}
trap stress_teardown EXIT

# case NAME: exec_lib's newcase ($D, $M, $CASE), the file $F, and $UP_M (the
# marker of up_ev/up_run) set to $M.
case_() {
  newcase "$1"
  F=$D/environment.yml
  UP_M=$M
}

# tail_ms: milliseconds from the end of CMD (its $D/cmd_end) to now.
tail_ms() {
  local e
  e=$(cat "$D/cmd_end" 2>/dev/null) || { echo 999999; return; }
  echo $((($(date +%s%N) - e) / 1000000))
}

# between LABEL MS LO HI [DIAG]: LO <= MS < HI; DIAG (default diag, exec's
# stderr; up_diag for up_run's) says why not.
between() {
  if [ "$2" -ge "$3" ] && [ "$2" -lt "$4" ]; then ok "$CASE: $1 ($2 ms, want $3..$4)"
  else fail "$CASE: $1" "took $2 ms, want $3..$4 ms" "$("${5:-diag}")"; fi
}

# pids_of GLOB: the pids in the pid files $D/GLOB.
pids_of() { cat "$D"/$1 2>/dev/null; }

# all_dead LABEL PID...: none of them is alive (zombies count as dead).
all_dead() {
  local label=$1 p alive=()
  shift
  for p in "$@"; do up_alive "$p" && alive+=("$p"); done
  if [ "${#alive[@]}" -eq 0 ]; then ok "$CASE: $label ($# processes)"
  else fail "$CASE: $label" "alive: ${alive[*]}"; fi
}

# clean_stderr FILE: no crash, sanitizer report or internal error in FILE.
clean_stderr() {
  if grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error:|internal error|Assertion|Segmentation' "$1"; then
    fail "$CASE: no crash, sanitizer report or internal error" \
      "$(grep -E -m3 'AddressSanitizer|LeakSanitizer|runtime error:|internal error|Assertion|Segmentation' "$1")"
  else ok "$CASE: no crash, sanitizer report or internal error"; fi
}

# state_of PID: its state letter (R, S, T, Z...), empty when gone.
state_of() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1; }

# all_state_T PID...: every one is stopped (T).
all_state_T() {
  local p
  for p in "$@"; do [ "$(state_of "$p")" = T ] || return 1; done
}

# zc.py: zombie counts from /proc.  "kids PID": zombie children of PID;
# "tree ROOT [EXCL]": zombies below ROOT whose parent is not EXCL.
cat >"$TEST_TMP/zc.py" <<'PYEOF'
import os, sys
m = {}
for e in os.listdir("/proc"):
    if not e.isdigit():
        continue
    try:
        s = open("/proc/%s/stat" % e).read()
    except OSError:
        continue
    rest = s[s.rindex(")") + 2:].split()
    m[int(e)] = (rest[0], int(rest[1]))
if sys.argv[1] == "kids":
    pid = int(sys.argv[2])
    print(sum(1 for st, pp in m.values() if pp == pid and st == "Z"))
else:
    root, excl = int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else -1
    kids = {}
    for p, (st, pp) in m.items():
        kids.setdefault(pp, []).append(p)
    n, todo = 0, [root]
    while todo:
        for c in kids.get(todo.pop(), []):
            todo.append(c)
            if m[c][0] == "Z" and m[c][1] != excl:
                n += 1
    print(n)
PYEOF
zkids() { "$PY" "$TEST_TMP/zc.py" kids "$1"; }
ztree() { "$PY" "$TEST_TMP/zc.py" tree "$@"; }
zkids_at_least() { [ "$(zkids "$1")" -ge "$2" ]; }
ztree_zero() { [ "$(ztree "$@")" -eq 0 ]; }

# ------------------------------------------------ 1. a tree that ignores every catchable signal
# Every signal but SIGKILL and SIGSTOP is SIG_IGN (32 and 33 are glibc's,
# refused by sigaction): inherited by the whole tree, a setsid child and a
# double-forked daemon included.
stress_ignore_all() {
IGN=
for s in $(seq 1 31) $(seq 34 64); do
  case $s in 9 | 19) continue ;; esac
  IGN+="--ignore, \"$s\", "
done
# The mask /proc/PID/status shows for it.
IGN_MASK=$(printf '%016x' $((~((1 << 8) | (1 << 18) | (1 << 31) | (1 << 32)))))
case_ ignore_all
cat >"$F" <<YML
services:
  hard:
    command: ["$TS", $IGN --pidfile, "$D/p.main",
              --fork-child, --pidfile, "$D/p.c1", --fork-child, --pidfile, "$D/p.g1", --hold, --end, --hold, --end,
              --fork-child, --setsid, --pidfile, "$D/p.c2", --fork-child, --pidfile, "$D/p.g2", --hold, --end, --hold, --end,
              --fork-child, --daemon, --pidfile, "$D/p.d", --hold, --end,
              --stdout, ready, --hold]
    ready: [{output: "^ready\$"}, {pidfile: "$D/p.c1"}, {pidfile: "$D/p.g1"}, {pidfile: "$D/p.c2"},
            {pidfile: "$D/p.g2"}, {pidfile: "$D/p.d"}]
    stop_timeout: 500ms
YML
# CMD: counts the processes that ignore every catchable signal.
cat >"$D/cmd.sh" <<'SH'
d=$1 want=$2 n=0
for f in "$d"/p.*; do
  ign=$(sed -n 's/^SigIgn:[[:space:]]*//p' "/proc/$(cat "$f")/status" 2>/dev/null)
  [ "$ign" = "$want" ] && n=$((n + 1))
done
echo "$n" >"$d/seen"
date +%s%N >"$d/cmd_end"
SH
runx -- bash "$D/cmd.sh" "$D" "$IGN_MASK"
TAIL=$(tail_ms)
is "CMD saw 6 processes, each ignoring every catchable signal (SigIgn $IGN_MASK)" "$(cat "$D/seen" 2>/dev/null)" 6
expect_rc 125
rep "hard: ProcessFinishedWithError, killed by SIGKILL" \
  's("hard")["error"] == "ProcessFinishedWithError" and s("hard")["killed"] is True and s("hard")["signal"] == "SIGKILL"'
rep "hard: the message says killed after the stop timeout" '"killed by SIGKILL after 500ms stop timeout" in s("hard")["message"]'
up_has "$CASE: the text report says killed after 500ms" "$D/stderr" "hard .*killed by SIGKILL after 500ms stop timeout"
between "the stop waited for stop_timeout, then killed at once" "$TAIL" 500 3500
all_dead "every process of the tree is dead" $(pids_of 'p.*')
leftovers
# The same through up -d and down (exit 1: a service finished with error).
rm -f "$D"/p.*
up_use "$F" sign
up_run ign_up up -d
up_is "$CASE: up -d exits 0" "$RC" 0
up_run ign_down down
up_is "$CASE: down exits 1 (killed after its stop timeout)" "$RC" 1
between "down waited for stop_timeout, then killed at once" "$MS" 500 3500 up_diag
up_has "$CASE: down's report says killed after 500ms" "$ERR" "hard .*killed by SIGKILL after 500ms stop timeout"
leftovers
}

# ------------------------------------------------ 2. a zombie factory
# 500 children that exited and were never waited for, renewed every 1 ms:
# when the main process dies they all reparent at once (to envrun, the
# subreaper, with cgroups; to the service's reaper without), and must be
# reaped there, at once, with no exit status mistaken for the service's.
stress_zombies() {
case_ zombies
cat >"$F" <<YML
services:
  zf:
    command: ["$TS", --pidfile, "$D/zf.pid", --stdout, ready, --zombies, "500"]
    ready: {output: "^ready\$"}
  calm:
    command: ["$TS", --stdout, ready, --hold]
    ready: {output: "^ready\$"}
YML
cat >"$D/cmd.sh" <<'SH'
# CMD: waits (15 s at most) for 400 zombies of the factory.
d=$1 end=$(($(date +%s) + 15))
while [ "$(date +%s)" -le "$end" ]; do
  p=$(cat "$d/zf.pid" 2>/dev/null)
  if [ -n "$p" ] && [ "$("$2" "$3" kids "$p")" -ge 400 ]; then
    date +%s%N >"$d/cmd_end"; exit 0
  fi
  sleep 0.05
done
exit 1
SH
runx -- bash "$D/cmd.sh" "$D" "$PY" "$TEST_TMP/zc.py"
TAIL=$(tail_ms)
rep "CMD saw 400 zombies of the factory" 'r["test"]["exit_code"] == 0'
expect_rc 0
rep "zf: stopped cleanly by SIGTERM" 's("zf")["result"] == "ok" and s("zf")["signal"] == "SIGTERM" and s("zf")["killed"] is False'
rep "calm: stopped cleanly" 's("calm")["result"] == "ok"'
between "the stop was prompt" "$TAIL" 0 3000
leftovers
# Detached: restart, stop, down.
up_use "$F" szomb
up_run z_up up -d
up_is "$CASE: up -d exits 0" "$RC" 0
up_status z_st
SUP=$(up_jq "$OUT" 'j["supervisor_pid"]')
Z1=$(cat "$D/zf.pid" 2>/dev/null)
up_poll 15 zkids_at_least "$Z1" 400 && ok "$CASE: the factory made 400 zombies" ||
  fail "$CASE: the factory made 400 zombies" "$(zkids "$Z1")"
up_run z_restart restart zf
up_is "$CASE: restart of the factory exits 0" "$RC" 0
between "restart was prompt" "$MS" 0 3000 up_diag
Z2=$(cat "$D/zf.pid" 2>/dev/null)
[ -n "$Z2" ] && [ "$Z2" != "$Z1" ] && ok "$CASE: a new factory runs ($Z1 -> $Z2)" ||
  fail "$CASE: a new factory runs" "pid '$Z1' -> '$Z2'"
up_poll 5 ztree_zero "$SUP" "$Z2" && ok "$CASE: the old factory's zombies were all reaped" ||
  fail "$CASE: the old factory's zombies were all reaped" "$(ztree "$SUP" "$Z2") zombies below the supervisor not of the new factory"
up_poll 15 zkids_at_least "$Z2" 400 && ok "$CASE: the new factory made 400 zombies" ||
  fail "$CASE: the new factory made 400 zombies" "$(zkids "$Z2")"
up_run z_stop stop zf
up_is "$CASE: stop of the factory exits 0" "$RC" 0
up_poll 5 ztree_zero "$SUP" && ok "$CASE: no zombie left below the supervisor" ||
  fail "$CASE: no zombie left below the supervisor" "$(ztree "$SUP") zombies"
up_status z_st2
up_is "$CASE: ... and it says stopped" "$(up_jq "$OUT" 's("zf")["state"]')" stopped
up_run z_start start zf
up_is "$CASE: start exits 0" "$RC" 0
Z3=$(cat "$D/zf.pid" 2>/dev/null)
up_poll 15 zkids_at_least "$Z3" 400 || fail "$CASE: the third factory made 400 zombies" "$(zkids "$Z3")"
up_run z_down down
up_is "$CASE: down exits 0" "$RC" 0
between "down was prompt" "$MS" 0 3000 up_diag
up_settled "$CASE"
}

# ------------------------------------------------ 3. a SIGSTOPped tree
# Every process handles SIGTERM (exit 0): a stopped one runs no handler
# until it gets SIGCONT, so without SIGCONT the stop would wait for its 5 s
# stop_timeout and kill.  (A default SIGTERM kills a stopped process
# without SIGCONT: t_exec's "frozen" case cannot tell.)
stress_sigstop() {
case_ sigstop
cat >"$F" <<YML
services:
  frozen:
    command: ["$TS", --on-term-exit, "0", --pidfile, "$D/s.main",
              --fork-child, --pidfile, "$D/s.c1", --fork-child, --pidfile, "$D/s.g1", --hold, --end, --hold, --end,
              --fork-child, --setsid, --pidfile, "$D/s.c2", --hold, --end,
              --stdout, ready, --hold]
    ready: [{output: "^ready\$"}, {pidfile: "$D/s.c1"}, {pidfile: "$D/s.g1"}, {pidfile: "$D/s.c2"}]
    stop_timeout: 5s
YML
cat >"$D/cmd.sh" <<'SH'
# CMD: SIGSTOP to the whole tree, then waits (10 s at most) until every
# process of it is stopped.
d=$1 pids=$(cat "$d"/s.*) end=$(($(date +%s) + 10))
kill -STOP $pids
while [ "$(date +%s)" -le "$end" ]; do
  n=0
  for p in $pids; do [ "$(sed 's/.*) //' "/proc/$p/stat" | cut -d' ' -f1)" = T ] && n=$((n + 1)); done
  if [ "$n" -eq 4 ]; then echo 4 >"$d/stopped"; date +%s%N >"$d/cmd_end"; exit 0; fi
  sleep 0.02
done
exit 1
SH
runx -- bash "$D/cmd.sh" "$D"
TAIL=$(tail_ms)
is "CMD stopped the 4 processes of the tree" "$(cat "$D/stopped" 2>/dev/null)" 4
expect_rc 0
rep "frozen: stopped cleanly (its handler's exit 0), not killed" \
  's("frozen")["result"] == "ok" and s("frozen")["exit_code"] == 0 and s("frozen")["killed"] is False'
between "the stop did not wait for the 5 s stop_timeout" "$TAIL" 0 3000
all_dead "every process of the tree is dead" $(pids_of 's.*')
leftovers
# Detached: a restart and a down of a stopped tree.
rm -f "$D"/s.*
up_use "$F" sstop
up_run s_up up -d
up_is "$CASE: up -d exits 0" "$RC" 0
OLD=$(pids_of 's.*')
kill -STOP $OLD
up_poll 10 all_state_T $OLD && ok "$CASE: the tree is stopped (T)" || fail "$CASE: the tree is stopped (T)"
rm -f "$D"/s.*
up_run s_restart restart frozen
up_is "$CASE: restart of the stopped tree exits 0" "$RC" 0
between "restart did not wait for the stop_timeout" "$MS" 0 3000 up_diag
all_dead "the old tree is dead" $OLD
up_status s_st
up_is "$CASE: ... the new run is ready" "$(up_jq "$OUT" 's("frozen")["state"]')" ready
NEW=$(pids_of 's.*')
kill -STOP $NEW
up_poll 10 all_state_T $NEW && ok "$CASE: the new tree is stopped (T)" || fail "$CASE: the new tree is stopped (T)"
up_run s_down down
up_is "$CASE: down exits 0" "$RC" 0
between "down did not wait for the stop_timeout" "$MS" 0 3000 up_diag
up_has "$CASE: down's report says frozen stopped cleanly" "$ERR" "^frozen +ok +exited 0"
all_dead "the new tree is dead" $NEW
leftovers
}

# ------------------------------------------------ 4. a fork storm during the stop
# On SIGTERM, sixteen chains of processes that fork and exit as fast as they
# can (a pid that changes all the time, an orphan reparenting at each
# link), while the main process carries on: only the kill after
# stop_timeout can end it, and it must end all of it at once, reaping the
# links' exits as they come.  (testsvc's chains stop forking by themselves
# 15 s on, or when the system holds 8000 tasks more than when they began:
# a killer that fails must not starve the machine of pids.)
stress_storm() {
case_ storm
# A storm forks at native speed: the testsvc of a sanitizer build (tests/run's)
# forks over ten times slower, too slow to be one.  So a plain build of it.
local sts=$TS
if grep -q __asan_init "$TS" 2>/dev/null; then
  sts=$TEST_TMP/testsvc-plain
  cc -std=c11 -D_GNU_SOURCE -O2 -o "$sts" "$ENVRUN_SRC/tests/helpers/testsvc.c" -lm 2>"$D/cc.err" ||
    { fail "$CASE: a plain build of testsvc for the storm" "$(cat "$D/cc.err")"; sts=$TS; }
fi
cat >"$F" <<YML
services:
  storm:
    command: ["$sts", --fork-storm-on-term, "16", "15", --stdout, ready, --hold]
    ready: {output: "^ready\$"}
    stop_timeout: 1s
  calm:
    command: ["$TS", --stdout, ready, --hold]
    ready: {output: "^ready\$"}
YML
# tree_count ROOT: TC := the processes (zombies included) in the three
# levels below ROOT (timeout -> envrun -> reaper -> the storm's orphans, or
# supervisor -> reaper -> orphans; with cgroups the orphans are envrun's),
# read from the children lists without a fork.  tree_watch ROOT /
# tree_peak: the largest TC, every 10 ms, from tree_watch until tree_peak.
tree_count() {
  local n=0 x y a=() b c
  # A children list ends with no newline: read's status says nothing.
  read -r -a a 2>/dev/null <"/proc/$1/task/$1/children"
  n=${#a[@]}
  for x in "${a[@]}"; do
    b=()
    read -r -a b 2>/dev/null <"/proc/$x/task/$x/children"
    n=$((n + ${#b[@]}))
    for y in "${b[@]}"; do
      c=()
      read -r -a c 2>/dev/null <"/proc/$y/task/$y/children"
      n=$((n + ${#c[@]}))
    done
  done
  TC=$n
}
tree_watch() {
  rm -f "$D/watch.stop" "$D/watch.max"
  (max=0; while [ ! -e "$D/watch.stop" ] && [ -d "$D" ] && [ -d "/proc/$1" ]; do
     tree_count "$1"; [ "$TC" -gt "$max" ] && max=$TC && echo "$max" >"$D/watch.max"
     sleep 0.01; done 2>/dev/null) &
  WATCH=$!
}
tree_peak() { : >"$D/watch.stop"; wait "$WATCH"; WATCH=; cat "$D/watch.max" 2>/dev/null || echo 0; }
# storm_tree PEAK: the storm never held 4000 processes (zombies waiting to
# be reaped, mostly; 16 when every exit is reaped at once).
storm_tree() {
  if [ "$1" -lt 4000 ]; then ok "$CASE: the storm's exits were reaped as they came (at most $1 processes)"
  else fail "$CASE: the storm's exits were reaped as they came" "$1 processes (zombies) at once"; fi
}
t0=$(now_ns)
(cd "$D" && export TESTSVC_MARKER="$M" &&
  exec timeout -s KILL 40 "$ENVRUN" exec --report report.json -f environment.yml -- sh -c 'date +%s%N >"$0/cmd_end"' "$D") \
  </dev/null >"$D/stdout" 2>"$D/stderr" &
X=$!
tree_watch "$X"
wait "$X"
RC=$?
TAIL=$(tail_ms)
storm_tree "$(tree_peak)"
printf '# %s: envrun exec took %d ms, exit %d\n' "$CASE" $((($(now_ns) - t0) / 1000000)) "$RC"
expect_rc 125
rep "storm: ProcessFinishedWithError, killed by SIGKILL after its stop timeout" \
  's("storm")["error"] == "ProcessFinishedWithError" and s("storm")["killed"] is True and "after 1s stop timeout" in s("storm")["message"]'
rep "calm: stopped cleanly" 's("calm")["result"] == "ok"'
between "the storm was over within stop_timeout + 4 s" "$TAIL" 1000 5000
leftovers
up_use "$F" sstorm
up_run f_up up -d
up_is "$CASE: up -d exits 0" "$RC" 0
up_status f_st
tree_watch "$(up_jq "$OUT" 'j["supervisor_pid"]')"
up_run f_down down
storm_tree "$(tree_peak)"
up_is "$CASE: down exits 1 (killed after its stop timeout)" "$RC" 1
between "down was over within stop_timeout + 4 s" "$MS" 1000 5000 up_diag
up_settled "$CASE"
}

# ------------------------------------------------ 5. grandchildren holding stdout
# The main process exits 0 at once, its grandchild (a double fork) keeps
# the output pipe open: a service that just exited, and a one-shot job
# whose dependent must start at its exit, not at an EOF that never comes.
stress_grandchild() {
case_ grandchild
cat >"$F" <<YML
services:
  orphan:
    command: 'echo \$\$ >"$D/m.orphan"; (sleep 1000 & echo \$! >"$D/gc.orphan"); echo ready; exit 0'
    shell: true
    ready: {output: "^ready\$"}
  job:
    command: '(sleep 1001 & echo \$! >"$D/gc.job"); echo done'
    shell: true
    ready: {exit: 0}
  after:
    command: ["$TS", --stdout, up, --hold]
    ready: {output: "^up\$"}
    depends_on: {job: {condition: completed}}
YML
cat >"$D/cmd.sh" <<'SH'
# CMD: waits (10 s at most) until the orphan's main process is gone and
# both grandchildren run, orphaned.
d=$1 end=$(($(date +%s) + 10))
while [ "$(date +%s)" -le "$end" ]; do
  m=$(cat "$d/m.orphan" 2>/dev/null) g1=$(cat "$d/gc.orphan" 2>/dev/null) g2=$(cat "$d/gc.job" 2>/dev/null)
  st=$(sed 's/.*) //' "/proc/$m/stat" 2>/dev/null | cut -c1)
  if [ -n "$m" ] && [ -n "$g1" ] && [ -n "$g2" ] && { [ -z "$st" ] || [ "$st" = Z ]; } &&
     [ -e "/proc/$g1" ] && [ -e "/proc/$g2" ]; then
    ls -l "/proc/$g1/fd/1" >"$d/fd1.txt" 2>&1
    date +%s%N >"$d/cmd_end"; exit 0
  fi
  sleep 0.02
done
exit 1
SH
runx -- bash "$D/cmd.sh" "$D"
TAIL=$(tail_ms)
rep "CMD saw the main process gone and both grandchildren running" 'r["test"]["exit_code"] == 0'
up_has "$CASE: the grandchild holds the service's output pipe" "$D/fd1.txt" "pipe:"
expect_rc 0
rep "orphan: ok, exited 0" 's("orphan")["result"] == "ok" and s("orphan")["exit_code"] == 0'
rep "job: ok, exited 0, and its dependent started" \
  's("job")["result"] == "ok" and s("job")["exit_code"] == 0 and s("after")["ready_ms"] is not None'
between "exec did not wait for an EOF" "$TAIL" 0 3000
all_dead "both grandchildren are dead" $(pids_of 'gc.*')
leftovers
rm -f "$D"/m.* "$D"/gc.*
up_use "$F" sgrand
up_run g_up up -d
up_is "$CASE: up -d exits 0" "$RC" 0
gc_ready() { [ -s "$D/gc.orphan" ] && [ -s "$D/gc.job" ] && ! up_alive "$(cat "$D/m.orphan")"; }
up_poll 10 gc_ready && ok "$CASE: both grandchildren run, the orphan's main process is gone" ||
  fail "$CASE: both grandchildren run, the orphan's main process is gone"
up_run g_down down
up_is "$CASE: down exits 0" "$RC" 0
between "down did not wait for an EOF" "$MS" 0 3000 up_diag
all_dead "both grandchildren are dead" $(pids_of 'gc.*')
leftovers
}

# ------------------------------------------------ 6. EMFILE
stress_emfile() {
case_ emfile
{
  echo "services:"
  for i in $(seq 50); do
    printf '  s%d:\n    command: ["%s", --stdout, ready, --hold]\n    ready: {output: "^ready$"}\n' "$i" "$TS"
  done
} >"$F"
# nofile SOFT HARD CMD...: CMD under those limits of descriptors (set by
# bash's ulimit: `ulimit -n 64` sets both).
nofile() {
  local soft=$1 hard=$2
  shift 2
  bash -c 'ulimit -Sn "$1" && ulimit -Hn "$2" && shift 2 && exec "$@"' nofile "$soft" "$hard" "$@"
}
# nofile_runx SOFT HARD FILE EXEC-ARGS...: runx's envrun exec of FILE under
# nofile SOFT HARD.
nofile_runx() {
  local soft=$1 hard=$2 file=$3 t0
  shift 3
  t0=$(now_ns)
  (cd "$D" && export TESTSVC_MARKER="$M" &&
    nofile "$soft" "$hard" timeout -s KILL 60 "$ENVRUN" exec --report report.json -f "$file" "$@") </dev/null >"$D/stdout" 2>"$D/stderr"
  RC=$?
  MS=$((($(now_ns) - t0) / 1000000))
  printf '# %s: envrun exec (descriptors: soft %s, hard %s) took %d ms, exit %d\n' "$CASE" "$soft" "$hard" "$MS" "$RC"
}
nofile_runx 64 64 "$F" -- true
expect_rc 125
up_has "$CASE: it says why: too many open files" "$D/stderr" "StartError .*Too many open files"
rep "the report names a StartError" 'r["exit_status"] == 125 and any(x["error"] == "StartError" for x in r["services"])'
clean_stderr "$D/stderr"
leftovers
up_use "$F" semfile
(export TESTSVC_MARKER=$M && cd "$D" && nofile 64 64 timeout -s KILL 60 "$ENVRUN" --state-dir "$UP_STATE" -f "$F" -p semfile up -d) \
  </dev/null >"$D/up.out" 2>"$D/up.err"
RC=$?
is "up -d exits 1" "$RC" 1
up_has "$CASE: up -d says why: too many open files" "$D/up.err" "Too many open files"
clean_stderr "$D/up.err"
[ ! -e "$UP_STATE/semfile" ] && ok "$CASE: no instance left" || fail "$CASE: no instance left" "$(ls -A "$UP_STATE/semfile")"
leftovers
# A soft limit of 64 under a higher hard one: what envrun was given is what
# its children get (envrun may raise its own soft limit, never theirs).
HARD=$(ulimit -Hn)
[ "$HARD" = unlimited ] && HARD=1048576
[ "$HARD" -gt 1024 ] && HARD=1024
cat >"$D/lim.yml" <<YML
services:
  lim:
    command: [sh, -c, 'grep "^Max open files" /proc/self/limits >"$D/lim.svc"']
    ready: {exit: 0}
YML
nofile_runx 64 "$HARD" "$D/lim.yml" -- sh -c 'grep "^Max open files" /proc/self/limits >"$0/lim.cmd"' "$D"
expect_rc 0
lim_is() {
  local got
  got=$(awk '{print $4, $5}' "$D/$1" 2>/dev/null)
  is "$2 gets soft 64, hard $HARD (what envrun was given)" "$got" "64 $HARD"
}
lim_is lim.svc "a service"
lim_is lim.cmd "CMD"
# Fifty services under it: envrun fails cleanly (125) if it keeps the soft
# limit of 64, or raises its own and runs them (0), each still at 64.
rm -f "$D/lim.svc"
cat >>"$F" <<YML
  lim:
    command: [sh, -c, 'grep "^Max open files" /proc/self/limits >"$D/lim.svc"; echo ready; exec sleep 1000']
    ready: {output: "^ready\$"}
YML
nofile_runx 64 "$HARD" "$F" -- true
case $RC in
  0) ok "$CASE: 50 services under soft 64, hard $HARD: envrun raised its own soft limit, all ran (exit 0)"
     lim_is lim.svc "... and a service still" ;;
  125) ok "$CASE: 50 services under soft 64, hard $HARD: envrun kept soft 64 and failed cleanly (125)"
       up_has "$CASE: ... saying why" "$D/stderr" "Too many open files" ;;
  *) fail "$CASE: 50 services under soft 64, hard $HARD: exit 0 or 125" "exit $RC" "$(diag)" ;;
esac
clean_stderr "$D/stderr"
leftovers
}

# ------------------------------------------------ 7. ten environments of one file side by side
# t_side_by_side runs ten of a one-service file; here each of the ten has
# a dependency chain, a one-shot job, an HTTP check and a daemon, and its
# CMD checks it got its own instance.
stress_side() {
case_ side
cat >"$F" <<YML
ports: [WEB_PORT, API_PORT]
services:
  web:
    command: ["$TS", --tcp, "\${WEB_PORT}", --hold]
    ready: {tcp: "\${WEB_PORT}"}
  seed:
    command: ["$TS", --write-env, WEB_PORT, "\${ENVRUN_STATE_DIR}/seed"]
    ready: {exit: 0}
    depends_on: [web]
  api:
    command: ["$TS", --http, "\${API_PORT}", "200", --hold]
    ready: {http: "http://127.0.0.1:\${API_PORT}/health"}
    depends_on: {seed: {condition: completed}}
  daemon:
    command: ["$TS", --daemon, --pidfile, "\${ENVRUN_STATE_DIR}/d.pid", --hold]
    ready: {pidfile: "\${ENVRUN_STATE_DIR}/d.pid"}
    depends_on: [api]
# CMD (bash, for /dev/tcp): its ports, its state directory, the job's
# output in it (its own instance's), and both servers answering.
test:
  command: [bash, -c, 'echo "\$WEB_PORT \$API_PORT \$ENVRUN_STATE_DIR" >"\$OUT" && [ "\$(cat "\$ENVRUN_STATE_DIR/seed")" = "\$WEB_PORT" ] && exec 3<>"/dev/tcp/127.0.0.1/\$API_PORT" 4<>"/dev/tcp/127.0.0.1/\$WEB_PORT"']
YML
S7=$TEST_TMP/state7
mkdir -p "$S7"
t0=$(now_ns)
pids=()
for i in $(seq 10); do
  (cd "$D" && OUT=$D/out.$i TESTSVC_MARKER=$M exec timeout -s KILL 60 "$ENVRUN" --state-dir "$S7" -q exec --report "$D/r.$i.json") \
    </dev/null >/dev/null 2>"$D/err.$i" &
  pids+=($!)
done
bad=()
for i in $(seq 10); do
  wait "${pids[$((i - 1))]}" || bad+=("run $i: exit $? $(tail -n 3 "$D/err.$i" | tr '\n' ' ')")
done
MS=$((($(now_ns) - t0) / 1000000))
[ "${#bad[@]}" -eq 0 ] && ok "$CASE: ten concurrent execs all exit 0 ($MS ms)" || fail "$CASE: ten concurrent execs all exit 0" "${bad[@]}"
is "20 distinct ports among them" "$(awk '{print $1; print $2}' "$D"/out.* 2>/dev/null | sort -u | wc -l)" 20
is "10 distinct state directories" "$(awk '{print $3}' "$D"/out.* 2>/dev/null | sort -u | wc -l)" 10
left=0
for dir in $(awk '{print $3}' "$D"/out.* 2>/dev/null); do [ -e "$dir" ] && left=$((left + 1)); done
is "every state directory removed" "$left" 0
"$PY" - "$D" <<'PYEOF' && ok "$CASE: ten reports, each ok with 4 services and its own ports" || fail "$CASE: ten reports, each ok with 4 services and its own ports"
import glob, json, sys
seen, n = set(), 0
for f in glob.glob(sys.argv[1] + "/r.*.json"):
    r = json.load(open(f))
    assert r["result"] == "ok" and r["exit_status"] == 0, f
    assert len(r["services"]) == 4 and all(s["result"] == "ok" for s in r["services"]), f
    seen |= set(r["ports"].values())
    n += 1
assert n == 10 and len(seen) == 20, (n, seen)
PYEOF
inst=$(find "$S7" -mindepth 1 -maxdepth 1 ! -name ports 2>/dev/null | wc -l)
is "no instance directory left in the state base" "$inst" 0
leftovers
}

# ------------------------------------------------ 8. 1,000 restarts and control requests
stress_ctl1000() {
case_ ctl1000
if [ "${ENVRUN_STRESS_SLOW:-}" != 1 ]; then
  echo "skip $CASE: 1,000 restarts and control requests: skipped: set ENVRUN_STRESS_SLOW=1 (tests/run does)"
else
  cat >"$F" <<YML
services:
  q:
    command: ["$TS", --stdout, ready, --hold]
    ready: {output: "^ready\$"}
YML
  cat >"$D/ctl.py" <<'PYEOF'
# 1,000 restarts and 1,000 status requests, 200 logs requests and 100
# stop/start pairs on the control socket, a connection each; prints the
# count of unexpected answers.
import socket, sys
sock, n = sys.argv[1], int(sys.argv[2])
def req(method, target):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(20)
    s.connect(sock)
    s.sendall(("%s %s HTTP/1.1\r\nHost: envrun\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
               % (method, target)).encode())
    data = b""
    while True:
        c = s.recv(65536)
        if not c:
            break
        data += c
    s.close()
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0
bad = 0
for i in range(n):
    bad += req("POST", "/v1/services/q/restart") != 200
    bad += req("GET", "/v1/status") != 200
    if i % 5 == 0:
        bad += req("GET", "/v1/services/q/logs?tail=5") != 200
    if i % 10 == 0:
        bad += req("POST", "/v1/services/q/stop") != 200
        bad += req("POST", "/v1/services/q/start") != 200
print(bad)
PYEOF
  SAVED_ENVRUN=$ENVRUN
  ENVRUN=$ENVRUN_RELEASE
  up_use "$F" sctl
  up_run c_up up -d
  up_is "$CASE: up -d (release build) exits 0" "$RC" 0
  up_status c_st
  SUP=$(up_jq "$OUT" 'j["supervisor_pid"]')
  SOCK=$UP_STATE/sctl/control.sock
  fds() { ls "/proc/$SUP/fd" 2>/dev/null | wc -l; }
  rss() { awk '/^VmRSS:/ {print $2}' "/proc/$SUP/status" 2>/dev/null; }
  # A warm-up first: the first requests fill the allocator's pools.
  w=$("$PY" "$D/ctl.py" "$SOCK" 50 2>&1)
  is "warm-up: 50 rounds answered as expected" "$w" 0
  FD0=$(fds) RSS0=$(rss)
  t0=$(now_ns)
  b=$("$PY" "$D/ctl.py" "$SOCK" 1000 2>&1)
  is "1,000 restarts, 1,000 status, 200 logs, 100 stop/start: every answer as expected" "$b" 0
  cli_bad=0
  for i in $(seq 50); do
    up_run c_r restart q
    [ "$RC" -eq 0 ] || cli_bad=$((cli_bad + 1))
    up_run c_s status
    [ "$RC" -eq 0 ] || cli_bad=$((cli_bad + 1))
  done
  is "50 restarts and 50 status through the CLI: all exit 0" "$cli_bad" 0
  printf '# %s: 2,500 requests in %d ms\n' "$CASE" $((($(now_ns) - t0) / 1000000))
  # A connection the supervisor has answered may take a moment to close.
  fds_are() { [ "$(fds)" -eq "$1" ]; }
  up_poll 2 fds_are "$FD0"
  FD1=$(fds) RSS1=$(rss)
  is "the supervisor's descriptors: exactly as many after ($FD0 -> $FD1)" "$FD1" "$FD0"
  [ -n "$RSS0" ] && [ -n "$RSS1" ] && [ $((RSS1 - RSS0)) -lt 1024 ] &&
    ok "$CASE: the supervisor's RSS grew less than 1 MiB ($RSS0 kB -> $RSS1 kB)" ||
    fail "$CASE: the supervisor's RSS grew less than 1 MiB" "$RSS0 kB -> $RSS1 kB"
  up_status c_st2
  up_check "$CASE: q is ready, its 1,100 restarts counted" "$OUT" \
    "s('q')['state'] == 'ready' and s('q')['restarts'] == 1100"
  up_run c_down down
  up_is "$CASE: down exits 0" "$RC" 0
  ENVRUN=$SAVED_ENVRUN
  up_settled "$CASE"
fi
}

# STRESS_CASES="storm emfile" runs only those (for a developer).  By
# default all but the storm, which envrun still fails now and then (bugs B
# and C in tests/hostile/README.md, mitigated: as a user, a single reaper
# on two loaded cores can still fall behind sixteen forking chains past the
# case's bound).  It is said, not counted.
if [ -z "${STRESS_CASES:-}" ]; then
  echo "not run: storm (a fork storm at stop): envrun still fails it now and then (tests/hostile/README.md, bugs B and C); STRESS_CASES=storm runs it"
fi
for c in ${STRESS_CASES:-ignore_all zombies sigstop grandchild emfile side ctl1000}; do
  "stress_$c"
done

finish
