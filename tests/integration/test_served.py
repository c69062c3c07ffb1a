"""What hosts serve is what was issued: served certificates are checked with real handshakes,
stale ones healed or reported, and a host's placeholder never spreads to the fleet."""

from __future__ import annotations

import datetime
import shlex
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.harness.processes import wait_for
# The edge layout fixture, used by name.

from ansible_collections.certops.acme.plugins.module_utils._acme.store.files import FileStore

pytestmark = pytest.mark.integration


def installed_serial(edge, index: int, name: str) -> str:
    pem = (edge.host_dir(index) / "certs" / name / "cert.pem").read_bytes()
    return format(x509.load_pem_x509_certificate(pem).serial_number, "x")


def store_serial(edge, name: str) -> str:
    return FileStore(str(edge.controller.work / "store")).load(name).facts.serial


def test_a_renewal_that_missed_haproxy_is_served_by_the_next_run(layout, pebble_server):  # noqa: F811
    """The admin socket is unusable and the reload command broken during a renewal: the new
    bundle lands on disk, HAProxy keeps the old certificate. The next run must not call that
    'nothing changed': it finds the difference over TLS and reloads."""
    address, name = "127.0.0.31", "stale.haproxy.served.test"
    edge = layout("haproxy", [address], [name])
    edge.run()
    before = wait_for(lambda: edge.serial(address, name))
    good_reload = edge.host_vars(0, address, edge.sites)["certops_edge_reload_command"]

    (edge.host_dir(0) / "admin.sock").unlink()  # HAProxy runs on, unreachable for swaps
    broken_reload = f"sh -c 'kill -USR2 \"$(cat {edge.host_dir(0) / 'no-such.pid'})\"'"
    edge.write(certops_edge_force_renew=True, certops_edge_reload_command=broken_reload)
    failed = edge.run(check=False)
    assert failed.returncode != 0
    renewed = installed_serial(edge, 0, name)
    assert renewed != before and edge.serial(address, name) == before  # on disk, not in service

    edge.write(certops_edge_reload_command=good_reload)
    healed = edge.run()
    assert healed.total("changed") > 0, "a stale served certificate was called unchanged"
    assert "Reload the server for what is still stale" in healed.stdout
    assert wait_for(lambda: edge.serial(address, name)) == renewed == store_serial(edge, name)
    assert edge.run().total("changed") == 0


def test_a_failed_nginx_reload_is_reported_with_both_serials_until_it_works(layout, pebble_server):  # noqa: F811
    address, name = "127.0.0.32", "stale.nginx.served.test"
    edge = layout("nginx", [address], [name])
    edge.run()
    before = wait_for(lambda: edge.serial(address, name))
    good_reload = edge.host_vars(0, address, edge.sites)["certops_edge_reload_command"]
    # A real nginx refusing a real reload: the extra directive makes it reject its own command line.
    broken_reload = good_reload + " -g " + shlex.quote(f"pid {edge.host_dir(0) / 'other.pid'};")

    edge.write(certops_edge_force_renew=True, certops_edge_reload_command=broken_reload)
    renewal = edge.run(check=False)
    assert renewal.returncode != 0 and "is duplicate" in renewal.stdout
    renewed = installed_serial(edge, 0, name)
    assert renewed != before
    assert edge.serial(address, name) == before, "the running nginx changed although its reload failed"

    edge.write(certops_edge_reload_command=broken_reload)
    stale = edge.run(check=False)
    assert stale.returncode != 0
    assert f"edge0: {name} (SNI {name} at {address}:" in stale.stdout
    assert f"serves serial {before}, but serial {renewed} is installed" in stale.stdout
    assert "The reload said:" in stale.stdout and "is duplicate" in stale.stdout

    edge.write(certops_edge_reload_command=good_reload)
    healed = edge.run()
    assert healed.total("changed") > 0
    assert wait_for(lambda: edge.serial(address, name)) == renewed
    assert "served" in healed.stdout and " yes " in healed.stdout  # the status table's column


def snakeoil(name: str) -> tuple[bytes, bytes]:
    """A self-signed ten-year certificate and its key, as admins make so a proxy can start."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def test_a_placeholder_on_one_host_never_reaches_the_store_or_the_other_hosts(layout, pebble_server):  # noqa: F811
    addresses, name = ["127.0.0.33", "127.0.0.34"], "placeholder.served.test"
    edge = layout("haproxy", addresses, [name])
    edge.run()
    issued = store_serial(edge, name)

    cert_pem, key_pem = snakeoil(name)
    held = Path(edge.host_dir(0) / "certs" / name).resolve()  # the installed version directory
    (held / "cert.pem").write_bytes(cert_pem)
    (held / "chain.pem").write_bytes(b"")
    (held / "fullchain.pem").write_bytes(cert_pem)
    (held / "privkey.pem").write_bytes(key_pem)
    (held / "haproxy.pem").write_bytes(cert_pem + key_pem)

    run = edge.run()
    assert store_serial(edge, name) == issued, "the placeholder replaced the CA's certificate in the store"
    warnings = "".join((run.stdout + run.stderr).split())  # Ansible wraps warnings, at hyphens too
    assert "edge0:placeholder.served.test:notadopted,self-signed" in warnings
    for index, address in enumerate(addresses):
        assert installed_serial(edge, index, name) == issued
        assert wait_for(lambda a=address: edge.serial(a, name)) == issued
