# -*- coding: utf-8 -*-
# Copyright: certops.acme contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt)
"""The plain-text opening a service speaks before its TLS handshake (STARTTLS), client side.

Mail and database servers on 25/587 (SMTP, RFC 3207), 143 (IMAP, RFC 3501 §6.2.1), 110 (POP3,
RFC 2595 §4) and 5432 (PostgreSQL's SSLRequest) serve their certificate only after such an
exchange; the served check (modules/served.py) speaks it from the host, then hands the socket
to the TLS handshake. What the server says is bounded (line length, line count) and each read
is under the socket's timeout: a listener that is not what it claims cannot hold the check.

Standard library only: this file ships to targets.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import struct

PROTOCOLS = ("none", "smtp", "imap", "pop3", "postgres")
MAX_LINE = 2048
MAX_LINES = 64
#: PostgreSQL's SSLRequest code (protocol documentation, "SSL Session Encryption").
POSTGRES_SSL_REQUEST = struct.pack("!II", 8, 80877103)


class StartTlsRefused(Exception):
    """The server did not agree to start TLS; the message says what it answered."""


class _Lines(object):
    def __init__(self, sock):
        self.sock = sock
        self.buffer = b""
        self.count = 0

    def next(self):
        while b"\n" not in self.buffer:
            if len(self.buffer) > MAX_LINE:
                raise StartTlsRefused("answered a line longer than %d bytes" % MAX_LINE)
            chunk = self.sock.recv(1024)
            if not chunk:
                raise StartTlsRefused("closed the connection")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        self.count += 1
        if self.count > MAX_LINES:
            raise StartTlsRefused("answered more than %d lines" % MAX_LINES)
        return line.rstrip(b"\r").decode("ascii", "replace")[:200]


def _smtp_reply(lines):
    """The lines of one SMTP reply (a multi-line reply continues with 'NNN-')."""
    reply = []
    while True:
        line = lines.next()
        reply.append(line)
        if len(line) < 4 or line[3] != "-":
            return reply


def _smtp(sock, lines):
    greeting = _smtp_reply(lines)
    if not greeting[-1].startswith("220"):
        raise StartTlsRefused("greeted with %r" % greeting[-1])
    sock.sendall(b"EHLO certops-served-check.invalid\r\n")
    ehlo = _smtp_reply(lines)
    if not ehlo[-1].startswith("250"):
        raise StartTlsRefused("answered EHLO with %r" % ehlo[-1])
    if not any(line[4:].strip().upper() == "STARTTLS" for line in ehlo):
        raise StartTlsRefused("does not offer STARTTLS")
    sock.sendall(b"STARTTLS\r\n")
    answer = _smtp_reply(lines)
    if not answer[-1].startswith("220"):
        raise StartTlsRefused("answered STARTTLS with %r" % answer[-1])


def _imap(sock, lines):
    greeting = lines.next()
    if not greeting.upper().startswith("* OK"):
        raise StartTlsRefused("greeted with %r" % greeting)
    sock.sendall(b"c1 STARTTLS\r\n")
    while True:
        line = lines.next()
        if line.upper().startswith("C1 "):
            if not line.upper().startswith("C1 OK"):
                raise StartTlsRefused("answered STARTTLS with %r" % line)
            return


def _pop3(sock, lines):
    greeting = lines.next()
    if not greeting.startswith("+OK"):
        raise StartTlsRefused("greeted with %r" % greeting)
    sock.sendall(b"STLS\r\n")
    answer = lines.next()
    if not answer.startswith("+OK"):
        raise StartTlsRefused("answered STLS with %r" % answer)


def _postgres(sock, lines):
    sock.sendall(POSTGRES_SSL_REQUEST)
    answer = sock.recv(1)
    if answer != b"S":
        raise StartTlsRefused("answered the SSLRequest with %r" % answer)


_OPENINGS = {"smtp": _smtp, "imap": _imap, "pop3": _pop3, "postgres": _postgres}


def start_tls(sock, protocol):
    """Speak ``protocol``'s opening on ``sock`` up to the server's go-ahead; the TLS handshake
    follows on the same socket (the server sends nothing more until the client's hello)."""
    if protocol in (None, "", "none"):
        return
    if protocol not in _OPENINGS:
        raise StartTlsRefused("%r is not a known STARTTLS protocol" % (protocol,))
    _OPENINGS[protocol](sock, _Lines(sock))
