# -*- coding: utf-8 -*-
# Copyright: certops.acme contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt)
"""The tls-alpn-01 responder (RFC 8737), a program of its own that the challenge module writes
out (its source, as it is here) and starts on the host: standard library only.

It answers TLS handshakes that ask for ALPN ``acme-tls/1`` with the challenge certificate of the
SNI name (DIRECTORY/NAME.crt and .key), refuses every other name, and ends after TTL seconds or
as soon as DIRECTORY/responder.pid is removed.

    python3 responder.py LISTEN_ADDRESS PORT DIRECTORY TTL
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import socket
import ssl
import sys
import threading
import time

NAME_OK = re.compile(r"[a-z0-9.:-]{1,253}")
#: Seconds to wait for the module's pid file before a missing one means "stop".
STARTUP_GRACE = 30


def _context():
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["acme-tls/1"])
    return context


def sni_chooser(directory):
    """The SNI callback: the challenge certificate of the name asked for, or a refusal."""
    def choose(sock, server_name, _context_ignored):
        name = (server_name or "").lower()
        base = os.path.join(directory, name)
        if not NAME_OK.fullmatch(name) or not os.path.exists(base + ".crt"):
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        context = _context()
        context.load_cert_chain(base + ".crt", base + ".key")
        sock.context = context
        return None
    return choose


#: The first bytes of PROXY protocol headers (v1 text, v2 binary signature).
PROXY_V1 = b"PROXY "
PROXY_V2 = b"\r\n\r\n\x00\r\nQUIT\n"


def drop_proxy_header(conn):
    """Read and drop a PROXY protocol header, if the connection starts with one: a router that
    hands client addresses on (nginx stream's proxy_protocol) sends it to this responder too."""
    start = conn.recv(16, socket.MSG_PEEK)
    if start.startswith(PROXY_V1):
        line = b""
        while not line.endswith(b"\r\n"):
            chunk = conn.recv(1)
            if not chunk or len(line) >= 107:  # v1 lines are at most 107 bytes
                raise OSError("malformed PROXY v1 header")
            line += chunk
    elif start.startswith(PROXY_V2) and len(start) == 16:
        remaining = 16 + int.from_bytes(start[14:16], "big")
        while remaining > 0:
            chunk = conn.recv(min(remaining, 4096))
            if not chunk:
                raise OSError("truncated PROXY v2 header")
            remaining -= len(chunk)


def _serve(default, conn):
    conn.settimeout(10)
    try:
        drop_proxy_header(conn)
        with default.wrap_socket(conn, server_side=True) as tls:
            if tls.selected_alpn_protocol() != "acme-tls/1":
                return
    except (OSError, ssl.SSLError):
        pass
    finally:
        conn.close()


def main(argv):
    try:
        os.setsid()  # outlive the module that started us and its SSH session
    except OSError:
        pass
    listen, port, directory, ttl = argv[0], int(argv[1]), argv[2], int(argv[3])
    default = _context()
    default.sni_callback = sni_chooser(directory)
    server = socket.socket(socket.AF_INET6 if ":" in listen else socket.AF_INET)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((listen, port))
    server.listen(64)
    server.settimeout(1.0)
    started = time.monotonic()
    deadline = started + ttl
    pidfile = os.path.join(directory, "responder.pid")
    seen_pidfile = False
    while time.monotonic() < deadline:
        # The module writes the pid file once it knows our PID, which on a loaded host can be
        # after we got here: a missing pid file means "stop" only once it was there (or after
        # a startup grace), else we would quit before the module ever saw us listen.
        if os.path.exists(pidfile):
            seen_pidfile = True
        elif seen_pidfile or time.monotonic() - started > STARTUP_GRACE:
            break
        try:
            conn, _address = server.accept()
        except socket.timeout:
            continue
        threading.Thread(target=_serve, args=(default, conn), daemon=True).start()


if __name__ == "__main__":
    main(sys.argv[1:])
