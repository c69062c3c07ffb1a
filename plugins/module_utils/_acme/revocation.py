"""Revocation (RFC 8555 §7.6): by the account that ordered the certificate, or by its own key.

A revoked certificate is marked in the store (``revoked_at``, ``revocation_reason``), which the
renewal decision reads: the next run orders a replacement without any extra request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

try:
    import josepy as jose
    from cryptography.hazmat.primitives import serialization
except ImportError:  # dependencies.require_controller_libraries() names what is missing
    pass

from .account import AccountKey
from .crypto import split_pem_chain, utcnow
from .errors import AcmeProblem
from .storage import StoredCertificate
from .transport import AcmeTransport, Deadline

#: RFC 5280 §5.3.1 CRLReason codes a subscriber may ask for (Let's Encrypt accepts these).
REASONS = {"unspecified": 0, "keyCompromise": 1, "affiliationChanged": 3, "superseded": 4,
           "cessationOfOperation": 5}


@dataclass
class Revocation:
    name: str
    changed: bool
    reason: str
    serial: str
    note: str = ""


def revoke(transport: AcmeTransport, stored: StoredCertificate, reason: str, deadline: Deadline,
           certificate_key: Optional[AccountKey] = None) -> Revocation:
    """POST revokeCert for the stored certificate. ``certificate_key`` signs with the
    certificate's own key (JWK in the header) instead of the account already set on the
    transport. A certificate the CA already revoked counts as done, not as an error."""
    leaf = split_pem_chain(stored.cert_pem)[0]
    payload = {"certificate": jose.b64encode(leaf.public_bytes(serialization.Encoding.DER)).decode("ascii"),
               "reason": REASONS[reason]}
    serial = format(leaf.serial_number, "x")
    if certificate_key is not None:
        transport.set_account(certificate_key.jwk, certificate_key.alg, None)
    try:
        transport.post(transport.endpoint("revokeCert"), payload, deadline, kind="revokeCert",
                       use_jwk=certificate_key is not None)
    except AcmeProblem as problem:
        if problem.code != "alreadyRevoked":
            raise
        return Revocation(stored.name, False, reason, serial, "the CA had already revoked it")
    return Revocation(stored.name, True, reason, serial)


def revoked_now() -> str:
    return utcnow().isoformat()
