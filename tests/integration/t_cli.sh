#!/usr/bin/env bash
# The command line (SPEC §1, §2): help, version, verbs, global options before
# and after the verb, usage errors and their exit statuses, the default file.
. "$(dirname "$0")/lib.sh"
cd "$TEST_TMP"
printf 'name: demo\nservices:\n  db: {command: [sleep, "1"]}\n  api:\n    command: ./api\n    depends_on: {db: {condition: started}}\n' >environment.yml

# run EXPECTED_STATUS NAME CMD...: checks the status; leaves stdout/stderr in out/err.
run() {
  local want=$1 name=$2; shift 2
  "$@" >out 2>err; local rc=$?
  if [ "$rc" -eq "$want" ]; then ok "$name"; else fail "$name" "exit $rc, expected $want" "$(cat err)"; fi
}
has() { if grep -q -- "$2" "$3"; then ok "$1"; else fail "$1" "'$2' not in $3:" "$(cat "$3")"; fi; }

run 0 "--version" "$ENVRUN" --version
has "--version prints the version" "^envrun [0-9]" out
run 0 "--help" "$ENVRUN" --help
# Every verb, each with one line of what it does (issue 21); then each
# verb's help: its options with their meaning, exit statuses, an example.
verbs="exec test up down status logs ls env start stop restart validate config graph"
for v in $verbs; do
  has "--help: $v with what it does" "^  $v  *[a-z][a-z]* [a-z]" out
done
cp out help.out
for v in $verbs; do
  "$ENVRUN" help "$v" >out 2>err || fail "help $v: exit 0"
  has "help $v: exit status" "^Exit status:" out
  has "help $v: an example" "^  envrun $v\|^  eval \"\$(envrun $v\|^  envrun $v " out
done
"$ENVRUN" help exec >out 2>&1
for o in --timeout --report --junit --timeline --abort-on-failure --allow-partial; do
  has "help exec: $o with its meaning" "^      $o.*  [a-z]" out
done
has "help exec: 125" "125 envrun or the environment failed" out
"$ENVRUN" help logs >out 2>&1
has "help logs: -n, --lines LINES" "^  -n, --lines LINES  *the last LINES lines" out
run 0 "help validate" "$ENVRUN" help validate
has "help VERB explains it" "FILE:LINE:COL" out
run 2 "help of an unknown verb" "$ENVRUN" help frobnicate
run 2 "no verb at all" "$ENVRUN"
run 2 "unknown verb" "$ENVRUN" frobnicate
has "unknown verb is named" "unknown verb 'frobnicate'" err
run 2 "unknown global option" "$ENVRUN" --frobnicate validate
has "unknown option is named" "unknown option '--frobnicate'" err
run 2 "unknown option of a verb" "$ENVRUN" validate --json
run 125 "unknown option under exec is 125" "$ENVRUN" exec --frobnicate -- true
run 2 "option without its value" "$ENVRUN" validate -f

run 0 "validate finds ./environment.yml" "$ENVRUN" validate
[ ! -s out ] && [ ! -s err ] && ok "validate is silent on success" || fail "validate is silent on success" "$(cat out err)"
run 0 "validate -v" "$ENVRUN" validate -v
has "validate -v says ok" "ok (2 services, project 'demo')" out
run 0 "global option after the verb" "$ENVRUN" validate -v -p other
has "-p overrides name:" "project 'other'" out
ENVRUN_PROJECT=fromenv "$ENVRUN" validate -v >out 2>&1
has "ENVRUN_PROJECT overrides name:" "project 'fromenv'" out
run 2 "an invalid -p" "$ENVRUN" validate -p 'bad name'

mkdir -p sub
printf 'services:\n  x: {command: x}\n' >sub/environment.yaml
(cd sub && "$ENVRUN" validate -v >../out 2>&1)
has "environment.yaml is the fallback, project from the directory" "project 'sub'" out
mkdir -p empty
(cd empty && "$ENVRUN" validate >../out 2>../err); rc=$?
[ "$rc" -eq 2 ] && ok "no file: exit 2" || fail "no file: exit 2" "exit $rc"
has "no file: says where it looked" "no environment.yml or environment.yaml in" err

run 0 "config" "$ENVRUN" config
has "config is YAML with defaults" "timeout: 1m" out
run 0 "config --json" "$ENVRUN" --file environment.yml config --json
if /usr/bin/python3 -c 'import json,sys; c=json.load(open("out")); assert c["name"]=="demo"; assert c["services"]["api"]["depends_on"]=={"db":{"condition":"started"}}; assert c["services"]["db"]["command"]==["sleep","1"]'; then
  ok "config --json parses and holds the model"
else
  fail "config --json parses and holds the model" "$(cat out)"
fi
run 0 "graph" "$ENVRUN" graph
has "graph is DOT with conditions" '"api" -> "db" \[label="started"\]' out
dot -Tsvg out -o graph.svg && ok "graph renders with Graphviz" || fail "graph renders with Graphviz" "is graphviz installed? tests/run installs it"
run 2 "verb arguments where none are taken" "$ENVRUN" validate extra
run 2 "validate of a broken file" "$ENVRUN" validate -f "$ENVRUN_SRC/tests/cases/invalid/cycle.yml"
has "located error" "cycle.yml:4:18: dependency cycle: a -> b -> c -> a" err
NO_COLOR=1 script -qec "$ENVRUN validate -f $ENVRUN_SRC/tests/cases/invalid/cycle.yml" /dev/null >out 2>&1
if grep -q $'\033' out; then fail "NO_COLOR is honoured on a terminal" "$(cat -v out)"; else ok "NO_COLOR is honoured on a terminal"; fi
finish
