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


def _listening_inodes(address: str, port: int, seen_by: int) -> set[str]:
    """Socket inodes in LISTEN state on ``address``:``port`` (or a wildcard), in the network
    namespace of process ``seen_by`` (/proc/PID/net shows that process's namespace: a server
    started in a namespace of its own is found there)."""
    wanted = {socket.inet_aton(address)[::-1].hex().upper(), "00000000"} if "." in address else set()
    inodes = set()
    for table in (f"/proc/{seen_by}/net/tcp", f"/proc/{seen_by}/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local_address, local_port = fields[1].split(":")
            if fields[3] == "0A" and int(local_port, 16) == port and (
                    table.endswith("tcp6") or local_address in wanted):
                inodes.add(fields[9])
    return inodes


def _owners(inodes: set[str]) -> set[int]:
    targets = {f"socket:[{inode}]" for inode in inodes}
    owners = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in targets:
                    owners.add(int(proc.name))
                    break
        except OSError:
            continue
    return owners


def _descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return False
    return False


def kill_tree(pid: int) -> None:
    """SIGKILL a process and every process descending from it (ansible-playbook's workers start
    sessions of their own, so killing its process group is not enough)."""
    family = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _descends_from(int(p.name), pid)]
    for member in family:
        try:
            os.kill(member, signal.SIGKILL)
        except OSError:
            pass


def wait_port(address: str, port: int, timeout: float = 10.0, *, pid: int = 0,
              pidfile: Path | None = None) -> None:
    """Wait until the process we started listens on ``address``:``port``: ``pid`` or the PID in
    ``pidfile`` (for daemons that fork), or one of its children. A leftover process from an
    earlier run, holding the port while ours failed to bind, does not count."""
    deadline = time.monotonic() + timeout
    seen_other = set()
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as sock:
            sock.settimeout(0.2)
            connected = sock.connect_ex((address, port)) == 0
        if connected:
            starter = pid or (pid_from(pidfile) if pidfile else 0)
            if not starter and not pidfile:
                raise RuntimeError("wait_port needs the pid or pidfile of the process that should listen")
            owners = _owners(_listening_inodes(address, port, starter)) if starter else set()
            if any(_descends_from(owner, starter) for owner in owners):
                return
            seen_other |= owners
        time.sleep(0.05)
    if seen_other:
        raise RuntimeError(f"{address}:{port} is held by process(es) {sorted(seen_other)}, not by the one "
                           f"started ({pid or pidfile}); a leftover from an earlier run?")
    raise RuntimeError(f"nothing listens on {address}:{port} after {timeout}s")


def start_backend(address: str, port: int, label: str, pidfile: Path) -> int:
    pid = pid_from(pidfile)
    if pid and pid_alive(pid):
        return pid
    proc = subprocess.Popen([sys.executable, str(HARNESS / "backend.py"), address, str(port), label],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    pidfile.write_text(str(proc.pid))
    wait_port(address, port, pid=proc.pid)
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
