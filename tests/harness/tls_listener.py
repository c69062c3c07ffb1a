"""A service that serves TLS at once (as on 465, 993 or 8443) and loads its certificate only at
start and on SIGHUP, as most daemons do: a renewal it was not told about stays unserved.

    python tls_listener.py ADDRESS PORT FULLCHAIN KEY
"""

from __future__ import annotations

import signal
import socket
import ssl
import sys


def main() -> None:
    address, port, chain, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    contexts = []

    def load(*_ignored) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(chain, key)
        contexts[:] = [context]
    load()
    signal.signal(signal.SIGHUP, load)
    with socket.create_server((address, port)) as server:
        while True:
            try:
                conn, _peer = server.accept()
            except InterruptedError:
                continue
            conn.settimeout(5)
            try:
                with contexts[0].wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass
            finally:
                conn.close()


if __name__ == "__main__":
    main()
