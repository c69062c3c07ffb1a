"""A plain-HTTP backend that answers with its label and the request headers it received
(so tests can assert X-Forwarded-For / X-Forwarded-Proto set by the edge proxy).

    python3 tests/harness/backend.py ADDRESS PORT LABEL
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def make_handler(label: str) -> type[BaseHTTPRequestHandler]:
    class EchoHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (http.server API)
            # A header sent on several lines is one comma-separated list (RFC 9110 §5.3): shown
            # joined, so a second X-Forwarded-For line is never hidden behind the first.
            headers = {k.lower(): ", ".join(self.headers.get_all(k) or []) for k in self.headers.keys()}
            body = json.dumps({"backend": label, "path": self.path, "headers": headers}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
            del format, args

    return EchoHandler


def main() -> None:
    address, port, label = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    ThreadingHTTPServer((address, port), make_handler(label)).serve_forever()


if __name__ == "__main__":
    main()
