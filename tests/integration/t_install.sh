#!/usr/bin/env bash
# Installation (issue 8): `cmake --install` puts envrun, its man pages, the
# bash and zsh completions and the schema in the standard places; the man pages
# render without warnings; the bash completion loads and completes verbs,
# options and service names; CPack builds a .deb with the right control fields
# and files, whose envrun runs.  (`dpkg -i` would change the machine, so the
# .deb is unpacked with `dpkg -x` instead.)
. "$(dirname "$0")/lib.sh"
: "${ENVRUN_BUILD:?ENVRUN_BUILD must point at the build directory (ctest sets it)}"
src=$ENVRUN_SRC

has() { if grep -q -- "$2" "$3"; then ok "$1"; else fail "$1" "'$2' not in $3:" "$(head -c 2000 "$3")"; fi; }

# --- cmake --install -------------------------------------------------------
root=$TEST_TMP/root
if cmake --install "$ENVRUN_BUILD" --prefix "$root" >"$TEST_TMP/install.out" 2>&1; then
  ok "cmake --install"
else
  fail "cmake --install" "$(cat "$TEST_TMP/install.out")"
fi
for f in bin/envrun share/man/man1/envrun.1.gz share/man/man5/environment.yml.5.gz \
         share/bash-completion/completions/envrun \
         share/zsh/vendor-completions/_envrun share/envrun/environment.schema.json \
         share/doc/envrun/copyright share/doc/envrun/changelog.gz share/doc/envrun/README.md.gz \
         share/doc/envrun/examples/shop/environment.yml; do
  if [ -f "$root/$f" ]; then ok "installed $f"; else fail "installed $f" "missing"; fi
done
if [ -x "$root/bin/envrun" ] && "$root/bin/envrun" --version | grep -q '^envrun [0-9]'; then
  ok "the installed envrun runs"
else
  fail "the installed envrun runs"
fi
cmp -s "$root/share/envrun/environment.schema.json" "$src/schema/environment.schema.json" &&
  ok "the installed schema is the source's" || fail "the installed schema is the source's"

# --- the man page ------------------------------------------------------------
# groff (groff-base) is used rather than mandoc, which Debian does not install
# by default; -ww turns on every warning, and any output on stderr fails.
man=$src/doc/envrun.1
if ! command -v groff >/dev/null; then
  fail "groff is installed (apt-get install groff-base)"
else
  for p in "$man" "$src/doc/environment.yml.5"; do
    groff -mandoc -Tutf8 -ww -z "$p" >"$TEST_TMP/groff.out" 2>&1; rc=$?
    if [ "$rc" -eq 0 ] && [ ! -s "$TEST_TMP/groff.out" ]; then
      ok "$(basename "$p") renders without warnings"
    else
      fail "$(basename "$p") renders without warnings" "exit $rc" "$(cat "$TEST_TMP/groff.out")"
    fi
  done
  # The check can fail: a page with an unknown macro and an unclosed list warns.
  printf '.Dd x\n.Dt X 1\n.Sh NAME\n.Frob x\n.Bl -tag\n' >"$TEST_TMP/bad.1"
  if [ -n "$(groff -mandoc -Tutf8 -ww -z "$TEST_TMP/bad.1" 2>&1)" ]; then
    ok "groff -ww reports a broken page"
  else
    fail "groff -ww reports a broken page"
  fi
  groff -mandoc -Tutf8 "$man" 2>/dev/null | sed 's/.\x08//g' >"$TEST_TMP/man.txt"
  for s in NAME SYNOPSIS DESCRIPTION ENVIRONMENT FILES "EXIT STATUS" EXAMPLES "SEE ALSO"; do
    has "the man page has $s" "^$s" "$TEST_TMP/man.txt"
  done
  for w in exec validate config graph --timeout --report --junit --timeline --abort-on-failure \
           --state-dir --no-color ENVRUN_PROJECT ENVRUN_STATE_DIR ENVRUN_FORCE_SESSION \
           ENVRUN_NO_PIDFD NO_COLOR 124 125 "129, 130, 143" "envrun exec -- pytest" "npm test"; do
    has "the man page mentions $w" "$w" "$TEST_TMP/man.txt"
  done
fi
if command -v man >/dev/null; then
  if MANWIDTH=80 man -l "$root/share/man/man1/envrun.1.gz" 2>"$TEST_TMP/man.err" | grep -q 'envrun'; then
    ok "man -l renders the installed page"
  else
    fail "man -l renders the installed page" "$(cat "$TEST_TMP/man.err")"
  fi
  if MANPATH=$root/share/man man -w envrun 2>/dev/null | grep -qF "$root/share/man/man1/envrun.1"; then
    ok "man finds envrun(1) under the prefix"
  else
    fail "man finds envrun(1) under the prefix"
  fi
  if MANWIDTH=80 man -l "$root/share/man/man5/environment.yml.5.gz" 2>"$TEST_TMP/man.err" | grep -q 'environment.yml'; then
    ok "man -l renders the installed environment.yml(5)"
  else
    fail "man -l renders the installed environment.yml(5)" "$(cat "$TEST_TMP/man.err")"
  fi
  if MANPATH=$root/share/man man -w 5 environment.yml 2>/dev/null | grep -qF "$root/share/man/man5/environment.yml.5"; then
    ok "man finds environment.yml(5) under the prefix"
  else
    fail "man finds environment.yml(5) under the prefix"
  fi
fi

# --- bash completion ---------------------------------------------------------
bc=$root/share/bash-completion/completions/envrun
out=$(bash -c 'source "$1" && complete -p envrun' _ "$bc" 2>&1)
if [ "$out" = "complete -F _envrun envrun" ]; then ok "the bash completion loads"; else fail "the bash completion loads" "$out"; fi

# comp WORDS...: what the completion offers for the last word, sorted, on one line.
mkdir -p "$TEST_TMP/proj/sub" && cd "$TEST_TMP/proj"
cat >environment.yml <<'EOF'
services:
  db: {command: [sleep, "1"]}
  api.v2:
    command: ./api
    env: {X: "{", Y: "}"}
    depends_on: [db]
EOF
printf 'services:\n  other: {command: [sleep, "1"]}\n' >sub/alt.yaml
touch notes.txt
comp() {
  bash -c '
    source "$1"; shift
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
    _envrun; [ "${#COMPREPLY[@]}" -eq 0 ] || printf "%s\n" "${COMPREPLY[@]}" | sort -u | tr "\n" " "' _ "$bc" "$@"
}
check_comp() {
  local want=$1; shift
  local got; got=$(PATH="$root/bin:$PATH" comp "$@")
  if [ "$got" = "$want" ]; then ok "complete '$*'"; else fail "complete '$*'" "got:  '$got'" "want: '$want'"; fi
}
check_comp "config down env exec graph help logs ls restart start status stop test up validate " envrun ''
check_comp "restart " envrun res
check_comp "--file " envrun --fi
check_comp "--timeline --timeout " envrun exec --ti
check_comp "--timeline --timeout " envrun test --ti
check_comp "--allow-partial " envrun exec --al
check_comp "--json " envrun ls --j
check_comp "--json " envrun env --j
check_comp "environment.yml " envrun test -k env
check_comp "--follow " envrun logs --fo
check_comp "--lines " envrun logs --l
check_comp "--keep " envrun down --k
check_comp "--json " envrun config --j
check_comp "api.v2 db " envrun logs ''
check_comp "api.v2 db " envrun logs -f ''
check_comp "api.v2 " envrun restart a
check_comp "other " envrun -f sub/alt.yaml stop ''
check_comp "other " envrun stop --file sub/alt.yaml ''
check_comp "environment.yml sub " envrun -f ''
check_comp "exec " envrun help ex
check_comp "" envrun up --project ''
# exec: the first word that is not an option starts CMD, completed as a command.
for words in "exec bas" "exec --timeout 5s -- bas" "-q exec --junit j.xml bas"; do
  # shellcheck disable=SC2086
  got=$(comp envrun $words)
  case " $got" in
  *" bash "*) ok "complete 'envrun $words' offers commands" ;;
  *) fail "complete 'envrun $words' offers commands" "got: '$got'" ;;
  esac
done
check_comp "" envrun exec --timeout ''
# Silently nothing: no file, an invalid file, a missing envrun.
mkdir -p "$TEST_TMP/empty" "$TEST_TMP/bad" && printf 'services: [\n' >"$TEST_TMP/bad/environment.yml"
(cd "$TEST_TMP/empty" && check_comp "" envrun logs '')
(cd "$TEST_TMP/bad" && check_comp "" envrun logs '')
got=$(cd "$TEST_TMP/proj" && PATH=/usr/bin:/bin comp no-such-envrun logs '' 2>&1)
[ -z "$got" ] && ok "no envrun: no names, no error" || fail "no envrun: no names, no error" "$got"
cd "$TEST_TMP"

# --- zsh completion ----------------------------------------------------------
# zsh is not in Debian's base system and the test command does not install it,
# so the file is checked by its markers: the #compdef line that compinit reads
# and the completion function it defines and calls.
zc=$root/share/zsh/vendor-completions/_envrun
[ "$(head -n1 "$zc")" = "#compdef envrun" ] && ok "zsh: #compdef envrun" || fail "zsh: #compdef envrun" "$(head -n1 "$zc")"
has "zsh: defines _envrun" "^_envrun() {" "$zc"
has "zsh: completes services from config --json" "config --json" "$zc"
for v in exec test up down status logs ls env start stop restart validate config graph help; do
  has "zsh: knows the verb $v" "'$v:" "$zc"
done

# --- the .deb ----------------------------------------------------------------
# A fresh release build of envrun alone, as a user would package it: CPack in
# the shared build directory would rebuild it while other tests use it.
pb=$TEST_TMP/pkg
if cmake -S "$src" -B "$pb" -DCMAKE_BUILD_TYPE=Release -DENVRUN_TESTS=OFF >"$TEST_TMP/pkg.out" 2>&1 &&
   cmake --build "$pb" -j "$(nproc)" >>"$TEST_TMP/pkg.out" 2>&1 &&
   (cd "$pb" && cpack -G DEB) >>"$TEST_TMP/pkg.out" 2>&1; then
  ok "cpack -G DEB"
else
  fail "cpack -G DEB" "$(tail -n 30 "$TEST_TMP/pkg.out")"
fi
deb=$(ls "$pb"/envrun_*.deb 2>/dev/null | head -n1)
if [ -n "$deb" ] && [ -f "$deb" ]; then
  ok "the .deb is named envrun_VERSION_ARCH.deb"
  dpkg-deb --info "$deb" >"$TEST_TMP/info" 2>&1
  has "deb: Package: envrun" "^ Package: envrun$" "$TEST_TMP/info"
  has "deb: Architecture" "^ Architecture: $(dpkg --print-architecture)$" "$TEST_TMP/info"
  has "deb: Maintainer" "^ Maintainer: ." "$TEST_TMP/info"
  has "deb: Description" "^ Description: ." "$TEST_TMP/info"
  has "deb: Depends" "^ Depends: .*libyaml-0-2, libpcre2-8-0, libjansson4" "$TEST_TMP/info"
  has "deb: Recommends libcurl4" "^ Recommends: libcurl4$" "$TEST_TMP/info"
  if grep -q '^ Depends: .*curl' "$TEST_TMP/info"; then fail "deb: libcurl is not a Depends"; else ok "deb: libcurl is not a Depends"; fi
  dpkg-deb --contents "$deb" >"$TEST_TMP/contents" 2>&1
  for f in usr/bin/envrun usr/share/man/man1/envrun.1.gz usr/share/man/man5/environment.yml.5.gz \
           usr/share/bash-completion/completions/envrun \
           usr/share/zsh/vendor-completions/_envrun usr/share/envrun/environment.schema.json \
           usr/share/doc/envrun/copyright usr/share/doc/envrun/changelog.gz \
           usr/share/doc/envrun/README.md.gz usr/share/doc/envrun/examples/shop/environment.yml; do
    has "deb holds $f" " \./$f$" "$TEST_TMP/contents"
  done
  x=$TEST_TMP/x
  if dpkg -x "$deb" "$x" && "$x/usr/bin/envrun" --version | grep -q '^envrun [0-9]'; then
    ok "the unpacked usr/bin/envrun --version runs"
  else
    fail "the unpacked usr/bin/envrun --version runs"
  fi
  if readelf -S "$x/usr/bin/envrun" 2>/dev/null | grep -q '\.symtab'; then
    fail "deb: the binary is stripped" "it has a .symtab"
  else
    ok "deb: the binary is stripped"
  fi
  zcat "$x/usr/share/man/man1/envrun.1.gz" 2>/dev/null | cmp -s - "$src/doc/envrun.1" &&
    ok "deb: the gzipped man page is the source's" || fail "deb: the gzipped man page is the source's"
  zcat "$x/usr/share/man/man5/environment.yml.5.gz" 2>/dev/null | cmp -s - "$src/doc/environment.yml.5" &&
    ok "deb: the gzipped environment.yml(5) is the source's" ||
    fail "deb: the gzipped environment.yml(5) is the source's"
  # Debian policy, as lintian reads it: no error and no warning (info and
  # pedantic tags are not policy).  tests/run installs lintian.
  if ! command -v lintian >/dev/null; then
    fail "lintian is installed (apt-get install lintian)"
  else
    lintian --fail-on error,warning "$deb" >"$TEST_TMP/lintian" 2>&1
    lrc=$?
    grep -v 'running with root privileges' "$TEST_TMP/lintian" >"$TEST_TMP/lintian.tags"
    if [ "$lrc" -eq 0 ] && ! grep -qE '^[EW]: ' "$TEST_TMP/lintian.tags"; then
      ok "lintian: no error or warning"
    else
      fail "lintian: no error or warning" "exit $lrc" "$(head -20 "$TEST_TMP/lintian.tags")"
    fi
  fi
  # Every library envrun links comes from a package the .deb depends on.
  missing=$(ldd "$x/usr/bin/envrun" | awk '/=>/ {print $3}' | while read -r lib; do
    pkg=$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null | head -n1 | cut -d: -f1)
    [ -z "$pkg" ] && pkg=$(dpkg -S "$lib" 2>/dev/null | head -n1 | cut -d: -f1)
    grep -q "^ Depends: .*\b$pkg\b" "$TEST_TMP/info" || echo "$lib ($pkg)"
  done)
  [ -z "$missing" ] && ok "deb: Depends covers every linked library" ||
    fail "deb: Depends covers every linked library" $missing
else
  fail "the .deb is named envrun_VERSION_ARCH.deb" "$(ls "$pb")"
fi

finish
