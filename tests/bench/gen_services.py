#!/usr/bin/env python3
"""Writes an environment.yml with N services (default 200) that exercises
the parser the way a large real file does: dependencies, checks, env,
interpolation, durations."""
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
out = ["name: bench", "ports: [P0, P1, P2]", "env:", "  LOG_LEVEL: info", "services:"]
for i in range(n):
    out += [
        f"  svc{i}:",
        f"    command: [./server, --port, \"${{P{i % 3}}}\", --id, \"{i}\", --name, svc{i}]",
        "    env:",
        f"      ID: \"{i}\"",
        "      MODE: ${MODE:-fast}",
        "    timeout: 30s",
        "    stop_timeout: 2s",
        "    sig_stop: SIGINT",
        "    ready:",
        f"      - output: \"^ready svc{i} on port [0-9]+$\"",
        f"      - tcp: 127.0.0.1:${{P{i % 3}}}",
        "        interval: 20ms",
    ]
    deps = [f"svc{j}" for j in (i - 1, i // 2, i // 3) if 0 <= j < i]
    deps = sorted(set(deps))
    if deps:
        out.append("    depends_on: [" + ", ".join(deps) + "]")
print("\n".join(out))
