"""A real BIND 9 (Debian's named) on 127.0.0.1 (BIND only listens on interface addresses,
and 127.0.0.1 is the one lo carries), primary for one zone, accepting
TSIG-signed RFC 2136 updates of TXT records only."""

from __future__ import annotations

import base64
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .processes import stop_pidfile, wait_port


@dataclass
class BindServer:
    address: str
    port: int
    zone: str
    key_name: str
    key_secret: str
    key_algorithm: str
    pidfile: Path

    def stop(self) -> None:
        stop_pidfile(self.pidfile)


def start_bind(work: Path, address: str, port: int, zone: str = "dns.test",
               key_algorithm: str = "hmac-sha256", records: str = "") -> BindServer:
    """``records``: more zone-file lines (relative or absolute owners), e.g. CAA records."""
    work.mkdir(parents=True, exist_ok=True)
    secret = base64.b64encode(os.urandom(32)).decode()
    key_name = "certops-test-key"
    (work / f"{zone}.zone").write_text(f"""$TTL 60
@   IN SOA ns1.{zone}. hostmaster.{zone}. ( 1 60 60 3600 60 )
    IN NS  ns1.{zone}.
ns1 IN A   {address}
{records}
""")
    pidfile = work / "named.pid"
    (work / "named.conf").write_text(f"""options {{
    directory "{work}";
    pid-file "{pidfile}";
    listen-on port {port} {{ {address}; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify no;
}};
controls {{ }};
key "{key_name}" {{ algorithm {key_algorithm}; secret "{secret}"; }};
zone "{zone}" {{
    type primary;
    file "{work}/{zone}.zone";
    update-policy {{ grant {key_name} zonesub TXT; }};
}};
""")
    subprocess.run(["named", "-c", str(work / "named.conf"), "-u", "root", "-L", str(work / "named.log")],
                   check=True)
    wait_port(address, port, pidfile=pidfile)
    return BindServer(address, port, zone, key_name, secret, key_algorithm, pidfile)
