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


def _zone_file(zone: str, address: str, records: str) -> str:
    return f"""$TTL 60
@   IN SOA ns1.{zone}. hostmaster.{zone}. ( 1 60 60 3600 60 )
    IN NS  ns1.{zone}.
ns1 IN A   {address}
{records}
"""


def _run_named(work: Path, address: str, port: int, options: str, body: str) -> Path:
    """Start named on ``address``:``port`` with ``options`` added to the shared ones and
    ``body`` (keys, zones) after them; returns its pidfile once it listens."""
    pidfile = work / "named.pid"
    (work / "named.conf").write_text(f"""options {{
    directory "{work}";
    pid-file "{pidfile}";
    listen-on port {port} {{ {address}; }};
    listen-on-v6 {{ none; }};
    dnssec-validation no;
    notify no;
{options}}};
controls {{ }};
{body}""")
    subprocess.run(["named", "-c", str(work / "named.conf"), "-u", "root", "-L", str(work / "named.log")],
                   check=True)
    wait_port(address, port, pidfile=pidfile)
    return pidfile


def start_bind(work: Path, address: str, port: int, zone: str = "dns.test",
               key_algorithm: str = "hmac-sha256", records: str = "", updatable: bool = True,
               more_zones: dict[str, tuple[str, bool]] | None = None) -> BindServer:
    """``records``: more zone-file lines (relative or absolute owners), e.g. CAA records.
    ``updatable``: whether the TSIG key may update ``zone``'s TXT records. ``more_zones``:
    {zone: (records, updatable)} served beside it (a delegated _acme-challenge zone)."""
    work.mkdir(parents=True, exist_ok=True)
    secret = base64.b64encode(os.urandom(32)).decode()
    key_name = "certops-test-key"
    zones = {zone: (records, updatable), **(more_zones or {})}
    for name, (zone_records, _ignored) in zones.items():
        (work / f"{name}.zone").write_text(_zone_file(name, address, zone_records))
    body = f"""key "{key_name}" {{ algorithm {key_algorithm}; secret "{secret}"; }};
""" + "".join(f"""zone "{name}" {{
    type primary;
    file "{work}/{name}.zone";
    {f"update-policy {{ grant {key_name} zonesub TXT; }};" if can_update else ""}
}};
""" for name, (_ignored, can_update) in zones.items())
    pidfile = _run_named(work, address, port, "    recursion no;\n", body)
    return BindServer(address, port, zone, key_name, secret, key_algorithm, pidfile)


def start_resolver(work: Path, address: str, port: int, zones: dict[str, tuple[str, int]]) -> BindServer:
    """A recursive BIND that answers each of ``zones`` by asking its server (address, port):
    what a CA's resolver does - it follows a CNAME from one zone into another, which an
    authoritative server (recursion off) never does."""
    work.mkdir(parents=True, exist_ok=True)
    forwards = "".join(f"""zone "{zone}" {{ type forward; forward only;
    forwarders {{ {server[0]} port {server[1]}; }}; }};
""" for zone, server in zones.items())
    options = """    recursion yes;
    allow-recursion { any; };
    max-cache-ttl 1;
    max-ncache-ttl 1;
"""
    pidfile = _run_named(work, address, port, options, forwards)
    return BindServer(address, port, next(iter(zones)), "", "", "", pidfile)
