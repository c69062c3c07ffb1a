"""Start a real Pebble ACME server (Debian package) and its challenge test DNS server on loopback.

Used by the pytest fixtures and by the demo. Nothing here is mocked: Pebble is the Debian
``pebble`` binary, its HTTPS listener uses a certificate this harness generates, and name
resolution for validation goes through ``pebble-challtestsrv`` whose A records the tests set
(so each simulated host can get its own 127.0.0.x address).

Command line (for the demo)::

    python3 tests/harness/pebble.py start STATE_DIR [--base-port N]   # idempotent, daemonises
    python3 tests/harness/pebble.py stop STATE_DIR
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import ssl
from dataclasses import dataclass, asdict
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.harness.processes import pid_alive, wait_port  # noqa: E402

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class PebblePorts:
    """Every port is on 127.0.0.1 except ``http01``/``tlsalpn01``, which Pebble dials on the
    address DNS gives for the name being validated."""

    acme: int
    management: int
    dns: int
    dns_management: int
    http01: int
    tlsalpn01: int

    @classmethod
    def from_base(cls, base: int) -> "PebblePorts":
        return cls(acme=base, management=base + 1, dns=base + 2, dns_management=base + 3,
                   http01=base + 4, tlsalpn01=base + 5)


@dataclass
class PebbleInfo:
    state_dir: str
    ports: PebblePorts
    ca_cert: str          # trust anchor for Pebble's own HTTPS listener (generated here)
    log_file: str
    pebble_pid: int
    challtestsrv_pid: int

    @property
    def directory_url(self) -> str:
        return f"https://127.0.0.1:{self.ports.acme}/dir"

    @property
    def management_url(self) -> str:
        return f"https://127.0.0.1:{self.ports.management}"

    @property
    def dns_management_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.dns_management}"

    def to_json(self) -> str:
        data = asdict(self)
        data["directory_url"] = self.directory_url
        return json.dumps(data, indent=2)

    @classmethod
    def from_json(cls, text: str) -> "PebbleInfo":
        data = json.loads(text)
        data.pop("directory_url", None)
        data["ports"] = PebblePorts(**data["ports"])
        return cls(**data)

    # --- helpers the tests use -------------------------------------------------------------
    def _ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_cert)

    def root_pem(self) -> str:
        """The root that signs issued certificates (regenerated at every Pebble start)."""
        with urllib.request.urlopen(f"{self.management_url}/roots/0",
                                    context=self._ssl_context(), timeout=10) as resp:
            return resp.read().decode()

    def root_file(self) -> str:
        """The issuing root in a PEM file (what users give as adopt_trust_roots for a private CA)."""
        path = Path(self.state_dir) / "issuing-root.pem"
        path.write_text(self.root_pem())
        return str(path)

    def intermediate_pem(self) -> str:
        with urllib.request.urlopen(f"{self.management_url}/intermediates/0",
                                    context=self._ssl_context(), timeout=10) as resp:
            return resp.read().decode()

    def set_address(self, name: str, address: str) -> None:
        """Make Pebble resolve ``name`` to ``address`` (challtestsrv management API)."""
        body = json.dumps({"host": name, "addresses": [address]}).encode()
        req = urllib.request.Request(f"{self.dns_management_url}/add-a", data=body, method="POST")
        with urllib.request.urlopen(req, timeout=10):
            pass

    def count_log(self, needle: str) -> int:
        """How many lines of Pebble's log contain ``needle`` (e.g. 'POST /order-plz')."""
        with open(self.log_file, encoding="utf-8", errors="replace") as handle:
            return sum(1 for line in handle if needle in line)

    def new_orders(self) -> int:
        """Orders Pebble created (a newOrder it refused with badNonce is logged as a POST too)."""
        return self.count_log("Added order")

    def finalizations(self) -> int:
        """Finalize requests received (one refused with badNonce and sent again counts twice)."""
        return self.count_log("POST /finalize-order/")

    def issued_serials(self) -> list[str]:
        """The serial of every certificate Pebble issued, in order (hex as Pebble logs it)."""
        with open(self.log_file, encoding="utf-8", errors="replace") as handle:
            return [line.split("Issued certificate serial ", 1)[1].split()[0]
                    for line in handle if "Issued certificate serial " in line]

    def cert_status(self, serial: str) -> str:
        """What Pebble says of the certificate with this (hex) serial: Valid or Revoked."""
        url = f"{self.management_url}/cert-status-by-serial/{int(serial, 16):x}"
        with urllib.request.urlopen(url, timeout=10, context=self._ssl_context()) as response:
            return str(json.loads(response.read().decode())["Status"])

    def alive(self) -> bool:
        return pid_alive(self.pebble_pid) and pid_alive(self.challtestsrv_pid)


def generate_listener_cert(state: Path, addresses: tuple[str, ...] = ("127.0.0.1",)) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for localhost and ``addresses``."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "certops test harness CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), *(x509.IPAddress(ipaddress.ip_address(a)) for a in addresses)]),
            critical=False)
        # Python 3.13 verifies strictly (VERIFY_X509_STRICT): a leaf needs AKI and EKU.
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = state / "ca.pem", state / "listener.pem", state / "listener.key"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    os.chmod(key_path, 0o600)
    return ca_path, cert_path, key_path


def start(state_dir: str | os.PathLike[str], base_port: int = 14000,
          env: dict[str, str] | None = None, pebble_config: dict | None = None,
          dns_server: str | None = None) -> PebbleInfo:
    """Start Pebble + challtestsrv detached from the caller; return how to reach them.

    ``dns_server`` (HOST:PORT) makes Pebble resolve through another server (e.g. a BIND the
    test updates) instead of challtestsrv."""
    state = Path(state_dir)
    state.mkdir(parents=True, exist_ok=True)
    ports = PebblePorts.from_base(base_port)
    ca, cert, key = generate_listener_cert(state)
    config = {
        "listenAddress": f"127.0.0.1:{ports.acme}",
        "managementListenAddress": f"127.0.0.1:{ports.management}",
        "certificate": str(cert),
        "privateKey": str(key),
        "httpPort": ports.http01,
        "tlsPort": ports.tlsalpn01,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": False,
    }
    config.update(pebble_config or {})
    (state / "pebble-config.json").write_text(json.dumps({"pebble": config}, indent=2))

    log_path = state / "pebble.log"
    dns_log = state / "challtestsrv.log"
    child_env = dict(os.environ)
    # No random 0-15 s validation sleep; badNonce injection stays at Pebble's default 5 %
    # unless a test raises it on purpose.
    child_env.setdefault("PEBBLE_VA_NOSLEEP", "1")
    child_env.update(env or {})
    with open(dns_log, "ab") as dns_out:
        dns = subprocess.Popen(
            ["pebble-challtestsrv", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
             "-dns01", f"127.0.0.1:{ports.dns}", "-http01", "", "-https01", "",
             "-tlsalpn01", "", "-management", f"127.0.0.1:{ports.dns_management}"],
            stdout=dns_out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
    with open(log_path, "ab") as out:
        pebble = subprocess.Popen(
            ["pebble", "-config", str(state / "pebble-config.json"),
             "-dnsserver", dns_server or f"127.0.0.1:{ports.dns}"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=child_env, start_new_session=True)
    info = PebbleInfo(state_dir=str(state), ports=ports, ca_cert=str(ca), log_file=str(log_path),
                      pebble_pid=pebble.pid, challtestsrv_pid=dns.pid)
    try:
        wait_port("127.0.0.1", ports.dns_management, pid=dns.pid)
        wait_port("127.0.0.1", ports.acme, pid=pebble.pid)
        wait_port("127.0.0.1", ports.management, pid=pebble.pid)
    except RuntimeError:
        stop(info)
        raise RuntimeError(f"Pebble did not start; see {log_path} and {dns_log}") from None
    (state / "pebble.json").write_text(info.to_json())
    return info


def stop(info: PebbleInfo) -> None:
    for pid in (info.pebble_pid, info.challtestsrv_pid):
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    for pid in (info.pebble_pid, info.challtestsrv_pid):
        for _ignored in range(100):
            if not pid_alive(pid):
                break
            time.sleep(0.02)
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def load(state_dir: str | os.PathLike[str]) -> PebbleInfo | None:
    path = Path(state_dir) / "pebble.json"
    if not path.exists():
        return None
    return PebbleInfo.from_json(path.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("state_dir")
    parser.add_argument("--base-port", type=int, default=14000)
    args = parser.parse_args(argv)
    existing = load(args.state_dir)
    if args.action == "start":
        if existing and existing.alive():
            print(existing.to_json())
            return 0
        print(start(args.state_dir, args.base_port).to_json())
        return 0
    if args.action == "stop":
        if existing:
            stop(existing)
        return 0
    print(existing.to_json() if existing and existing.alive() else "not running")
    return 0 if existing and existing.alive() else 1


if __name__ == "__main__":
    sys.exit(main())
