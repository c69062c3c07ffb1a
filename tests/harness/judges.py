"""Judges nobody here wrote: sslyze (its own virtualenv, .venv-sslyze: it pins an older
cryptography than the collection is tested with) for what a TLS listener serves."""

from __future__ import annotations

import hashlib
import json
import re
import ssl
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SSLYZE_PYTHON = REPO / ".venv-sslyze" / "bin" / "python"


@dataclass
class SslyzeReport:
    returncode: int
    output: str
    scan: dict[str, Any]

    @property
    def mozilla_compliant(self) -> bool:
        return self.returncode == 0 and ": OK - Compliant." in self.output and "Not compliant" not in self.output

    def failed_rules(self) -> set[str]:
        """The Mozilla rules sslyze reports as broken (``* rule: why`` under "Not compliant")."""
        failed = self.output.partition("Not compliant.")[2]
        return set(re.findall(r"^\s+\* ([a-z0-9_]+):", failed.partition("\n\n")[0], re.MULTILINE))

    def curves(self) -> set[str]:
        result = self.scan["server_scan_results"][0]["scan_result"]["elliptic_curves"]["result"]
        return {curve["name"] for curve in result["supported_curves"]}


def sslyze(address: str, port: int, name: str, root_file: str, profile: str = "intermediate") -> SslyzeReport:
    """sslyze's Mozilla compliance check for ``profile`` and its curve scan, against the
    listener at ``address``:``port`` with SNI ``name``; ``root_file`` is the test CA's root,
    which sslyze adds to its trust stores (the chain must validate to pass)."""
    if not SSLYZE_PYTHON.exists():
        raise RuntimeError(f"{SSLYZE_PYTHON} is missing: scripts/setup.sh makes it (tests/requirements-sslyze.txt)")
    with tempfile.TemporaryDirectory() as work:
        out = Path(work) / "scan.json"
        done = subprocess.run([str(SSLYZE_PYTHON), "-m", "sslyze", f"--mozilla_config={profile}", "--elliptic_curves",
                               f"--certinfo_ca_file={root_file}", f"--json_out={out}", f"{name}:{port}{{{address}}}"],
                              capture_output=True, text=True, timeout=180, check=False)
        scan = json.loads(out.read_text()) if out.exists() else {}
    return SslyzeReport(done.returncode, done.stdout + done.stderr, scan)


#: TLS 1.2 suites of one certificate algorithm: a client that offers only these gets that kind.
ONLY = {"rsa": "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384",
        "ecdsa": "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384"}


def served_sha256(address: str, port: int, name: str, only: str = "") -> str:
    """SHA-256 of the leaf the listener presents for ``name``: to a current client, or (``only``
    ecdsa or rsa) to a TLS 1.2 client that supports only that algorithm."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # which certificate is served is judged here, not its chain
    if only:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(ONLY[only])
    with socket.create_connection((address, port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=name) as tls:
            der = tls.getpeercert(binary_form=True) or b""
    return hashlib.sha256(der).hexdigest()


def resumes_session(address: str, port: int, name: str, version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
                    attempts: int = 5) -> int:
    """How many of ``attempts`` reconnections resumed the first session: by its ID in TLS 1.2,
    by a (stateful) ticket in TLS 1.3. Each connection reads one HTTP answer, so a TLS 1.3
    ticket, sent after the handshake, has arrived before the session is taken."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # resumption is judged here, not the chain
    context.minimum_version = context.maximum_version = version
    session = None
    resumed = 0
    for _attempt in range(attempts + 1):
        with socket.create_connection((address, port), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname=name, session=session) as tls:
                tls.sendall(f"HEAD / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
                while tls.recv(65536):
                    pass
                resumed += int(session is not None and tls.session_reused)
                session = session or tls.session
    return resumed
