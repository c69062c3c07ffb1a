"""A real PowerDNS authoritative server (Debian's pdns-server + pdns-backend-sqlite3) on
loopback, with its HTTP API on, for the dns-01 providers driven through dns-lexicon.

The server runs in the foreground of its own process group from a private configuration
directory; the zones are created through the same HTTP API lexicon then uses."""

from __future__ import annotations

import json
import secrets
import sqlite3
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .processes import stop_pidfile, wait_port

SCHEMA = Path("/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql")


@dataclass
class PowerDnsServer:
    address: str
    dns_port: int
    api_port: int
    api_key: str
    pidfile: Path

    @property
    def api_url(self) -> str:
        return f"http://{self.address}:{self.api_port}"

    def api(self, method: str, path: str, body: object = None) -> object:
        request = urllib.request.Request(f"{self.api_url}/api/v1/servers/localhost{path}", method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"X-API-Key": self.api_key, "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read()
        return json.loads(text) if text else None

    def add_zone(self, zone: str, records: list[tuple[str, str, str]] = ()) -> None:
        """A native zone with its SOA and NS, and more (name, type, content) records."""
        fqdn = zone.rstrip(".") + "."
        rrsets = [{"name": (name.rstrip(".") + "."), "type": rtype, "ttl": 60, "changetype": "REPLACE",
                   "records": [{"content": content, "disabled": False}]} for name, rtype, content in records]
        self.api("POST", "/zones", {"name": fqdn, "kind": "Native", "nameservers": [f"ns1.{fqdn}"],
                                    "rrsets": rrsets})

    def txt_values(self, name: str) -> set[str]:
        zone = ".".join(name.rstrip(".").split(".")[-2:]) + "."
        data = self.api("GET", f"/zones/{zone}")
        assert isinstance(data, dict)
        return {r["content"].strip('"') for rrset in data.get("rrsets", [])
                if rrset["type"] == "TXT" and rrset["name"] == name.rstrip(".") + "." for r in rrset["records"]}

    def stop(self) -> None:
        stop_pidfile(self.pidfile)


def start_powerdns(work: Path, address: str, dns_port: int, api_port: int) -> PowerDnsServer:
    work.mkdir(parents=True, exist_ok=True)
    database = work / "pdns.sqlite3"
    if not database.exists():
        with sqlite3.connect(database) as db:
            db.executescript(SCHEMA.read_text())
    api_key = secrets.token_hex(16)
    (work / "pdns.conf").write_text(f"""launch=gsqlite3
gsqlite3-database={database}
local-address={address}
local-port={dns_port}
api=yes
api-key={api_key}
webserver=yes
webserver-address={address}
webserver-port={api_port}
webserver-allow-from=127.0.0.0/8
socket-dir={work}
daemon=no
guardian=no
disable-syslog=yes
loglevel=4
""")
    log = open(work / "pdns.log", "ab")  # noqa: SIM115 - the server keeps it
    proc = subprocess.Popen(["pdns_server", f"--config-dir={work}"], stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    pidfile = work / "pdns.pid.harness"
    pidfile.write_text(str(proc.pid))
    wait_port(address, api_port, pid=proc.pid)
    wait_port(address, dns_port, pid=proc.pid)
    return PowerDnsServer(address, dns_port, api_port, api_key, pidfile)
