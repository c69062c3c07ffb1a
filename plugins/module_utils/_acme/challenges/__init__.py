"""Challenges (RFC 8555 §8, RFC 8737): what the CA waits for, and how it gets answered.

``PendingChallenge`` is one challenge of an opened order; a ``ChallengeResponder`` makes a
batch's challenges of one type answerable and removes them afterwards (dns-01 lives in
dns.py; stateless http-01 needs nothing per order); ``tls_alpn_challenge_certificate``
builds the certificate a tls-alpn-01 responder presents.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
from dataclasses import dataclass
from typing import Any, Optional, Protocol, Sequence

try:
    import josepy as jose
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
except ImportError:  # dependencies.require_controller_libraries() names what is missing
    pass

from ..crypto import private_key_pem
from ..names import Identifier
from ..waiting import Deadline


@dataclass
class PendingChallenge:
    """One challenge the CA waits for; what a responder needs to satisfy it."""

    certificate: str
    identifier: Identifier
    type: str
    url: str
    token: str
    key_authorization: str
    authz_url: str
    #: dns-persist-01: the issuer domain names the CA matches the record against.
    issuers: tuple[str, ...] = ()

    @property
    def dns_record_name(self) -> str:
        """``_acme-challenge.<name>``; a wildcard shares its base name's record (RFC 8555 §8.4)."""
        base = self.identifier.value[2:] if self.identifier.value.startswith("*.") else self.identifier.value
        return f"_acme-challenge.{base}"

    @property
    def dns_record_value(self) -> str:
        digest = hashlib.sha256(self.key_authorization.encode("ascii")).digest()
        return jose.b64encode(digest).decode("ascii")

    def to_dict(self) -> dict[str, Any]:
        return {"certificate": self.certificate, "identifier": self.identifier.value,
                "identifier_type": self.identifier.type, "type": self.type, "url": self.url,
                "token": self.token, "key_authorization": self.key_authorization,
                "authz_url": self.authz_url, **({"issuers": list(self.issuers)} if self.issuers else {})}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PendingChallenge":
        return cls(certificate=data["certificate"],
                   identifier=Identifier(data["identifier_type"], data["identifier"]),
                   type=data["type"], url=data["url"], token=data["token"],
                   key_authorization=data["key_authorization"], authz_url=data["authz_url"],
                   issuers=tuple(data.get("issuers") or ()))


class ChallengeResponder(Protocol):
    """Makes challenges answerable before the CA looks, and removes that afterwards.

    ``deploy`` gets every pending challenge of its type in the batch at once (one DNS update
    and one propagation wait for a whole batch) and returns, per certificate, why it could
    not be deployed; those certificates fail, the others go on. ``cleanup`` must remove
    exactly what ``deploy`` added, and is called even when validation failed.
    """

    def deploy(self, challenges: Sequence[PendingChallenge], deadline: Deadline) -> dict[str, str]: ...

    def cleanup(self, challenges: Sequence[PendingChallenge]) -> None: ...


class StatelessHttp01:
    """The proxy answers ``/.well-known/acme-challenge/<token>`` with ``<token>.<thumbprint>``
    by itself, so nothing is deployed per order."""

    #: Nothing to deploy: each certificate can go from lock to stored on its own (lock_waves.py).
    stateless = True

    def deploy(self, challenges: Sequence[PendingChallenge], deadline: Deadline) -> dict[str, str]:
        del challenges, deadline
        return {}

    def cleanup(self, challenges: Sequence[PendingChallenge]) -> None:
        del challenges


#: id-pe-acmeIdentifier (RFC 8737 §6.1).
ACME_IDENTIFIER_OID = "1.3.6.1.5.5.7.1.31"


def tls_alpn_challenge_certificate(challenge: PendingChallenge) -> tuple[bytes, bytes]:
    """(cert PEM, key PEM) for tls-alpn-01 (RFC 8737 §3): self-signed, SAN = the name, and the
    critical acmeIdentifier extension holding SHA-256 of the key authorization."""
    key = ec.generate_private_key(ec.SECP256R1())
    digest = hashlib.sha256(challenge.key_authorization.encode("ascii")).digest()
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ACME tls-alpn-01 challenge")])
    if challenge.identifier.type == "ip":
        san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(challenge.identifier.value))
    else:
        san = x509.DNSName(challenge.identifier.value)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([san]), critical=False)
            # DER OCTET STRING (0x04, length 32) wrapping the digest.
            .add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier(ACME_IDENTIFIER_OID), b"\x04\x20" + digest), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM), private_key_pem(key)


def challenges_for_hosts(certificate: str, webroot: Optional[str],
                         pending: Sequence[PendingChallenge]) -> list[dict[str, Any]]:
    """An order's challenges as the hosts deploy them (certops.acme.challenge's input)."""
    out = []
    for challenge in pending:
        item = {"certificate": certificate, "identifier": challenge.identifier.value, "type": challenge.type,
                "token": challenge.token, "key_authorization": challenge.key_authorization}
        if webroot:
            item["webroot"] = webroot
        out.append(item)
    return out


def deploys_nothing(responder: Any) -> bool:
    """Whether a responder has nothing to deploy per order (its class says ``stateless``)."""
    return getattr(responder, "stateless", False) is True
