# The test of the pytest-xprocess driver: runs the bench's test command
# ("testsvc --record FILE") once every service is up.
import os
import subprocess


def test_services_up(services):
    subprocess.run([os.environ["PEERS_TESTSVC"], "--record", os.environ["PEERS_TEST"]], check=True)
