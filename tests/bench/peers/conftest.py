# pytest-xprocess driver for tests/bench/peers.sh: one xprocess fixture per
# fake service, each ready when it has printed "listening" (after it listens)
# and its port accepts a connection, as a pytest-xprocess user would write it.
#   PEERS_TESTSVC  the fake service binary
#   PEERS_PORTS    space-separated ports, one service each
#   PEERS_DIR      where the services record their ready moment (ready.N)
#   PEERS_WAIT     seconds each service waits before that (peers.sh --wait)
import os
import socket

import pytest
from xprocess import ProcessStarter


def _starter(i, port):
    class Starter(ProcessStarter):
        pattern = "listening"
        timeout = 30
        args = [os.environ["PEERS_TESTSVC"], "--sleep", os.environ.get("PEERS_WAIT", "0"),
            "--record", os.path.join(os.environ["PEERS_DIR"], "ready.%d" % i),
            "--tcp", str(port), "--stdout", "listening", "--hold"]
        terminate_on_interrupt = True

        def startup_check(self):
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                return True
            except OSError:
                return False
    return Starter


@pytest.fixture
def services(xprocess):
    ports = [int(p) for p in os.environ["PEERS_PORTS"].split()]
    names = []
    for i, port in enumerate(ports):
        name = "svc%d" % i
        xprocess.ensure(name, _starter(i, port))
        names.append(name)
    yield ports
    for name in names:
        xprocess.getinfo(name).terminate()
