#!/usr/bin/env bash
# tests/vm/selftest.sh: checks tests/vm/run itself, in one VM boot (plus one
# that must time out): pure cgroup v2, root, the unprivileged user
# envrun-test, python3, a loop of forks, the environment and the exit status.
#   bash tests/vm/selftest.sh
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
pass=0 failed=0
ok() { echo "ok - $*"; pass=$((pass + 1)); }
ko() { echo "FAIL - $*"; failed=$((failed + 1)); }

out=$(mktemp)
trap 'rm -f "$out"' EXIT

start=$SECONDS
SELFTEST_VALUE="a 'b' \$c" ENVRUN_VM_ENV=SELFTEST_VALUE \
        "$here/run" --timeout 300 -- bash -c '
ms() { echo $(( $(date +%s%N) / 1000000 )); }
echo "cgroup: $(cat /proc/self/cgroup | tr "\n" " ")"
echo "controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
echo "uid: $(id -u)"
echo "v1: $(grep -c "^cgroup " /proc/mounts)"
if id envrun-test >/dev/null 2>&1; then echo "user: $(runuser -u envrun-test -- id -un)"; else echo "user: none"; fi
echo "env: $SELFTEST_VALUE"
echo "slow: ${ENVRUN_VM_SLOW:-}"
echo "pwd: $PWD"
s=$(ms); p=$(/usr/bin/python3 -c "print(1)"); echo "python: $p $(( $(ms) - s )) ms"
s=$(ms); for i in $(seq 20); do /bin/true; done; echo "forks: $(( $(ms) - s )) ms"
echo to-stderr >&2
exit 7' >"$out" 2>"$out.err"
rc=$?
took=$((SECONDS - start))
sed 's/^/  | /' "$out"
get() { sed -n "s/^$1: //p" "$out"; }

[[ $rc == 7 ]] && ok "the command's exit status comes back (7)" || ko "exit status: $rc, not 7: $(cat "$out.err")"
[[ $(get cgroup) == "0::/ " ]] && ok "pure cgroup v2: /proc/self/cgroup is 0::/" || ko "cgroup: $(get cgroup)"
[[ " $(get controllers) " == *" memory "* && " $(get controllers) " == *" pids "* ]] &&
        ok "memory and pids controllers: $(get controllers)" || ko "controllers: $(get controllers)"
[[ $(get v1) == 0 ]] && ok "no cgroup v1 hierarchy mounted" || ko "v1 mounts: $(get v1)"
[[ $(get uid) == 0 ]] && ok "runs as root" || ko "uid: $(get uid)"
case $(get user) in
envrun-test) ok "runuser -u envrun-test works" ;;
none) echo "skip - no user envrun-test on this host (tests/run makes it)" ;;
*) ko "runuser: $(get user)" ;;
esac
[[ $(get env) == "a 'b' \$c" ]] && ok "ENVRUN_VM_ENV passes a variable as it is" || ko "env: $(get env)"
[[ $(get slow) =~ ^[0-9]+$ ]] && ok "ENVRUN_VM_SLOW=$(get slow) in the guest" || ko "slow: $(get slow)"
[[ $(get pwd) == "$PWD" ]] && ok "runs in the current directory" || ko "pwd: $(get pwd)"
[[ $(get python) == "1 "* ]] && ok "python3 runs: $(get python)" || ko "python: $(get python)"
[[ $(get forks) ]] && ok "20 x /bin/true: $(get forks)" || ko "forks"
grep -qx to-stderr "$out.err" && ok "stderr comes back on stderr" || ko "stderr: $(cat "$out.err")"
echo "# one run: ${took}s"
rm -f "$out.err"

start=$SECONDS
"$here/run" --timeout 20 -- sleep 600 >/dev/null 2>"$out"
rc=$?
[[ $rc == 125 ]] && grep -q 'timed out' "$out" && ok "--timeout: 125 after $((SECONDS - start))s" ||
        ko "timeout: rc=$rc $(cat "$out")"

echo "$pass passed, $failed failed"
((failed == 0))
