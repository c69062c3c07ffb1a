"""A real OpenSSH server on a loopback address, logging in as root with a generated key.

The target's Python is Debian's /usr/bin/python3 started with ``-I -S``: isolated and without
site-packages, so not even Debian's python3-* packages are importable. A module that needed
anything beyond the standard library would fail there, which is the point.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .processes import stop_pidfile, wait_port


@dataclass
class SshTarget:
    address: str
    port: int
    key: Path
    interpreter: Path
    pidfile: Path
    control_dir: str

    def host_vars(self) -> dict[str, str | int]:
        return {
            "ansible_connection": "ssh",
            "ansible_host": self.address,
            "ansible_port": self.port,
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(self.key),
            # A control socket per target: a persisted master from an earlier test would otherwise
            # carry this test's commands to another (old) sshd session.
            # (in a short directory: Unix socket paths are limited to 108 bytes)
            "ansible_ssh_args": f"-C -o ControlMaster=auto -o ControlPersist=30s -o ControlPath={self.control_dir}/%C",
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                                       "-o LogLevel=ERROR",
            "ansible_python_interpreter": str(self.interpreter),
        }

    def stop(self) -> None:
        stop_pidfile(self.pidfile)


def start_sshd(work: Path, address: str, port: int) -> SshTarget:
    with socket.socket() as probe:
        if probe.connect_ex((address, port)) == 0:
            raise RuntimeError(f"{address}:{port} is already taken (a leftover sshd?); cannot start the SSH target")
    work.mkdir(parents=True, exist_ok=True)
    host_key, client_key = work / "ssh_host_ed25519_key", work / "client_key"
    for key in (host_key, client_key):
        if not key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    (work / "authorized_keys").write_text((work / "client_key.pub").read_text())
    os.chmod(work / "authorized_keys", 0o600)
    interpreter = work / "system-python-stdlib-only"
    interpreter.write_text("#!/bin/sh\nexec /usr/bin/python3 -I -S \"$@\"\n")
    interpreter.chmod(0o755)
    pidfile = work / "sshd.pid"
    config = work / "sshd_config"
    config.write_text("\n".join([
        f"ListenAddress {address}", f"Port {port}", f"HostKey {host_key}", f"PidFile {pidfile}",
        f"AuthorizedKeysFile {work / 'authorized_keys'}", "PermitRootLogin prohibit-password",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no",
        "Subsystem sftp /usr/lib/openssh/sftp-server", ""]))
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
    subprocess.run(["/usr/sbin/sshd", "-f", str(config), "-E", str(work / "sshd.log")], check=True)
    wait_port(address, port, pidfile=pidfile)
    return SshTarget(address, port, client_key, interpreter, pidfile, tempfile.mkdtemp(prefix="cm", dir="/tmp"))
