#!/usr/bin/python3
"""Checks schema/environment.schema.json against the repository's environment files.

Usage: check_schema.py SCHEMA ROOT

  1. SCHEMA must itself be a valid JSON Schema (draft 2020-12), every key it
     describes must carry a "description", and every "default" and "examples"
     value must be valid where it is written;
  2. files are read as envrun reads them: YAML 1.2 core scalars (only
     true/false are booleans, "70:70" and "yes" stay strings, 017 is 17),
     merge keys (<<: *anchor) resolved, duplicate keys refused, map keys kept
     as their text;
  3. every *.yml / *.yaml under ROOT/examples/ and ROOT/tests/cases/valid/ must
     validate; every file under ROOT/tests/cases/invalid/ whose first line is
     exactly "# schema: reject" must not (other invalid fixtures hold errors the
     schema cannot see and are skipped);
  4. one line per file, then "N passed, N failed"; exit status 1 on any
     failure or when no file was checked.

Needs Debian's python3-jsonschema (4.10+) and python3-yaml.
"""

import json
import os
import re
import sys

import jsonschema
import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

REJECT_MARK = b"# schema: reject"
YAML_EXTS = (".yml", ".yaml")


# --- YAML 1.2 core schema loader -------------------------------------------

class Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema implicit typing.

    PyYAML implements YAML 1.1: yes/no/on/off are booleans, 70:70 is a
    base-60 integer, 017 is octal, 1_000 is an integer and 2024-01-01 a
    timestamp.  envrun follows YAML 1.2's core schema, where all of those are
    strings (017 is decimal 17), so the implicit resolvers are replaced.
    """

    yaml_implicit_resolvers = {}  # in the class body: start empty, do not inherit 1.1's

    def construct_mapping(self, node, deep=False):
        if not isinstance(node, MappingNode):
            raise ConstructorError(None, None, "expected a map, found %s" % node.id, node.start_mark)
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            if not isinstance(key_node, ScalarNode):
                raise ConstructorError("while reading a map", node.start_mark,
                                       "a map key must be a scalar", key_node.start_mark)
            if key_node.value in seen:
                raise ConstructorError("while reading a map", node.start_mark,
                                       "duplicate key '%s'" % key_node.value, key_node.start_mark)
            seen.add(key_node.value)
        # Resolves <<: *a and <<: [*a, *b] in place: merged pairs first, so the
        # map's own keys (later) win.  The node is left flattened, which
        # node_for_path() below relies on.
        self.flatten_mapping(node)
        mapping = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise ConstructorError("while reading a map", node.start_mark,
                                       "a map key must be a scalar", key_node.start_mark)
            # Keys are text, as in envrun: `1:` or `true:` as a key is "1" or "true".
            mapping[key_node.value] = self.construct_object(value_node, deep=deep)
        return mapping

    def construct_yaml12_int(self, node):
        text = self.construct_scalar(node)
        try:
            sign, digits = 1, text
            if digits[:1] in "+-":
                sign = -1 if digits[0] == "-" else 1
                digits = digits[1:]
            if digits.startswith("0o"):
                return sign * int(digits[2:], 8)
            if digits.startswith("0x"):
                return sign * int(digits[2:], 16)
            return sign * int(digits, 10)
        except ValueError:
            raise ConstructorError(None, None, "invalid integer '%s'" % text, node.start_mark)


Yaml12Loader.add_constructor("tag:yaml.org,2002:int", Yaml12Loader.construct_yaml12_int)
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])
Yaml12Loader.add_implicit_resolver(  # before float: a plain integer is an int
    "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789"))
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+.0123456789"))
Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^<<$"), ["<"])


def load_yaml(path):
    """Returns (data, root node).  The node tree is flattened (merge keys resolved)."""
    with open(path, "rb") as f:
        loader = Yaml12Loader(f)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    return data, node


def node_for_path(node, path):
    """The YAML node at a JSON path (best effort, for line numbers)."""
    for part in path:
        if isinstance(node, MappingNode):
            found = None
            for key_node, value_node in node.value:  # last occurrence wins, as when constructing
                if isinstance(key_node, ScalarNode) and key_node.value == part:
                    found = value_node
            if found is None:
                return node
            node = found
        elif isinstance(node, SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return node
    return node


# --- schema checks ---------------------------------------------------------

def schema_self_check(schema, validator_cls):
    """Returns a list of problems: missing descriptions, invalid defaults/examples."""
    problems = []
    resolver = jsonschema.RefResolver.from_schema(schema)

    def needs_description(sub, where):
        if isinstance(sub, dict) and "description" not in sub:
            problems.append("%s: no description" % where)

    def walk(sub, where):
        if isinstance(sub, list):
            for i, item in enumerate(sub):
                walk(item, "%s/%d" % (where, i))
            return
        if not isinstance(sub, dict):
            return
        for keyword in ("properties", "patternProperties", "$defs"):
            for name, child in sub.get(keyword, {}).items():
                needs_description(child, "%s/%s/%s" % (where, keyword, name))
        if isinstance(sub.get("additionalProperties"), dict) and sub.get("type") == "object":
            needs_description(sub["additionalProperties"], where + "/additionalProperties")
        values = []
        if "default" in sub:
            values.append(("default", sub["default"]))
        for i, example in enumerate(sub.get("examples", [])):
            values.append(("examples/%d" % i, example))
        if values:
            validator = validator_cls(sub, resolver=resolver)
            for label, value in values:
                errors = list(validator.iter_errors(value))
                if errors:
                    error = max(errors, key=jsonschema.exceptions.relevance)
                    problems.append("%s/%s: %r is not valid there: %s"
                                    % (where, label, value, explain(error).message))
        for keyword, child in sub.items():
            if keyword not in ("default", "examples", "const", "enum"):
                walk(child, "%s/%s" % (where, keyword))

    needs_description(schema, "#")
    walk(schema, "#")
    return problems


INTERPOLATED_REF = {"$ref": "#/$defs/interpolated"}


def explain(error):
    """The most telling error under an anyOf/oneOf: not the ${VAR} branch, not
    a branch of the wrong type, not a check kind that is absent."""
    while error.context and error.validator in ("anyOf", "oneOf"):
        branches = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        alternatives = error.validator_value
        for keep in (
            lambda i, errs: alternatives[i] != INTERPOLATED_REF,
            lambda i, errs: not any(e.validator == "type" and not e.relative_path for e in errs),
            lambda i, errs: not any(e.validator == "required" and not e.relative_path for e in errs),
        ):
            kept = {i: errs for i, errs in branches.items() if keep(i, errs)}
            if kept:
                branches = kept
        flat = [e for errs in branches.values() for e in errs]
        if all(e.validator == "type" and not e.relative_path for e in flat):
            types = []
            for e in flat:
                for t in e.validator_value if isinstance(e.validator_value, list) else [e.validator_value]:
                    if t not in types:
                        types.append(t)
            error.message = "%r is not of type %s" % (error.instance, " or ".join(types))
            break
        if len(branches) != 1 and not all(len(errs) == 1 for errs in branches.values()):
            break
        error = jsonschema.exceptions.best_match(flat)
    return error


def describe_errors(errors, node, rel):
    """(FILE:LINE:COL of the first error, "at PATH: message; ...") for validation errors."""
    loc, messages = None, []
    errors = sorted(errors, key=jsonschema.exceptions.relevance, reverse=True)
    for error in errors:
        error = explain(error)
        if loc is None:
            where = node_for_path(node, error.absolute_path) if node is not None else None
            loc = rel
            if where is not None:
                loc = "%s:%d:%d" % (rel, where.start_mark.line + 1, where.start_mark.column + 1)
        path = "/".join(str(p) for p in error.absolute_path) or "(top)"
        message = error.message
        if len(message) > 200:
            message = message[:200] + "..."
        message = "at %s: %s" % (path, message)
        if message not in messages:
            messages.append(message)
    return loc, "; ".join(messages)


def collect(root):
    """(path, expect_valid) pairs, sorted."""
    files = []
    for rel_dir in ("examples", os.path.join("tests", "cases", "valid")):
        top = os.path.join(root, rel_dir)
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            for name in sorted(filenames):
                if name.endswith(YAML_EXTS):
                    files.append((os.path.join(dirpath, name), True))
    top = os.path.join(root, "tests", "cases", "invalid")
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if not os.path.isfile(path):
                continue
            with open(path, "rb") as f:
                first = f.readline()
            if first.rstrip(b"\n").rstrip(b"\r") == REJECT_MARK:
                files.append((path, False))
    return files


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: check_schema.py SCHEMA ROOT\n")
        return 2
    schema_path, root = argv[1], argv[2]
    validator_cls = jsonschema.Draft202012Validator
    passed = failed = 0

    try:
        with open(schema_path, encoding="utf-8") as f:
            schema = json.load(f)
        validator_cls.check_schema(schema)
    except (OSError, ValueError, jsonschema.exceptions.SchemaError) as e:
        print("FAIL %s: not a valid draft 2020-12 schema: %s" % (schema_path, str(e).splitlines()[0]))
        print("0 passed, 1 failed")
        return 1
    problems = schema_self_check(schema, validator_cls)
    for problem in problems:
        print("FAIL schema %s" % problem)
    if problems:
        failed += 1
    else:
        print("ok   schema (valid 2020-12, every key described, defaults and examples valid)")
        passed += 1

    validator = validator_cls(schema)
    files = collect(root)
    for path, expect_valid in files:
        rel = os.path.relpath(path, root)
        try:
            data, node = load_yaml(path)
        except (OSError, yaml.YAMLError) as e:
            print("FAIL %s: cannot load: %s" % (rel, " ".join(str(e).split())))
            failed += 1
            continue
        errors = list(validator.iter_errors(data))
        if expect_valid:
            if not errors:
                print("ok   %s" % rel)
                passed += 1
            else:
                print("FAIL %s: %s" % describe_errors(errors, node, rel))
                failed += 1
        else:
            if errors:
                print("ok   %s: rejected as expected: %s" % describe_errors(errors, node, rel))
                passed += 1
            else:
                print("FAIL %s: marked '# schema: reject' but the schema accepts it" % rel)
                failed += 1

    if not files:
        print("FAIL no environment file found under %s (examples/, tests/cases/)" % root)
        failed += 1
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or not files else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
