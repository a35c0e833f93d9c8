#!/usr/bin/env python3
"""ptree: snapshots of a process tree, to prove that nothing of it survives.

  ptree.py snap PID            every descendant of PID: "pid starttime comm"
  ptree.py snap-envrun         the same for the nearest ancestor of this
                               process whose name is "envrun" (a test
                               command run by envrun: its tree is the
                               instance's, whatever the containment)
  ptree.py alive FILE          the lines of a snapshot whose process still
                               runs (same pid and start time; zombies count
                               as gone), one per line; exit 1 when any

Reads /proc only; the start time tells a reused pid from the original.
"""
import os
import sys


def stat(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    comm = s[s.index("(") + 1:s.rindex(")")]
    rest = s[s.rindex(")") + 2:].split()
    # rest[0] is field 3 (state); field 4 ppid, field 22 starttime
    return {"state": rest[0], "ppid": int(rest[1]), "start": rest[19], "comm": comm}


def snapshot(root):
    kids = {}
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        st = stat(int(e))
        if st:
            kids.setdefault(st["ppid"], []).append((int(e), st))
    out, todo = [], [root]
    while todo:
        for pid, st in kids.get(todo.pop(), []):
            out.append("%d %s %s" % (pid, st["start"], st["comm"]))
            todo.append(pid)
    return out


def envrun_ancestor():
    pid = os.getppid()
    while pid > 1:
        st = stat(pid)
        if not st:
            break
        if st["comm"] == "envrun":
            return pid
        pid = st["ppid"]
    sys.exit("ptree: no envrun above %d" % os.getpid())


def alive(path):
    left = []
    with open(path) as f:
        for line in f:
            parts = line.split(None, 2)
            if len(parts) < 2:
                continue
            st = stat(int(parts[0]))
            if st and st["start"] == parts[1] and st["state"] not in "ZX":
                left.append(line.rstrip("\n"))
    return left


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "snap":
        print("\n".join(snapshot(int(sys.argv[2]))))
    elif len(sys.argv) == 2 and sys.argv[1] == "snap-envrun":
        print("\n".join(snapshot(envrun_ancestor())))
    elif len(sys.argv) == 3 and sys.argv[1] == "alive":
        left = alive(sys.argv[2])
        if left:
            print("\n".join(left))
            sys.exit(1)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
