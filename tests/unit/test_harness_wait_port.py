"""The harness's readiness check: a leftover listener must not pass for the server just started."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from tests.harness.processes import wait_port


def test_a_listener_of_another_process_is_not_taken_for_ours():
    with socket.create_server(("127.0.0.91", 0)) as leftover:  # this test process holds the port
        port = leftover.getsockname()[1]
        ours = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            with pytest.raises(RuntimeError, match="not by the one started"):
                wait_port("127.0.0.91", port, timeout=1, pid=ours.pid)
        finally:
            ours.kill()
            ours.wait()


def test_the_started_process_listening_passes():
    server = subprocess.Popen([sys.executable, "-c", (
        "import socket, time; s = socket.create_server(('127.0.0.92', 0)); print(s.getsockname()[1], flush=True);"
        " time.sleep(30)")], stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())
        wait_port("127.0.0.92", port, timeout=5, pid=server.pid)
    finally:
        server.kill()
        server.wait()
