#!/usr/bin/env bash
# The man pages say what the schema and the command line say (issue 21).
#
# environment.yml(5) against schema/environment.schema.json.  The schema is
# walked through every subschema ($defs, properties, anyOf/oneOf/allOf, items,
# additionalProperties, ...); each object schema with "properties" is one
# object, named by its JSON pointer ("#/$defs/service").  In the page, a
# documented key is a line ".It Ic KEY" (KEY is the first argument; what
# follows, such as "Pq type, default", is its description), and the comment
# ".\" schema: POINTER" just before a ".Bl" says which object that list
# documents.  Checked:
#   - every ".It Ic" line sits directly in a list tagged with an object;
#   - every object of the schema has a tagged list, and every tag names one;
#   - each object's list has an entry for each of its properties, and no
#     other key, except keys matching the object's patternProperties ("x-"),
#     of which there must be one per pattern;
#   - over the whole page: the set of property names of the schema (every
#     level, patternProperties regexes excluded) and the set of documented
#     keys are the same;
#   - where the schema gives a property a default, its entry states it.
#
# envrun(1) against `envrun --help` and `envrun help VERB` (cmd/main.c's
# tables).  A verb's section is ".Ss VERB" under ".Sh COMMANDS", up to the
# next .Ss or .Sh.  Checked, for each verb --help lists: it has a section and
# a ".Cm" in SYNOPSIS; the section has the summary, word for word, on a text
# line (roff escapes such as \- read as what they print); each option of
# `help VERB` has an ".It" line with its "Fl -long", its "Fl x" and its
# "Ar value"; no ".It Fl" line names an option the verb does not have; each
# exit status `help VERB` gives is an ".It" tag of the section; its example
# is on a ".Dl" line.  The global options likewise in ".Ss Global options".
# Each page names the other in SEE ALSO, both render without a warning, and
# each complete example file in them passes `envrun validate`.
. "$(dirname "$0")/lib.sh"
src=$ENVRUN_SRC
page5=${MANPAGE5:-$src/doc/environment.yml.5}
page1=${MANPAGE1:-$src/doc/envrun.1}
schema=$src/schema/environment.schema.json
py=/usr/bin/python3

# --- both pages render without a warning -------------------------------------
for p in "$page1" "$page5"; do
  name=$(basename "$p")
  if command -v man >/dev/null; then
    out=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -l "$p" 2>&1 >/dev/null)
  else
    out=$(groff -mandoc -Tutf8 -ww -z "$p" 2>&1)
  fi
  if [ -z "$out" ]; then ok "$name renders without warnings"; else fail "$name renders without warnings" "$out"; fi
done

# --- what the binary says ----------------------------------------------------
help=$TEST_TMP/help
mkdir -p "$help"
if "$ENVRUN" --help >"$help/--help" 2>&1; then ok "envrun --help"; else fail "envrun --help" "$(cat "$help/--help")"; fi
for v in $(sed -n '/^Verbs:/,/^$/s/^  \([a-z][a-z-]*\) .*/\1/p' "$help/--help"); do
  "$ENVRUN" help "$v" >"$help/$v" 2>&1 || fail "envrun help $v" "$(cat "$help/$v")"
done

# --- the checks ----------------------------------------------------------------
# check.py prints "ok<TAB>label" or "FAIL<TAB>label<TAB>detail" lines.
cat >"$TEST_TMP/check.py" <<'PYEOF'
import json, os, re, sys

schema_path, page5_path, page1_path, help_dir = sys.argv[1:5]

def out(good, label, detail=""):
    print(("ok\t%s" % label) if good else ("FAIL\t%s\t%s" % (label, detail)))

# ---- roff helpers -------------------------------------------------------------
def unescape(s):
    """Roff source text as it reads once printed (the escapes these pages use)."""
    for a, b in (("\\-", "-"), ("\\(em", "\u2014"), ("\\(dq", '"'), ("\\(ga", "`"),
                 ("\\&", ""), ("\\e", "\\"), ("\\ ", " ")):
        s = s.replace(a, b)
    return s

def tokens(line):
    """Arguments of a macro line; "quoted words" are one argument."""
    return [t[1:-1] if t.startswith('"') else t
            for t in re.findall(r'"[^"]*"|\S+', line)]

def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read().split("\n")

def sections(lines, level):
    """{title: [lines]} for .Sh (level "Sh") or .Ss (level "Ss"); a section
    ends at the next .Sh, or .Ss."""
    res, cur = {}, None
    for l in lines:
        if l.startswith(".Sh ") or l.startswith(".Ss "):
            cur = None
            if l.startswith("." + level + " "):
                cur = unescape(l[4:].strip())
                res[cur] = []
            continue
        if cur is not None:
            res[cur].append(l)
    return res

def sh_with_ss(lines, sh):
    """The .Ss titles inside .Sh sh, in order."""
    inside, titles = False, []
    for l in lines:
        if l.startswith(".Sh "):
            inside = l[4:].strip() == sh
        elif inside and l.startswith(".Ss "):
            titles.append(unescape(l[4:].strip()))
    return titles

# ---- the schema ---------------------------------------------------------------
def ptr_join(p, k):
    return p + "/" + str(k).replace("~", "~0").replace("/", "~1")

objects = {}   # pointer -> (properties {name: subschema}, [patternProperties regexes])

def walk(node, p):
    if not isinstance(node, dict):
        return
    if isinstance(node.get("properties"), dict):
        objects[p] = (node["properties"], list(node.get("patternProperties", {}).keys()))
        for k, v in node["properties"].items():
            walk(v, ptr_join(ptr_join(p, "properties"), k))
    for kw in ("$defs", "definitions", "patternProperties", "dependentSchemas"):
        for k, v in (node.get(kw) or {}).items():
            walk(v, ptr_join(ptr_join(p, kw), k))
    for kw in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for i, v in enumerate(node.get(kw) or []):
            walk(v, ptr_join(ptr_join(p, kw), i))
    for kw in ("items", "additionalProperties", "unevaluatedProperties", "propertyNames",
               "contains", "not", "if", "then", "else"):
        walk(node.get(kw), ptr_join(p, kw))

with open(schema_path) as f:
    walk(json.load(f), "#")
out(bool(objects), "the schema has objects with properties (%d)" % len(objects))

# ---- environment.yml(5) -------------------------------------------------------
lines5 = read(page5_path)
lists = {}       # pointer -> [keys] of the tagged list
entries = {}     # (pointer, key) -> the .It line
untagged = []    # .It Ic lines outside a tagged list
stack, pending = [], None
for n, l in enumerate(lines5, 1):
    m = re.match(r'^\.\\"\s*schema:\s*(\S+)\s*$', l)
    if m:
        pending = m.group(1)
        continue
    if l.startswith(".Bl"):
        stack.append(pending)
        if pending is not None:
            if pending in lists:
                out(False, "environment.yml.5: one list per object", "%s tagged twice (line %d)" % (pending, n))
            lists.setdefault(pending, [])
        pending = None
    elif l.startswith(".El"):
        if stack:
            stack.pop()
    elif l.startswith(".It"):
        t = tokens(l)
        if len(t) >= 3 and t[1] == "Ic":
            tag = stack[-1] if stack else None
            if tag is None:
                untagged.append("line %d: %s" % (n, l))
            else:
                lists[tag].append(t[2])
                entries[(tag, t[2])] = l

out(not untagged, "environment.yml.5: every key entry (.It Ic) is in a list tagged with a schema object",
    "; ".join(untagged))
for p in sorted(lists):
    out(p in objects, "environment.yml.5: the tag '%s' names an object of the schema" % p,
        "no object with properties at that pointer")

def default_text(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + ", ".join(default_text(x) for x in v) + "]"
    return str(v)

# A default the page words differently from the schema's value.
DEFAULT_WORDS = {".": "the file's directory"}

all_props, page_keys = set(), set()
for p in sorted(objects):
    props, patterns = objects[p]
    all_props |= set(props)
    if p not in lists:
        out(False, "environment.yml.5 documents %s" % p,
            "no list tagged '.\\\" schema: %s' (keys: %s)" % (p, ", ".join(props)))
        continue
    keys = lists[p]
    page_keys |= set(keys)
    for k in props:
        out(k in keys, "environment.yml.5 %s: '%s' has an entry" % (p, k),
            "no '.It Ic %s' in the list tagged %s" % (k, p))
        if k in keys and isinstance(props[k], dict) and "default" in props[k]:
            d = props[k]["default"]
            want = DEFAULT_WORDS[d] if isinstance(d, str) and d in DEFAULT_WORDS else default_text(d)
            line = unescape(entries[(p, k)])
            good = re.search(r'default:?\s+(?:(?:Ql|Cm|Li)\s+)?' + re.escape(want) + r'(\s|$)',
                             line) is not None
            out(good, "environment.yml.5 %s: '%s' states the schema's default '%s'" % (p, k, want),
                "entry: %s" % entries[(p, k)])
    extra = [k for k in keys if k not in props and not any(re.search(r, k) for r in patterns)]
    out(not extra, "environment.yml.5 %s: every key it lists is in the schema" % p,
        "not properties of %s: %s" % (p, ", ".join(extra)))
    dup = sorted({k for k in keys if keys.count(k) > 1})
    out(not dup, "environment.yml.5 %s: each key once" % p, "twice: %s" % ", ".join(dup))
    for r in patterns:
        out(any(re.search(r, k) for k in keys),
            "environment.yml.5 %s: keys matching '%s' are documented" % (p, r),
            "no '.It Ic' key matching it in the list tagged %s" % p)

patterns_all = [r for _, (_, pats) in objects.items() for r in pats]
missing = sorted(all_props - page_keys)
out(not missing, "environment.yml.5: every property name of the schema (%d) has a key entry" % len(all_props),
    "missing: %s" % ", ".join(missing))
unknown = sorted(k for k in page_keys - all_props if not any(re.search(r, k) for r in patterns_all))
out(not unknown, "environment.yml.5: every key entry is a property of the schema",
    "not in the schema: %s" % ", ".join(unknown))

sa5 = sections(lines5, "Sh").get("SEE ALSO", [])
out(any(tokens(l)[:3] == [".Xr", "envrun", "1"] for l in sa5),
    "environment.yml.5: SEE ALSO names envrun(1)")

# ---- envrun(1) ----------------------------------------------------------------
def read_help(name):
    with open(os.path.join(help_dir, name)) as f:
        return f.read()

OPT_RE = re.compile(r'^  (?:-(\w), |    )--([\w-]+)(?: (\S+))?\s')

def parse_opts(text, header):
    """Options listed after the line `header` up to a blank line:
    [(short or None, long, arg or None)]."""
    res, on = [], False
    for l in text.split("\n"):
        if l.startswith(header):
            on = True
            continue
        if on:
            if not l.strip():
                break
            m = OPT_RE.match(l)
            if m:
                res.append(m.groups())
    return res

def block(text, header):
    """The lines after `header` up to a blank line, joined."""
    lines = text.split("\n")
    for i, l in enumerate(lines):
        if l.startswith(header):
            b = []
            for x in lines[i + 1:]:
                if not x.strip():
                    break
                b.append(x.strip())
            return " ".join(b)
    return ""

def exit_codes(text):
    """The statuses at the head of each clause: "0 ...; 1 ..., 129/130/143 ..."."""
    codes = set()
    for clause in re.split(r"[;,]", text):
        m = re.match(r'\s*(\d+(?:/\d+)*)\b', clause)
        if m:
            codes |= set(m.group(1).split("/"))
    return codes

def it_has_opt(it_lines, short, long, arg):
    for l in it_lines:
        t = tokens(l)
        pairs = list(zip(t, t[1:]))
        if ("Fl", "-" + long) not in pairs:
            continue
        if short and ("Fl", short) not in pairs:
            return False, "'%s' has no 'Fl %s'" % (l, short)
        if arg and ("Ar", arg.lower()) not in pairs:
            return False, "'%s' has no 'Ar %s'" % (l, arg.lower())
        return True, ""
    return False, "no '.It' line with 'Fl -%s'" % long

def fl_longs(it_lines):
    res = []
    for l in it_lines:
        t = tokens(l)
        if len(t) > 2 and t[1] == "Fl":
            res += [b[1:] for a, b in zip(t, t[1:]) if a == "Fl" and b.startswith("-")]
    return res

lines1 = read(page1_path)
usage = read_help("--help")
verbs = re.findall(r'^  ([a-z][a-z-]*)\s{2,}(\S.*)$',
                   usage.split("Verbs:", 1)[1].split("\n\n", 1)[0], re.M) if "Verbs:" in usage else []
out(len(verbs) >= 10, "envrun --help lists the verbs (%d)" % len(verbs))
verb_names = [v for v, _ in verbs]
ss = sections(lines1, "Ss")
commands = sh_with_ss(lines1, "COMMANDS")
synopsis = " ".join(" ".join(tokens(l)) for l in sections(lines1, "Sh").get("SYNOPSIS", [])
                    if l.startswith(".Cm "))

for verb, summary in verbs:
    if verb not in commands:
        out(False, "envrun.1: '%s' has a section under COMMANDS" % verb, "no '.Ss %s'" % verb)
        continue
    out(True, "envrun.1: '%s' has a section under COMMANDS" % verb)
    sec = ss[verb]
    text = [unescape(l) for l in sec if not l.startswith(".")]
    out(any(summary in l for l in text), "envrun.1 %s: the summary of --help" % verb,
        "no text line with '%s'" % summary)
    out(re.search(r'(^|\s)' + re.escape(verb) + r'(\s|$)', synopsis) is not None,
        "envrun.1 SYNOPSIS: %s" % verb, "no '.Cm %s'" % verb)
    vh = read_help(verb)
    its = [l for l in sec if l.startswith(".It")]
    opts = parse_opts(vh, "Options:")
    for short, long, arg in opts:
        good, why = it_has_opt(its, short, long, arg)
        name = ("-%s, --%s" % (short, long) if short else "--" + long) + (" " + arg if arg else "")
        out(good, "envrun.1 %s: option %s" % (verb, name), why)
    stray = [o for o in fl_longs(its) if o not in {l for _, l, _ in opts}]
    out(not stray, "envrun.1 %s: no option the verb does not have" % verb,
        "not in 'envrun help %s': %s" % (verb, ", ".join(stray)))
    want = exit_codes(block(vh, "Exit status:"))
    have = {c for l in its for c in re.findall(r'\b\d+\b', l)}
    out(want and want <= have, "envrun.1 %s: exit statuses %s" % (verb, "/".join(sorted(want, key=int))),
        "no '.It' for %s" % ", ".join(sorted(want - have, key=int)) if want else "help gives none")
    example = block(vh, "Example:")
    dl = [unescape(l) for l in sec if l.startswith(".Dl ")]
    out(example and any(example in l for l in dl), "envrun.1 %s: the example of help %s" % (verb, verb),
        "no '.Dl' line with '%s'" % example)

stale = [t for t in commands if t not in verb_names]
out(not stale, "envrun.1: every section under COMMANDS is a verb of --help",
    "not verbs: %s" % ", ".join(stale))

gsec = ss.get("Global options", [])
gits = [l for l in gsec if l.startswith(".It")]
gopts = parse_opts(usage, "Global options")
out(len(gopts) >= 5, "envrun --help lists the global options (%d)" % len(gopts))
for short, long, arg in gopts:
    good, why = it_has_opt(gits, short, long, arg)
    name = ("-%s, --%s" % (short, long) if short else "--" + long) + (" " + arg if arg else "")
    out(good, "envrun.1 Global options: %s" % name, why)
stray = [o for o in fl_longs(gits) if o not in {l for _, l, _ in gopts}]
out(not stray, "envrun.1 Global options: no option envrun does not have", ", ".join(stray))

sa1 = sections(lines1, "Sh").get("SEE ALSO", [])
out(any(tokens(l)[:3] == [".Xr", "environment.yml", "5"] for l in sa1),
    "envrun.1: SEE ALSO names environment.yml(5)")
desc = sections(lines1, "Sh").get("DESCRIPTION", [])
out(any(tokens(l)[:3] == [".Xr", "environment.yml", "5"] for l in desc),
    "envrun.1: DESCRIPTION points to environment.yml(5) for the file format")
PYEOF

"$py" "$TEST_TMP/check.py" "$schema" "$page5" "$page1" "$help" >"$TEST_TMP/check.out" 2>&1
rc=$?
while IFS=$'\t' read -r verdict label detail; do
  case $verdict in
  ok) ok "$label" ;;
  FAIL) fail "$label" "$detail" ;;
  *) fail "check.py: $verdict $label" ;;
  esac
done <"$TEST_TMP/check.out"
[ "$rc" -eq 0 ] || fail "check.py exits 0" "exit $rc"

# --- the pages' complete examples are valid files ----------------------------
# A ".Bd -literal" block with a top-level "services:" line is a whole file:
# `envrun validate` must accept it.
ex=$TEST_TMP/examples
mkdir -p "$ex"
"$py" - "$ex" "$page5" "$page1" <<'PYEOF'
import os, sys
d = sys.argv[1]
for page in sys.argv[2:]:
    block, n = None, 0
    for l in open(page, encoding="utf-8").read().split("\n"):
        if l.startswith(".Bd -literal"):
            block = []
        elif l.startswith(".Ed") and block is not None:
            if "services:" in block:
                n += 1
                text = "\n".join(block).replace("\\e", "\\").replace("\\&", "") + "\n"
                name = "%s.%d.yml" % (os.path.basename(page), n)
                open(os.path.join(d, name), "w").write(text)
            block = None
        elif block is not None:
            block.append(l)
PYEOF
n=0
for f in "$ex"/*.yml; do
  [ -e "$f" ] || continue
  n=$((n + 1))
  if out=$("$ENVRUN" -f "$f" validate 2>&1); then
    ok "$(basename "$f" .yml): the example is a valid file"
  else
    fail "$(basename "$f" .yml): the example is a valid file" "$out" "$(cat "$f")"
  fi
done
[ "$n" -ge 3 ] && ok "the pages hold complete examples ($n)" || fail "the pages hold complete examples ($n)"

finish
