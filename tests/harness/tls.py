"""Real TLS handshakes against a proxy, verified against Pebble's root."""

from __future__ import annotations

import socket
import ssl
import tempfile
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes


@dataclass
class Handshake:
    name: str
    serial: str
    sha256: str
    names: list[str]
    protocol: str
    http_status_line: str
    headers: dict[str, str]
    body: str


def handshake(address: str, port: int, name: str, root_pem: str, path: str = "/",
              timeout: float = 5.0, host_header: str | None = None, source: str | None = None,
              headers: dict[str, str] | None = None) -> Handshake:
    """Connect with SNI ``name`` (from the address ``source``, if given), verify the chain
    against ``root_pem`` and the hostname, then send one HTTP/1.1 GET with Host ``name`` and
    ``headers`` and read the answer."""
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as roots:
        roots.write(root_pem)
        roots.flush()
        context = ssl.create_default_context(cafile=roots.name)
    context.set_alpn_protocols(["http/1.1"])
    extra = "".join(f"{key}: {value}\r\n" for key, value in (headers or {}).items())
    with socket.create_connection((address, port), timeout=timeout,
                                  source_address=(source, 0) if source else None) as raw:
        with context.wrap_socket(raw, server_hostname=name) as tls:
            der = tls.getpeercert(binary_form=True)
            protocol = tls.version() or ""
            tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {host_header or name}\r\n{extra}Connection: close\r\n\r\n"
                        .encode())
            chunks = []
            while True:
                data = tls.recv(65536)
                if not data:
                    break
                chunks.append(data)
    cert = x509.load_der_x509_certificate(der)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    response = b"".join(chunks).decode("utf-8", "replace")
    head, _ignored, body = response.partition("\r\n\r\n")
    status_line, _ignored, header_block = head.partition("\r\n")
    headers = {}
    for line in header_block.split("\r\n"):
        key, _ignored, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return Handshake(name=name, serial=format(cert.serial_number, "x"),
                     sha256=cert.fingerprint(hashes.SHA256()).hex(),
                     names=san.get_values_for_type(x509.DNSName), protocol=protocol,
                     http_status_line=status_line, headers=headers, body=body)


def refusal(address: str, port: int, name: str, timeout: float = 5.0) -> str:
    """How the listener refuses a handshake for ``name``: the TLS alert it sent, or 'closed' when
    it closed the connection without answering. Fails when a certificate is presented at all.

    Verification is off on purpose: a refusal must be the server's, not our client's rejection
    of some other site's certificate (with verification on, a hostname mismatch would look the
    same as a refusal). The TCP connection itself must succeed: nothing listening is no refusal."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection((address, port), timeout=timeout)
    try:
        with context.wrap_socket(raw, server_hostname=name) as tls:
            der = tls.getpeercert(binary_form=True)
    except ssl.SSLError as error:
        if isinstance(error, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
            return "closed"
        return str(error.reason or error)
    except (ConnectionResetError, BrokenPipeError):
        return "closed"
    finally:
        raw.close()
    cert = x509.load_der_x509_certificate(der)
    raise AssertionError(f"{address}:{port} presented a certificate for SNI {name}: {cert.subject.rfc4514_string()}")
