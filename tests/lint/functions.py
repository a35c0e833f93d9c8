#!/usr/bin/env python3
"""Every function in core/ and cmd/ is at most 100 lines (STYLE, issue 16).

A function is a line that opens with "{" at column 0 up to the next line
that is "}" at column 0 (the house style, clang-format); its length counts
both.  Exit 0 when all hold; otherwise one line per function too long,
exit 1.

    functions.py SRC_DIR
"""
import os
import re
import sys

LIMIT = 100
NAME = re.compile(r'(\w+)\s*\(')


def long_functions(path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    start = None
    for i, line in enumerate(lines):
        if line == "{":
            start = i
        elif line.startswith("}") and start is not None:
            n = i - start + 2  # the signature's line and both braces
            if n > LIMIT:
                k = start - 1
                while k > 0 and lines[k - 1].strip() and not lines[k - 1].endswith((";", "}", "*/")):
                    k -= 1
                head = " ".join(lines[k:start])
                m = NAME.search(head)
                yield start, m.group(1) if m else head.strip(), n
            start = None


def main(src):
    bad = []
    for top in ("core", "cmd"):
        for root, _, files in os.walk(os.path.join(src, top)):
            for name in sorted(files):
                if not name.endswith(".c"):
                    continue
                path = os.path.join(root, name)
                for line, fn, n in long_functions(path):
                    bad.append("%s:%d: %s() is %d lines (at most %d)" %
                               (os.path.relpath(path, src), line, fn, n, LIMIT))
    for b in bad:
        print(b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "."))
