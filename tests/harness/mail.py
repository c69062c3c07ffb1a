"""A real Postfix (Debian's postfix) as one of a host's services: its own configuration
directory, queue and log, an SMTP listener with STARTTLS on a loopback address and an
unprivileged port. The system's Postfix configuration is never read or touched (-c DIR)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

MASTER_CF = "/etc/postfix/master.cf"


class Postfix:
    def __init__(self, address: str, port: int, key_path: Path, chain_path: Path) -> None:
        # Not under pytest's temporary directory: Postfix's daemons run as the postfix user,
        # which must reach the queue (pytest's directories are the root user's alone).
        self.dir = Path(tempfile.mkdtemp(prefix="certops-postfix-"))
        self.dir.chmod(0o755)
        (self.dir / "data").mkdir()
        (self.dir / "queue").mkdir()
        shutil.chown(self.dir / "data", "postfix")
        (self.dir / "main.cf").write_text("\n".join([
            "compatibility_level = 3.6", f"queue_directory = {self.dir}/queue", f"data_directory = {self.dir}/data",
            "mail_owner = postfix", "inet_interfaces = all", "inet_protocols = ipv4", "myhostname = mail.test",
            "mydestination =", f"maillog_file = {self.dir}/maillog", f"maillog_file_prefixes = {self.dir}",
            f"smtpd_tls_chain_files = {key_path}, {chain_path}", "smtpd_tls_security_level = may", ""]))
        master = Path(MASTER_CF).read_text().splitlines()
        # The smtp listener on our address and port; no chroot (the queue is not a jail).
        master = [f"{address}:{port} inet n - n - - smtpd" if line.startswith("smtp ") and " inet " in line else line
                  for line in master]
        (self.dir / "master.cf").write_text("\n".join(master) + "\n")
        subprocess.run(["postconf", "-c", str(self.dir), "-F", "*/*/chroot = n"], check=True)
        self.address, self.port = address, port

    @property
    def reload_command(self) -> str:
        return f"postfix -c {self.dir} reload"

    def start(self) -> None:
        subprocess.run(["postfix", "-c", str(self.dir), "start"], check=True, capture_output=True)

    def log(self) -> str:
        path = self.dir / "maillog"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        subprocess.run(["postfix", "-c", str(self.dir), "stop"], capture_output=True, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
