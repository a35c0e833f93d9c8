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
has "help exec: --report says what the file is" "^      --report FILE  *write the exit report as JSON" out
if grep -q "SPEC" out; then fail "help exec: no SPEC section a user does not have" "$(grep SPEC out)"; else ok "help exec: no SPEC section a user does not have"; fi
has "help exec: interrupted" "129/130/143 interrupted" out
"$ENVRUN" help up >out 2>&1
has "help up: Ctrl-C ends a foreground up with 130" "Ctrl-C ends a foreground up:" out
has "help up: 129/130/143" "129/130/143 interrupted" out
# status and down exit 2 on a bad option, and say so (SPEC §2).
for v in status down; do
  "$ENVRUN" help "$v" >out 2>&1
  has "help $v: 2 usage error" "[;,] 2 usage" out
  run 2 "$v: an unknown option is 2" "$ENVRUN" "$v" --frobnicate
done
"$ENVRUN" help validate >out 2>&1
if grep -q "1 a service failed" out; then fail "help validate: no 'a service failed' (it starts none)" "$(cat out)"; else ok "help validate: no 'a service failed' (it starts none)"; fi
# --help points to the man pages for the rest.
has "--help points to man 5 environment.yml" "man 5 environment.yml" help.out
if grep -q "reference in the README" help.out; then fail "--help: the file's reference is the man page, not the README"; else ok "--help: the file's reference is the man page, not the README"; fi
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
# --- the shell completions know every verb and option (completions/) -------
# Every verb of --help is completed by both; zsh describes each with --help's
# summary, word for word; the bash completion offers every option of `help
# VERB` after the verb (its _envrun is run), and the zsh file names each.
bc=$ENVRUN_SRC/completions/envrun.bash
zc=$ENVRUN_SRC/completions/_envrun
# comp WORDS...: what the bash completion offers for the last word, on one line.
comp() {
  bash -c '
    source "$1"; shift
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
    _envrun; [ "${#COMPREPLY[@]}" -eq 0 ] || printf " %s" "${COMPREPLY[@]}"; echo " "' _ "$bc" "$@"
}
# The zsh verbs=( ... ) entries, unquoted: "verb:description" per line.
sed -n "/^  verbs=(\$/,/^  )\$/p" "$zc" | sed "1d;\$d; s/^ *//; s/'\\\\''/'/g; s/^'//; s/'\$//" >zsh_verbs
sed -n '/^Verbs:/,/^$/s/^  \([a-z][a-z-]*\)  *\(.*\)$/\1:\2/p' help.out >help_verbs
[ "$(wc -l <help_verbs)" -ge 14 ] && ok "--help lists the verbs ($(wc -l <help_verbs))" || fail "--help lists the verbs" "$(cat help.out)"
all=$(comp envrun '')
while IFS= read -r line; do
  v=${line%%:*}
  case $all in *" $v "*) ok "bash completes the verb $v" ;; *) fail "bash completes the verb $v" "offered:$all" ;; esac
  if grep -qxF -- "$line" zsh_verbs; then ok "zsh completes the verb $v with its --help summary"
  else fail "zsh completes the verb $v with its --help summary" "want: '$line'" "zsh has: $(grep "^$v:" zsh_verbs)"; fi
  "$ENVRUN" help "$v" >vh 2>&1
  opts=$(sed -n '/^Options:/,/^$/s/^  \(-[a-zA-Z]\)\{0,1\}\(, \)\{0,1\} *\(--[a-z-]*\).*/\1 \3/p' vh)
  offered=$(comp envrun "$v" -)
  for o in $opts; do
    case $offered in *" $o "*) ok "bash completes $v $o" ;; *) fail "bash completes $v $o" "offered:$offered" ;; esac
    case $o in
    --*) if grep -qE -- "$o=?(\[|\})" "$zc"; then ok "zsh knows $v $o"; else fail "zsh knows $v $o"; fi ;;
    esac
  done
done <help_verbs
while IFS= read -r line; do
  v=${line%%:*}
  [ "$v" = help ] || grep -q "^$v:" help_verbs ||
    fail "zsh completes only verbs of --help" "'$v' is not one"
done <zsh_verbs
globals=$(sed -n '/^Global options/,/^$/s/^  \(-[a-zA-Z]\)\{0,1\}\(, \)\{0,1\} *\(--[a-z-]*\).*/\1 \3/p' help.out)
offered=$(comp envrun -)
for o in $globals; do
  case $offered in *" $o "*) ok "bash completes the global $o" ;; *) fail "bash completes the global $o" "offered:$offered" ;; esac
done

NO_COLOR=1 script -qec "$ENVRUN validate -f $ENVRUN_SRC/tests/cases/invalid/cycle.yml" /dev/null >out 2>&1
if grep -q $'\033' out; then fail "NO_COLOR is honoured on a terminal" "$(cat -v out)"; else ok "NO_COLOR is honoured on a terminal"; fi
finish
