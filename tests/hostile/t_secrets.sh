#!/usr/bin/env bash
# Nothing secret in any output (SPEC §6: env values never appear in a
# report), as root and as envrun-test: values planted in the file's env:, a
# service's env:, an env_file, an inherited variable interpolated into a
# service's env, an HTTP header, and a URL's password (user:PASSWORD@)
# must not show in exec's progress (-v), its text, JSON and JUnit reports
# and its timeline; nor in up -d's output, status (text and JSON), ls,
# logs (envrun's own lines), env, down, the instance's records.json or
# supervisor.log.  (`envrun config` prints the file's values: that is what
# it is for.)
. "$(dirname "$0")/../integration/lib.sh"
M=envrun-secrets-$$
D=$TEST_TMP/s
STATE=$TEST_TMP/state
mkdir -p "$D"
cleanup() {
  local p
  (cd "$D" && "$ENVRUN" --state-dir "$STATE" down) >/dev/null 2>&1 </dev/null
  for p in $(marker_pids "$M"); do kill -KILL "$p" 2>/dev/null; done
  rm -rf "$TEST_TMP"
}
trap cleanup EXIT
echo "FILEVAL=s3cr3t-file" >"$D/app.env"
cat >"$D/environment.yml" <<'YML'
name: secrets
ports: [P]
env:
  TOPVAL: s3cr3t-top
services:
  web:
    command: [python3, -m, http.server, --bind, 127.0.0.1, "${P}"]
    env:
      SVCVAL: s3cr3t-svc
      FROMINH: "${INHVAL}"
    env_file: app.env
    ready:
      http: "http://user:s3cr3t-url@127.0.0.1:${P}/"
      headers: {Authorization: "Bearer ${TOKEN}"}
  job:
    command: [sh, -c, "exit 0"]
    ready: {exit: 0}
test: [sh, -c, "exit 0"]
YML
export INHVAL=s3cr3t-inh TOKEN=s3cr3t-token TESTSVC_MARKER=$M
O=$TEST_TMP/out
mkdir -p "$O"
E() { (cd "$D" && "$ENVRUN" --state-dir "$STATE" "$@") </dev/null; }

E exec -v --report "$O/report.json" --junit "$O/junit.xml" --timeline "$O/timeline.svg" \
  >"$O/exec.out" 2>"$O/exec.err"
rc=$?
[ "$rc" -eq 0 ] && ok "exec with every secret planted: exit 0" ||
  fail "exec with every secret planted: exit 0" "rc=$rc" "$(tail -5 "$O/exec.err")"
E up -d >"$O/up.out" 2>"$O/up.err"
rc=$?
[ "$rc" -eq 0 ] && ok "up -d: exit 0" || fail "up -d: exit 0" "rc=$rc" "$(tail -5 "$O/up.err")"
E status >"$O/status.out" 2>&1
E status --json >"$O/status.json" 2>&1
E ls >"$O/ls.out" 2>&1
E logs web >"$O/logs.out" 2>&1
E logs job >"$O/logs-job.out" 2>&1
E env >"$O/env.out" 2>&1
cp "$STATE/secrets/records.json" "$O/records.json" 2>/dev/null ||
  fail "the instance's records.json is where it should be" "$(ls "$STATE" 2>&1)"
cp "$STATE/secrets/supervisor.log" "$O/supervisor.log" 2>/dev/null ||
  fail "the instance's supervisor.log is where it should be"
E down >"$O/down.out" 2>&1
rc=$?
[ "$rc" -eq 0 ] && ok "down: exit 0" || fail "down: exit 0" "rc=$rc" "$(tail -5 "$O/down.out")"

# The check must be able to fail: the progress names the URL it redacts.
grep -q 'http://user:\*\*\*@127.0.0.1' "$O/exec.err" && ok "the progress names the URL, password hidden" ||
  fail "the progress names the URL, password hidden" "$(grep -m2 http "$O/exec.err")"
for f in "$O"/*; do
  hits=$(grep -o '.\{0,40\}s3cr3t-[a-z]*' "$f")
  [ -z "$hits" ] && ok "no secret in $(basename "$f")" || fail "no secret in $(basename "$f")" "$hits"
done
assert_no_leftovers "$M" "secrets"
finish
