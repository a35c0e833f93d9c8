#!/usr/bin/env bash
# Runs INSIDE the pure cgroup v2 VM (tests/vm/run; cgroup_no_v1=all), as
# root: what only a pure v2 host can show.
#   - the host really is pure v2 (one "0::" line in /proc/self/cgroup);
#   - t_limits.sh passes every check as root (memory, pids and cpu_time
#     limits, LimitExceeded naming the limit, the tree's peak memory);
#   - t_up_crash.sh: a daemonizing service, kill -9 of the supervisor, down;
#   - a user holding a delegated subtree (chowned the way systemd's
#     Delegate=yes does it, envrun alone in it) gets cgroup2 and an enforced
#     memory limit;
#   - in a container-like cgroup namespace whose root holds processes, a
#     file with limits runs and says why its limits are off.
# Time bounds scale by ENVRUN_VM_SLOW (tests/vm/README.md).
. "$(dirname "$0")/../integration/lib.sh"
: "${ENVRUN_BUILD:=$(dirname "$ENVRUN")}"
TS=$ENVRUN_BUILD/tests/testsvc
USER_NAME=envrun-test
CG=/sys/fs/cgroup

lines=$(wc -l </proc/self/cgroup)
if [ "$lines" = 1 ] && grep -qx '0::/.*' /proc/self/cgroup; then
  ok "pure cgroup v2: $(cat /proc/self/cgroup)"
else
  fail "pure cgroup v2" "$(cat /proc/self/cgroup)"
  finish
  exit 1
fi
grep -qw memory "$CG/cgroup.controllers" && grep -qw pids "$CG/cgroup.controllers" &&
  ok "memory and pids controllers: $(cat "$CG/cgroup.controllers")" ||
  fail "memory and pids controllers" "$(cat "$CG/cgroup.controllers")"

# sub NAME SCRIPT: runs another integration script; its checks count here.
sub() {
  local out rc
  out=$(bash "$ENVRUN_SRC/tests/integration/$1" 2>&1)
  rc=$?
  echo "$out" | grep -E '^(FAIL|     )' | head -n 40
  echo "# $1: $(echo "$out" | tail -n 1)"
  [ "$rc" -eq 0 ] && ok "$1: every check passes as root" || fail "$1: every check passes as root"
}
sub t_limits.sh
sub t_up_crash.sh

# report FILE EXPR: a Python expression over the JSON report r (s: services by name)
report() {
  /usr/bin/python3 - "$1" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
s = {x["name"]: x for x in r["services"]}
print(eval(sys.argv[2]))
PY
}

# The issue's own figures, as root: 400 MB under memory: 64M, and a fork loop
# under pids: 20, each ending as LimitExceeded naming its limit.
D=$TEST_TMP/root
mkdir -p "$D"
cat >"$D/environment.yml" <<EOF
services:
  hog:
    command: [$TS, --alloc, "419430400", --hold]
    limits: {memory: 64M}
  bomb:
    command: [sh, -c, 'while :; do $TS --hold & done']
    limits: {pids: 20}
EOF
(cd "$D" && timeout $((120 * ${ENVRUN_VM_SLOW:-1})) "$ENVRUN" exec --report r.json -- "$TS" --sleep $((6 * ${ENVRUN_VM_SLOW:-1})) >out 2>err)
rc=$?
[ "$rc" -eq 125 ] && ok "root: exit 125" || fail "root: exit 125" "rc=$rc" "$(tail -n 8 "$D/err")"
[ "$(report "$D/r.json" 's["hog"]["error"] == "LimitExceeded" and s["hog"]["message"] == "memory limit 64M exceeded (oom kill)"')" = True ] &&
  ok "root: 400 MB under memory: 64M is LimitExceeded (memory)" ||
  fail "root: 400 MB under memory: 64M is LimitExceeded (memory)" "$(report "$D/r.json" 's["hog"]["message"]' 2>&1)"
[ "$(report "$D/r.json" 's["bomb"]["error"] == "LimitExceeded" and s["bomb"]["message"].startswith("pids limit 20 reached")')" = True ] &&
  ok "root: a fork loop under pids: 20 is LimitExceeded (pids)" ||
  fail "root: a fork loop under pids: 20 is LimitExceeded (pids)" "$(report "$D/r.json" 's["bomb"]["message"]' 2>&1)"
[ "$(report "$D/r.json" 'r["containment"] == "cgroup2" and r["limits_enforced"] and s["hog"]["memory_peak_scope"] == "tree"')" = True ] &&
  ok "root: containment cgroup2, limits enforced, the tree's peak" ||
  fail "root: containment cgroup2, limits enforced, the tree's peak" "$(tail -n 4 "$D/err")"
for p in $(grep -lsaF "ENVRUN_MARKER=" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3); do
  fail "root: a process left behind" "$p: $(tr '\0' ' ' </proc/$p/cmdline 2>/dev/null)"
done

# ---------------------------------------------------------------- delegated
chmod 0755 "$TEST_TMP" # the user's cwd is below it
D=$TEST_TMP/deleg
mkdir -p "$D"
chown "$USER_NAME:" "$D"
cat >"$D/environment.yml" <<EOF
services:
  hog:
    command: [$TS, --alloc, "209715200", --hold]
    limits: {memory: 64M}
EOF
echo "+memory +pids" >"$CG/cgroup.subtree_control"
DG=$CG/envrun-deleg-$$
mkdir "$DG"
chown "$USER_NAME:" "$DG" "$DG/cgroup.procs" "$DG/cgroup.subtree_control" "$DG/cgroup.threads"
# As systemd does it: root puts the process in the delegated cgroup, then it
# becomes the user (setpriv execs: no process of runuser's stays behind).
(cd "$D" && sh -c "echo \$\$ >'$DG/cgroup.procs' && exec setpriv --reuid=$USER_NAME --regid=$USER_NAME --init-groups \
   env -i PATH=/usr/bin:/bin HOME='$D' '$ENVRUN' exec --report '$D/r.json' -- '$TS' --sleep $((4 * ${ENVRUN_VM_SLOW:-1}))" \
   >"$D/out" 2>"$D/err")
rc=$?
[ "$rc" -eq 125 ] && ok "delegated: exit 125 (the hog crossed its limit)" || fail "delegated: exit 125" "rc=$rc" "$(tail -n 8 "$D/err")"
[ "$(report "$D/r.json" 'r["containment"]')" = cgroup2 ] && ok "delegated: containment cgroup2" ||
  fail "delegated: containment cgroup2" "$(tail -n 5 "$D/err")"
[ "$(report "$D/r.json" 's["hog"]["error"] == "LimitExceeded" and "memory" in s["hog"]["message"] and r["limits_enforced"]')" = True ] &&
  ok "delegated: the memory limit is enforced (LimitExceeded)" ||
  fail "delegated: the memory limit is enforced (LimitExceeded)" "$(tail -n 8 "$D/err")"
[ -d "$DG/envrun-self" ] && ok "delegated: envrun moved itself into envrun-self" || fail "delegated: envrun moved itself into envrun-self"
find "$DG" -depth -type d -exec rmdir {} + 2>/dev/null

# ---------------------------------------------------------------- container
D=$TEST_TMP/ctr
mkdir -p "$D"
cat >"$D/environment.yml" <<EOF
services:
  svc:
    command: [$TS, --hold]
    limits: {memory: 64M, pids: 20}
EOF
CT=$CG/envrun-ctr-$$
mkdir "$CT"
# A cgroup namespace whose root (CT) holds this shell: enabling a controller
# for its children fails (EBUSY), as in a container's namespace root.
(cd "$D" && sh -c "echo \$\$ >'$CT/cgroup.procs' && exec unshare --cgroup --mount sh -c \
   'umount -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup && exec \"\$0\" exec --report r.json -- true' '$ENVRUN'" \
   >"$D/out" 2>"$D/err")
rc=$?
[ "$rc" -eq 0 ] && ok "container root: the run works (exit 0)" || fail "container root: the run works" "rc=$rc" "$(tail -n 8 "$D/err")"
[ "$(report "$D/r.json" 'r["limits_enforced"] is False and "busy" in (s["svc"]["limits_not_enforced"] or "")')" = True ] &&
  ok "container root: says why its limits are off ($(report "$D/r.json" 's["svc"]["limits_not_enforced"]'))" ||
  fail "container root: says why its limits are off" "$(tail -n 6 "$D/err")"
grep -q "^limits not enforced for svc: memory: " "$D/err" && ok "container root: the report's closing lines name them" ||
  fail "container root: the report's closing lines name them" "$(tail -n 4 "$D/err")"
find "$CT" -depth -type d -exec rmdir {} + 2>/dev/null

finish
