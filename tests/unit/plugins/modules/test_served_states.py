"""What the served check records for a listener, against a real TLS listener on loopback: the
installed leaf (match), another one (differs), a handshake refused for the name (refused, never
a match), nothing listening (unreachable)."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from ansible_collections.certops.acme.plugins.module_utils import _served_probe as served
from tests.harness.certs import make_chain

ADDRESS = "127.0.0.94"


def pem(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def listener(tmp_path):
    """A TLS listener that serves www.example.com and refuses every other name (an SNI no
    crt-list entry holds any more)."""
    key_pem, leaf, chain = make_chain(("www.example.com", "refused.example.com"))
    (tmp_path / "key.pem").write_bytes(key_pem)
    (tmp_path / "cert.pem").write_bytes(pem(leaf) + b"".join(pem(c) for c in chain))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    context.sni_callback = lambda sock, name, ctx: None if name == "www.example.com" \
        else ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
    server = socket.create_server((ADDRESS, 0))
    port = server.getsockname()[1]

    def serve():
        while True:
            try:
                conn, _peer = server.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                pass
    threading.Thread(target=serve, daemon=True).start()
    yield port, pem(leaf)
    server.close()


def installed(dest: Path, name: str, cert_pem: bytes) -> None:
    (dest / name).mkdir(parents=True)
    (dest / name / "cert.pem").write_bytes(cert_pem)


def check(dest: Path, certificate: str, server_name: str, port: int) -> dict:
    return served.check_one({"certificate": certificate, "server_name": server_name, "address": ADDRESS,
                             "port": port}, str(dest), 3)


def test_a_listener_serving_the_installed_leaf_matches(listener, tmp_path):
    port, leaf = listener
    installed(tmp_path / "certs", "www", leaf)
    assert check(tmp_path / "certs", "www", "www.example.com", port)["state"] == "match"


def test_a_listener_that_refuses_the_name_is_refused_never_a_match(listener, tmp_path):
    port, leaf = listener
    installed(tmp_path / "certs", "www", leaf)
    result = check(tmp_path / "certs", "www", "refused.example.com", port)
    assert result["state"] == "refused" and "UNRECOGNIZED_NAME" in result["error"], result
    assert result["served_serial"] == ""


def test_a_listener_serving_another_leaf_differs_and_a_closed_port_is_unreachable(listener, tmp_path):
    port, _leaf = listener
    _key, other, _chain = make_chain(("www.example.com",))
    installed(tmp_path / "certs", "www", pem(other))
    assert check(tmp_path / "certs", "www", "www.example.com", port)["state"] == "differs"
    with socket.socket() as probe:
        probe.bind((ADDRESS, 0))
        closed = probe.getsockname()[1]
    assert check(tmp_path / "certs", "www", "www.example.com", closed)["state"] == "unreachable"
