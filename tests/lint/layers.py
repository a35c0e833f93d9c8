#!/usr/bin/env python3
"""The layering of core/ (doc/design.md, "Architecture"), checked on the sources.

Every envrun header is included with its folder ("proc/spawn.h"): a bare
name could be a system header's (err.h, sched.h, spawn.h).  A folder
includes only its own headers and those of the layers below it.  Exit 0
when all holds; otherwise one line per breach, exit 1.

    layers.py SRC_DIR
"""
import os
import re
import sys

# Lowest first; a folder may include the folders of lower rank.  Folders of
# one rank do not include each other.
RANK = {
    "base": 0,
    "model": 1,
    "proc": 2,
    "checks": 3, "report": 3, "instance": 3,
    "sched": 4,
    "api": 5,
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def main(src):
    core = os.path.join(src, "core")
    bad = []
    seen = 0
    for folder in sorted(os.listdir(core)):
        path = os.path.join(core, folder)
        if not os.path.isdir(path):
            bad.append(f"core/{folder}: a file outside the layer folders")
            continue
        if folder not in RANK:
            bad.append(f"core/{folder}/: a folder no layer names (tests/lint/layers.py)")
            continue
        for name in sorted(os.listdir(path)):
            if not name.endswith((".c", ".h")):
                continue
            seen += 1
            rel = f"core/{folder}/{name}"
            with open(os.path.join(path, name), encoding="utf-8") as f:
                text = f.read()
            for inc in INCLUDE.findall(text):
                if "/" not in inc:
                    bad.append(f'{rel}: "{inc}" without its folder')
                    continue
                dep = inc.split("/")[0]
                if dep not in RANK:
                    bad.append(f'{rel}: "{inc}" is in no layer')
                elif dep != folder and RANK[dep] >= RANK[folder]:
                    bad.append(f'{rel}: includes "{inc}", a layer not below {folder}/')
                elif not os.path.exists(os.path.join(core, inc)):
                    bad.append(f'{rel}: "{inc}" does not exist')
    for line in bad:
        print(line)
    print(f"{seen} files, {len(bad)} breaches")
    return 1 if bad or not seen else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "."))
