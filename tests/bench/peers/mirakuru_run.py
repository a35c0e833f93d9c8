# mirakuru driver for tests/bench/peers.sh: starts each fake service with a
# TCPExecutor (readiness: the port accepts a connection), one after the other
# as a mirakuru user would, runs the test command, then stops every executor.
#   mirakuru_run.py TESTSVC DIR TESTFILE PORT...
# PEERS_WAIT: seconds each service waits before it records and listens
# (peers.sh --wait; 0 when unset).
import os
import subprocess
import sys

from mirakuru import TCPExecutor


def main():
    testsvc, d, testfile, ports = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    wait = os.environ.get("PEERS_WAIT", "0")
    execs = []
    try:
        for i, port in enumerate(ports):
            cmd = [testsvc, "--sleep", wait, "--record", "%s/ready.%d" % (d, i),
                   "--tcp", port, "--hold"]
            e = TCPExecutor(cmd, host="127.0.0.1", port=int(port), timeout=30)
            e.start()
            execs.append(e)
        return subprocess.run([testsvc, "--record", testfile]).returncode
    finally:
        for e in reversed(execs):
            e.stop()


if __name__ == "__main__":
    sys.exit(main())
