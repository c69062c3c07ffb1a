"""Certificates for a key certops does not hold: ``csr_src`` (a CSR made elsewhere, e.g. by an
HSM) or ``key_src`` (a key file kept on the controller by someone else).

Either way the order is finalized with a CSR for the certificate's exact names, and the key
stays where it is: it is read (key_src) only to sign that CSR in memory, never written to the
store, a pending order record, a task result or a host. The store and the hosts get the
certificate and its chain; placing the key where it is served is the owner's business.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from typing import Optional, Sequence

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
except ImportError:  # dependencies.require_controller_libraries() names what is missing
    pass

from .crypto import build_csr, key_type_of, load_private_key
from .errors import InputError
from .names import Identifier

#: A CSR or key file is small; anything larger is not one (and is not read whole).
MAX_FILE_BYTES = 64 * 1024


@dataclass(frozen=True)
class OwnKey:
    """What ordering needs from a key certops does not hold."""

    csr_der: bytes
    key_type: str
    #: SHA-256 of the key's SubjectPublicKeyInfo: a stored certificate for another key is renewed.
    spki_sha256: str
    #: ``csr_src`` or ``key_src``, and the path, for messages and the stored metadata.
    option: str
    path: str

    def describe(self) -> str:
        return f"{self.option} {self.path}"


def spki_sha256(public_key: object) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER,  # type: ignore[attr-defined]
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def _read(path: str, field: str) -> bytes:
    """The file's bytes, bounded. Only a regular file is read (a symlink to one is fine): a FIFO
    or a device would block the run or stream without end, so it is opened without blocking and
    refused."""
    try:
        fd = os.open(os.path.expanduser(path), os.O_RDONLY | os.O_NONBLOCK)
    except OSError as error:
        raise InputError(field, f"cannot read {path}: {error.strerror or error}",
                         "give the path of a file on the controller") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InputError(field, f"{path} is not a regular file", "give the path of a PEM file")
        try:
            data = handle.read(MAX_FILE_BYTES + 1)
        except OSError as error:
            raise InputError(field, f"cannot read {path}: {error.strerror or error}",
                             "give the path of a file on the controller") from None
    if len(data) > MAX_FILE_BYTES:
        raise InputError(field, f"{path} is larger than {MAX_FILE_BYTES // 1024} KiB", "give a single PEM file")
    return data


def _identifiers_of_csr(csr: x509.CertificateSigningRequest) -> set[Identifier]:
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return ({Identifier("dns", n.lower()) for n in san.get_values_for_type(x509.DNSName)}
            | {Identifier("ip", ip.compressed) for ip in san.get_values_for_type(x509.IPAddress)})


def from_csr(path: str, identifiers: Sequence[Identifier], field: str) -> OwnKey:
    data = _read(path, field)
    try:
        csr = (x509.load_pem_x509_csr(data) if b"-----BEGIN" in data else x509.load_der_x509_csr(data))
    except ValueError:
        raise InputError(field, f"{path} is not a certificate signing request (PEM or DER)",
                         "e.g. openssl req -new -key KEY -subj /CN=NAME -addext subjectAltName=DNS:NAME") from None
    if not csr.is_signature_valid:
        raise InputError(field, f"the signature of the CSR in {path} does not verify", "create the CSR again")
    key_type = key_type_of(csr.public_key())
    if not key_type:
        raise InputError(field, f"the CSR in {path} is for a key type certops does not order",
                         "use an RSA (2048, 3072, 4096) or EC (P-256, P-384) key")
    have, want = _identifiers_of_csr(csr), set(identifiers)
    if have != want:
        missing = ", ".join(sorted(i.value for i in want - have)) or "none"
        extra = ", ".join(sorted(i.value for i in have - want)) or "none"
        raise InputError(field, f"the CSR in {path} does not name exactly the certificate's domains (missing: "
                         f"{missing}; not listed in domains: {extra})",
                         "make domains and the CSR's subjectAltName list the same names")
    return OwnKey(csr.public_bytes(serialization.Encoding.DER), key_type, spki_sha256(csr.public_key()),
                  "csr_src", path)


def from_key(path: str, identifiers: Sequence[Identifier], field: str) -> OwnKey:
    key = load_private_key(_read(path, field), field)
    return OwnKey(build_csr(key, identifiers), key_type_of(key), spki_sha256(key.public_key()), "key_src", path)


def own_key(csr_src: Optional[str], key_src: Optional[str], identifiers: Sequence[Identifier],
            where: str) -> Optional[OwnKey]:
    """The key a certificate entry brings (None for a key certops makes)."""
    if csr_src and key_src:
        raise InputError(f"{where}.csr_src", "and key_src are both set", "give one of them")
    if csr_src:
        return from_csr(csr_src, identifiers, f"{where}.csr_src")
    if key_src:
        return from_key(key_src, identifiers, f"{where}.key_src")
    return None


def certificate_key_sha256(cert_pem: str) -> str:
    """spki_sha256 of the public key in a stored certificate (its first PEM block)."""
    return spki_sha256(x509.load_pem_x509_certificate(cert_pem.encode("ascii")).public_key())
