"""STARTTLS openings spoken to scripted servers over real sockets: each protocol's go-ahead,
each refusal named, and what a server says bounded in length and count."""

from __future__ import annotations

import socket
import threading

import pytest

from ansible_collections.certops.acme.plugins.module_utils._starttls import (
    POSTGRES_SSL_REQUEST, StartTlsRefused, start_tls)


CLOSE = object()


def scripted(script):
    """A connected socket whose peer plays ``script``: (bytes to send, bytes expected next)."""
    client, server = socket.socketpair()
    client.settimeout(2)
    heard = []

    def play():
        with server:
            for send, expect in script:
                if send is CLOSE:
                    return
                if send:
                    server.sendall(send)
                if expect:
                    got = b""
                    while len(got) < len(expect):
                        chunk = server.recv(1024)
                        if not chunk:
                            return
                        got += chunk
                    heard.append(got)
            try:
                server.recv(1)  # hold the line open until the client is done
            except OSError:
                pass
    threading.Thread(target=play, daemon=True).start()
    return client, heard


SMTP_OK = [(b"220 mx ESMTP\r\n", b"EHLO certops-served-check.invalid\r\n"),
           (b"250-mx\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n", b"STARTTLS\r\n"),
           (b"220 2.0.0 Ready\r\n", None)]


@pytest.mark.parametrize("protocol, script", [
    ("smtp", SMTP_OK),
    ("smtp", [(b"220-mx first\r\n220 mx\r\n", b"EHLO certops-served-check.invalid\r\n"),
              (b"250 STARTTLS\r\n", b"STARTTLS\r\n"), (b"220 go\r\n", None)]),
    ("imap", [(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n", b"c1 STARTTLS\r\n"),
              (b"* noise\r\nc1 OK Begin TLS\r\n", None)]),
    ("pop3", [(b"+OK POP3 ready\r\n", b"STLS\r\n"), (b"+OK Begin TLS\r\n", None)]),
    ("postgres", [(None, POSTGRES_SSL_REQUEST), (b"S", None)]),
])
def test_each_protocol_reaches_the_go_ahead(protocol, script):
    client, heard = scripted(script)
    with client:
        start_tls(client, protocol)
    assert heard == [expect for _send, expect in script if expect]


@pytest.mark.parametrize("protocol, script, said", [
    ("smtp", [(b"554 go away\r\n", None)], "greeted with '554 go away'"),
    ("smtp", [(b"220 mx\r\n", b"EHLO certops-served-check.invalid\r\n"), (b"250-mx\r\n250 SIZE 1\r\n", None)],
     "does not offer STARTTLS"),
    ("smtp", [SMTP_OK[0], SMTP_OK[1], (b"454 TLS not available\r\n", None)],
     "answered STARTTLS with '454 TLS not available'"),
    ("imap", [(b"* OK ready\r\n", b"c1 STARTTLS\r\n"), (b"c1 BAD no\r\n", None)], "answered STARTTLS with 'c1 BAD no'"),
    ("pop3", [(b"+OK\r\n", b"STLS\r\n"), (b"-ERR no\r\n", None)], "answered STLS with '-ERR no'"),
    ("postgres", [(None, POSTGRES_SSL_REQUEST), (b"N", None)], "answered the SSLRequest with b'N'"),
    ("smtp", [(b"220 " + b"x" * 5000 + b"\r\n", None)], "longer than"),
    ("smtp", [(b"220-x\r\n" * 100, None)], "more than 64 lines"),
    ("smtp", [(b"220 mx\r\n", b"EHLO certops-served-check.invalid\r\n"), (CLOSE, None)], "closed the connection"),
])
def test_a_refusal_says_what_the_server_answered(protocol, script, said):
    client, _heard = scripted(script)
    with client, pytest.raises(StartTlsRefused, match=said.replace("(", r"\(").replace("[", r"\[")):
        start_tls(client, protocol)


def test_a_silent_server_times_out_instead_of_holding_the_check():
    client, _server = socket.socketpair()
    client.settimeout(0.2)
    with client, _server, pytest.raises(socket.timeout):
        start_tls(client, "smtp")


def test_none_sends_nothing():
    client, server = socket.socketpair()
    with client, server:
        start_tls(client, "none")
        server.setblocking(False)
        with pytest.raises(BlockingIOError):
            server.recv(1)
