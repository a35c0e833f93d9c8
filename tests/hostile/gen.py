#!/usr/bin/python3
"""Writes the hostile inputs of tests/hostile/README.md into a directory.

usage: gen.py DIR

Standard library only; the output is the same on every run (fixed seed).
"""
import os
import random
import sys

MiB = 1024 * 1024


def alias_bomb():
    """'Billion laughs': 9 levels of 9 aliases, 9**9 leaves once expanded."""
    lines = ['x-lol0: &lol0 "lol"']
    for i in range(1, 10):
        refs = ", ".join(["*lol%d" % (i - 1)] * 9)
        lines.append("x-lol%d: &lol%d [%s]" % (i, i, refs))
    lines += ["services:", "  web:", "    command: *lol9"]
    return ("\n".join(lines) + "\n").encode()


def deep_nesting():
    """200,000 nested flow lists: valid YAML, small (400 KB), very deep."""
    depth = 200000
    return b"[" * depth + b"]" * depth + b"\n"


def huge_scalar():
    """A valid-looking environment.yml whose command is a 10 MB string."""
    head = b'services:\n  web:\n    command: "'
    tail = b'"\n    ready: {tcp: 8080}\n'
    return head + b"x" * (10 * MiB) + tail


def random_bytes():
    """10 MB of noise from a fixed seed: NULs, bad UTF-8, everything."""
    return random.Random(20240229).randbytes(10 * MiB)


FILES = {
    "alias_bomb.yml": alias_bomb,
    "deep_nesting.yml": deep_nesting,
    "huge_scalar.yml": huge_scalar,
    "random_bytes.yml": random_bytes,
}


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: gen.py DIR\n")
        return 2
    out = argv[1]
    os.makedirs(out, exist_ok=True)
    for name, make in FILES.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(make())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
