"""Start and stop helper processes (backends, proxies) detached from the caller, by pidfile."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HARNESS = Path(__file__).resolve().parent


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def pid_from(pidfile: Path) -> int:
    try:
        return int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def wait_port(address: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex((address, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {address}:{port} after {timeout}s")


def start_backend(address: str, port: int, label: str, pidfile: Path) -> int:
    pid = pid_from(pidfile)
    if pid and pid_alive(pid):
        return pid
    proc = subprocess.Popen([sys.executable, str(HARNESS / "backend.py"), address, str(port), label],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    pidfile.write_text(str(proc.pid))
    wait_port(address, port)
    return proc.pid


def stop_pidfile(pidfile: Path, sig: int = signal.SIGTERM) -> None:
    pid = pid_from(pidfile)
    if pid and pid_alive(pid):
        try:
            os.kill(pid, sig)
        except OSError:
            return
        for _ignored in range(100):
            if not pid_alive(pid):
                break
            time.sleep(0.02)


def wait_for(check, timeout: float = 8.0):
    """Retry an assertion until it holds (reloads and swaps are asynchronous), then return its value."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except (AssertionError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
