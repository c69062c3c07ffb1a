"""The tls-alpn-01 responder as the module ships it (the real file, run as its own process)."""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509

from ansible_collections.certops.acme.plugins.module_utils import _tls_alpn_responder
from ansible_collections.certops.acme.plugins.module_utils._acme.names import Identifier
from ansible_collections.certops.acme.plugins.module_utils._acme.challenges import (
    ACME_IDENTIFIER_OID, PendingChallenge, tls_alpn_challenge_certificate)


ADDRESS = "127.0.0.93"


@contextlib.contextmanager
def responder_process(directory):
    """The shipped responder file run as its own process on a free port of ADDRESS."""
    with socket.socket() as probe:
        probe.bind((ADDRESS, 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, Path(_tls_alpn_responder.__file__), ADDRESS, str(port),
                                str(directory), "30"])
    try:
        yield process, port
    finally:
        process.kill()
        process.wait()


def handshake(port, name, before=b""):
    """An acme-tls/1 handshake; ``before`` is sent first (a router's PROXY header)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["acme-tls/1"])
    with socket.create_connection((ADDRESS, port), timeout=5) as raw:
        raw.sendall(before)
        with context.wrap_socket(raw, server_hostname=name) as tls:
            return tls.selected_alpn_protocol(), x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def first_handshake(port, name, timeout=5.0):
    """The first handshake once the responder listens."""
    give_up = time.monotonic() + timeout
    while True:
        try:
            return handshake(port, name)
        except ConnectionRefusedError:
            if time.monotonic() > give_up:
                raise
            time.sleep(0.05)


def challenge_files(directory):
    """The challenge certificate and key for alpn.example.com, and the pid file, as the
    challenge module leaves them for the responder."""
    challenge = PendingChallenge(certificate="c", identifier=Identifier("dns", "alpn.example.com"), type="tls-alpn-01",
                                 url="https://ca/chall", token="tok", key_authorization="tok.thumb",
                                 authz_url="https://ca/authz")
    cert_pem, key_pem = tls_alpn_challenge_certificate(challenge)
    (directory / "alpn.example.com.crt").write_bytes(cert_pem)
    (directory / "alpn.example.com.key").write_bytes(key_pem)
    (directory / "responder.pid").write_text("0")


def test_the_shipped_responder_presents_the_challenge_certificate_and_refuses_other_names(tmp_path):
    challenge_files(tmp_path)
    with responder_process(tmp_path) as (responder, port):
        alpn, served = first_handshake(port, "alpn.example.com")
        assert alpn == "acme-tls/1"
        assert served.extensions.get_extension_for_oid(x509.ObjectIdentifier(ACME_IDENTIFIER_OID)).critical
        with pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME"):
            handshake(port, "other.example.com")
        (tmp_path / "responder.pid").unlink()  # removing the pid file stops it
        assert responder.wait(timeout=5) == 0


def proxy_v2_header():
    """PROXY protocol v2 for TCP over IPv4 from 203.0.113.7:5555 to 127.0.0.93:443, as HAProxy's
    send-proxy-v2 or nginx's proxy_protocol write it."""
    addresses = socket.inet_aton("203.0.113.7") + socket.inet_aton(ADDRESS) + (5555).to_bytes(2, "big") \
        + (443).to_bytes(2, "big")
    return _tls_alpn_responder.PROXY_V2 + bytes([0x21, 0x11]) + len(addresses).to_bytes(2, "big") + addresses


@pytest.mark.parametrize("header", [b"PROXY TCP4 203.0.113.7 127.0.0.93 5555 443\r\n", proxy_v2_header()],
                         ids=["v1", "v2"])
def test_the_responder_answers_behind_a_router_that_sends_a_proxy_header(tmp_path, header):
    """An nginx stream router with proxy_protocol on sends the header on every connection it
    passes, the responder's included: it is read and dropped before the handshake."""
    challenge_files(tmp_path)
    with responder_process(tmp_path) as (_responder, port):
        first_handshake(port, "alpn.example.com")
        alpn, served = handshake(port, "alpn.example.com", before=header)
        assert alpn == "acme-tls/1"
        assert served.extensions.get_extension_for_oid(x509.ObjectIdentifier(ACME_IDENTIFIER_OID)).critical


def test_the_responder_waits_for_a_pid_file_written_after_it_started(tmp_path):
    """The module writes the pid file after starting the responder; on a loaded host the
    responder can get to its loop first and must not take the missing file for a stop."""
    with responder_process(tmp_path) as (responder, _port):
        time.sleep(1.5)  # well into its loop, with no pid file yet
        assert responder.poll() is None, "the responder quit before the module wrote its pid file"
        (tmp_path / "responder.pid").write_text(str(responder.pid))
        time.sleep(2.5)  # it looks once a second
        (tmp_path / "responder.pid").unlink()
        assert responder.wait(timeout=5) == 0
