"""Revocation (RFC 8555 §7.6): by the account that ordered the certificate, or by its own key.

A revoked certificate is marked in the store (``revoked_at``, ``revocation_reason``), which the
renewal decision reads: the next run orders a replacement without any extra request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

try:
    import josepy as jose
    from cryptography.hazmat.primitives import serialization
except ImportError:  # dependencies.require_controller_libraries() names what is missing
    pass

from .account import AccountKey, find_account
from ..crypto import load_private_key, split_pem_chain, utcnow
from ..errors import AcmeProblem, InputError
from ..store import CertificateStore, StoredCertificate, check_certificate_name
from .transport import AcmeTransport
from ..waiting import Deadline

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
        transport.post(transport.endpoint("revokeCert", deadline), payload, deadline, kind="revokeCert",
                       use_jwk=certificate_key is not None)
    except AcmeProblem as problem:
        if problem.code != "alreadyRevoked":
            raise
        return Revocation(stored.name, False, reason, serial, "the CA had already revoked it")
    return Revocation(stored.name, True, reason, serial)


def revoked_now() -> str:
    return utcnow().isoformat()


def revoke_stored(store: CertificateStore, names: Sequence[str], reason: str, revoke_with: str,
                  transport_factory: Callable[[], AcmeTransport], account_key: Callable[[], AccountKey],
                  request_timeout: float, check_mode: bool = False) -> dict[str, Any]:
    """Revoke the named certificates of the store and mark them revoked there (the next run
    renews them). Already revoked ones (by the store's record) send nothing. ``revoke_with``
    is ``account_key`` (the account that ordered them) or ``certificate_key`` (their own keys)."""
    wanted = []
    for index, name in enumerate(names):
        check_certificate_name(name, f"certificates[{index}]")
        stored = store.load(name)
        if stored is None:
            raise InputError(f"certificates[{index}]", f"{name!r} is not in the store ({store.describe()})",
                             "give the name a certops.acme.certificate task stored it under")
        wanted.append(stored)
    due = [s for s in wanted if not s.meta.get("revoked_at")]
    results: list[dict[str, Any]] = [
        {"name": s.name, "changed": False, "serial": s.facts.serial, "note": "already revoked (store)"}
        for s in wanted if s not in due]
    if not due or check_mode:
        results += [{"name": s.name, "changed": True, "note": "would revoke"} for s in due]
        return {"changed": bool(due), "certificates": results}
    transport = transport_factory()
    deadline = Deadline(request_timeout * (2 + len(due)), "revocation")
    try:
        if revoke_with == "account_key" and not find_account(transport, account_key(), deadline).exists:
            raise InputError("account_key_src", "no ACME account exists for this key",
                             "revoke with the account that ordered the certificate, or revoke_with: certificate_key")
        for stored in due:
            signer = None
            if revoke_with == "certificate_key":
                if not stored.key_pem:
                    raise InputError("revoke_with", f"certificate {stored.name!r} is for a key kept elsewhere "
                                     "(csr_src, key_src), which the store does not hold",
                                     "revoke it with the account key (revoke_with: account_key)")
                signer = AccountKey.from_key(load_private_key(stored.key_pem, f"stored key of {stored.name!r}"))
            done = revoke(transport, stored, reason, deadline, certificate_key=signer)
            store.update_meta(stored.name, stored.version, revoked_at=revoked_now(), revocation_reason=reason)
            results.append({"name": done.name, "changed": done.changed, "serial": done.serial,
                            "reason": done.reason, "note": done.note})
        return {"changed": any(r["changed"] for r in results), "certificates": results,
                "acme_requests": dict(transport.requests)}
    finally:
        transport.close()


def revoke_at_issuers(store: CertificateStore, directories: Sequence[str], names: Sequence[str],
                      revoke_at: Callable[[int, list[str]], dict[str, Any]]) -> dict[str, Any]:
    """The revoke task with a list of CAs: each certificate is revoked at the CA that issued it
    (the first listed when the store does not say); ``revoke_at(index, names)`` revokes at one."""
    issuers = {directory: index for index, directory in enumerate(directories)}
    names_by_ca: dict[int, list[str]] = {}
    for name in names:
        stored = store.load(name) if isinstance(name, str) else None
        directory = stored.meta.get("directory") if stored else None
        names_by_ca.setdefault(issuers.get(directory, 0) if isinstance(directory, str) else 0, []).append(name)
    out: dict[str, Any] = {"changed": False, "certificates": [], "acme_requests": {}}
    for index, group in sorted(names_by_ca.items()):
        done = revoke_at(index, group)
        out["changed"] = out["changed"] or bool(done.get("changed"))
        out["certificates"] += done.get("certificates", [])
        for kind, count in (done.get("acme_requests") or {}).items():
            out["acme_requests"][kind] = out["acme_requests"].get(kind, 0) + count
    return out
