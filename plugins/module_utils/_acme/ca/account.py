"""ACME accounts: key loading, JWK thumbprint, lookup, creation (with EAB), deactivation."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional

try:
    import josepy as jose
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from acme import jws, messages
except ImportError:  # dependencies.require_controller_libraries() names what is missing
    pass

from ... import _host_files
from ..crypto import PrivateKey, generate_private_key, load_private_key, private_key_pem
from ..errors import AcmeProblem, InputError
from .transport import AcmeTransport, json_object, mapping_field
from ..waiting import Deadline

if TYPE_CHECKING:
    from ..store import CertificateStore


@dataclass
class AccountKey:
    key: PrivateKey
    jwk: jose.JWK
    alg: jose.JWASignature
    thumbprint: str  # base64url SHA-256 JWK thumbprint (RFC 7638), public

    @classmethod
    def from_key(cls, key: PrivateKey) -> "AccountKey":
        if isinstance(key, ec.EllipticCurvePrivateKey):
            jwk: jose.JWK = jose.JWKEC(key=key)
            alg = jose.ES384 if key.curve.name == "secp384r1" else jose.ES256
        elif isinstance(key, rsa.RSAPrivateKey):
            jwk, alg = jose.JWKRSA(key=key), jose.RS256
        else:  # pragma: no cover - load_private_key refuses other types already
            raise InputError("account_key", "unsupported key type")
        thumbprint = jose.b64encode(jwk.thumbprint(hash_function=hashes.SHA256)).decode("ascii")
        return cls(key=key, jwk=jwk, alg=alg, thumbprint=thumbprint)


def load_account_key(src: Optional[str], content: Optional[str], passphrase: Optional[str],
                     create: bool = False, key_type: str = "ec256") -> tuple[AccountKey, bool]:
    """Load the account key from a path or from content. Returns (key, created)."""
    if src and content:
        raise InputError("account_key_src", "cannot be combined with account_key_content",
                         "give the key one way only")
    if content:
        return AccountKey.from_key(load_private_key(content, "account_key_content", passphrase)), False
    if not src:
        raise InputError("account_key_src", "no account key given",
                         "set account_key_src (a path on the controller) or account_key_content, "
                         "or $CERTOPS_ACME_ACCOUNT_KEY_FILE (the AWX credential type sets it) "
                         "or $CERTOPS_ACME_ACCOUNT_KEY")
    path = os.path.expanduser(src)
    if not os.path.exists(path):
        if not create:
            raise InputError("account_key_src", f"{path} does not exist",
                             "create it, or let certops.acme.account create it "
                             "(account_key_create: true)")
        key = generate_private_key(key_type)
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, mode=0o700, exist_ok=True)
        _host_files.atomic_write(path, private_key_pem(key), 0o600)
        return AccountKey.from_key(key), True
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise InputError("account_key_src", f"cannot read {path}: {error}") from None
    return AccountKey.from_key(load_private_key(data, "account_key_src", passphrase)), False


@dataclass
class AccountRequest:
    contact: list[str] = field(default_factory=list)
    terms_agreed: bool = False
    eab_kid: Optional[str] = None
    eab_hmac_key: Optional[str] = None
    eab_alg: str = "HS256"


@dataclass
class AccountState:
    url: Optional[str]
    exists: bool
    created: bool = False
    contact: list[str] = field(default_factory=list)
    status: str = ""


def find_account(transport: AcmeTransport, account: AccountKey, deadline: Deadline) -> AccountState:
    """Look the account up without creating it (newAccount with onlyReturnExisting).

    One request per batch. We do not cache the URL across runs: a CA that forgot the account
    (a test CA restarted, an account deactivated elsewhere) would make every later request fail.
    """
    transport.set_account(account.jwk, account.alg, None)
    try:
        response = transport.post(transport.endpoint("newAccount", deadline),
                                  {"onlyReturnExisting": True}, deadline,
                                  kind="newAccount", use_jwk=True)
    except AcmeProblem as problem:
        # RFC 8555 says accountDoesNotExist; some CAs answer a bare 400/404.
        if problem.code == "accountDoesNotExist" or problem.status in (400, 404):
            return AccountState(url=None, exists=False)
        raise
    url = response.headers.get("Location")
    body = json_object(response, "account")
    transport.set_account(account.jwk, account.alg, url)
    return AccountState(url=url, exists=True, contact=list(body.get("contact") or []),
                        status=str(body.get("status", "")))


def create_account(transport: AcmeTransport, account: AccountKey, request: AccountRequest,
                   deadline: Deadline) -> AccountState:
    directory = transport.directory(deadline)
    meta = mapping_field(directory, "meta")
    if meta.get("termsOfService") and not request.terms_agreed:
        raise InputError("terms_agreed", f"the CA requires agreeing to its terms of service "
                                         f"({meta['termsOfService']})", "set terms_agreed: true")
    payload: dict[str, Any] = {"termsOfServiceAgreed": bool(request.terms_agreed)}
    if request.contact:
        payload["contact"] = list(request.contact)
    if request.eab_kid or request.eab_hmac_key:
        if not (request.eab_kid and request.eab_hmac_key):
            raise InputError("eab_kid", "EAB needs both eab_kid and eab_hmac_key")
        try:
            payload["externalAccountBinding"] = messages.ExternalAccountBinding.from_data(
                account_public_key=account.jwk.public_key(), kid=request.eab_kid,
                hmac_key=request.eab_hmac_key, directory=directory,  # type: ignore[arg-type]
                hmac_alg=request.eab_alg)
        except (ValueError, TypeError) as error:
            raise InputError("eab_hmac_key", f"cannot be used: {error}",
                             "give the base64url MAC key exactly as the CA issued it") from None
    elif meta.get("externalAccountRequired"):
        raise InputError("eab_kid", "this CA requires External Account Binding",
                         "set eab_kid and eab_hmac_key from your CA account")
    transport.set_account(account.jwk, account.alg, None)
    response = transport.post(transport.endpoint("newAccount", deadline), payload, deadline,
                              kind="newAccount", use_jwk=True)
    url = response.headers.get("Location")
    body = json_object(response, "account")
    transport.set_account(account.jwk, account.alg, url)
    return AccountState(url=url, exists=True, created=response.status_code == 201,
                        contact=list(body.get("contact") or []), status=str(body.get("status", "")))


def update_contact(transport: AcmeTransport, contact: list[str], deadline: Deadline) -> AccountState:
    response = transport.post(transport.account_url or "", {"contact": contact}, deadline,
                              kind="account")
    body = json_object(response, "account")
    return AccountState(url=transport.account_url, exists=True,
                        contact=list(body.get("contact") or []), status=str(body.get("status", "")))


def change_key(transport: AcmeTransport, old: AccountKey, new: AccountKey, deadline: Deadline) -> None:
    """Roll the account over to ``new`` (keyChange, RFC 8555 §7.3.5); its URL stays the same.

    The transport must hold the account found with the old key. The inner JWS, signed by the
    new key with its public key embedded and no nonce, proves possession of the new key; the
    outer request, signed by the old key, authorises the change."""
    url = transport.account_url
    if not url:
        raise InputError("account_key_src", "no account exists for the current key", "nothing to roll over")
    key_change_url = transport.endpoint("keyChange", deadline)
    inner = jws.JWS.sign(json.dumps({"account": url, "oldKey": old.jwk.public_key().to_partial_json()}).encode(),
                         key=new.jwk, alg=new.alg, nonce=None, url=key_change_url)
    transport.post(key_change_url, inner.json_dumps().encode(), deadline, kind="keyChange")
    transport.set_account(new.jwk, new.alg, url)


def deactivate_account(transport: AcmeTransport, deadline: Deadline) -> None:
    transport.post(transport.account_url or "", {"status": "deactivated"}, deadline, kind="account")


@dataclass
class AccountWish:
    """What the account task wants (``certops.acme.account``'s options, translated)."""

    present: bool = True
    contact: Optional[list[str]] = None          # None: leave the contact as it is
    terms_agreed: bool = False
    allow_creation: bool = True
    eab_kid: Optional[str] = None
    eab_hmac_key: Optional[str] = None
    eab_alg: str = "HS256"


def ensure_account(store: "CertificateStore", directory_url: str, key: AccountKey, wish: AccountWish,
                   transport_factory: Callable[[], AcmeTransport], deadline_seconds: float,
                   check_mode: bool = False, key_created: bool = False) -> dict[str, Any]:
    """Make the account of ``key`` at the CA what ``wish`` says: found, created, contact
    updated or deactivated. Returns the task result. Zero requests when an order through this
    store already used the account and nothing is to change (the store remembers it)."""
    known = store.known_account(directory_url, key.thumbprint) if wish.present and not key_created else None
    if known is not None and (wish.contact is None or sorted(wish.contact) == known.get("contact")):
        return {"changed": False, "account_url": known["url"], "exists": True, "thumbprint": key.thumbprint,
                "contact": known.get("contact") or [], "acme_requests": {}, "known_from_store": True}
    transport = transport_factory()
    deadline = Deadline(deadline_seconds, "the account operation")
    try:
        state = find_account(transport, key, deadline)
        changed = key_created
        if wish.present:
            if not state.exists:
                if not wish.allow_creation:
                    return {"failed": True, "msg": "no account exists for this key and allow_creation is false",
                            "exists": False, "thumbprint": key.thumbprint}
                changed = True
                if not check_mode:
                    state = create_account(transport, key, AccountRequest(
                        contact=wish.contact or [], terms_agreed=wish.terms_agreed, eab_kid=wish.eab_kid,
                        eab_hmac_key=wish.eab_hmac_key, eab_alg=wish.eab_alg), deadline)
            elif wish.contact is not None and sorted(wish.contact) != sorted(state.contact):
                changed = True
                if not check_mode:
                    state = update_contact(transport, wish.contact, deadline)
        elif state.exists:
            changed = True
            if not check_mode:
                deactivate_account(transport, deadline)
        if not check_mode and not wish.present:
            store.remember_account(directory_url, key.thumbprint, None, [])  # deactivated: forget it
        return {"changed": changed, "account_url": state.url, "exists": wish.present and (state.exists or changed),
                "thumbprint": key.thumbprint, "contact": state.contact, "acme_requests": dict(transport.requests)}
    finally:
        transport.close()


def roll_over(store: "CertificateStore", directory_url: str, old: AccountKey, new: AccountKey,
              transport_factory: Callable[[], AcmeTransport], deadline_seconds: float,
              check_mode: bool = False) -> dict[str, Any]:
    """Idempotent key rollover: done when the account already answers to the new key. What the
    store remembered for the old key is forgotten (it no longer opens the account)."""
    transport = transport_factory()
    deadline = Deadline(deadline_seconds, "the account key rollover")
    try:
        if find_account(transport, new, deadline).exists:
            if not check_mode:
                store.remember_account(directory_url, old.thumbprint, None, [])
            return {"changed": False, "account_url": transport.account_url, "exists": True,
                    "thumbprint": new.thumbprint, "acme_requests": dict(transport.requests)}
        state = find_account(transport, old, deadline)
        if not state.exists:
            return {"failed": True, "exists": False, "thumbprint": old.thumbprint,
                    "msg": "account_key_src: no account answers to the current key or to the new one; "
                           "nothing to roll over"}
        if not check_mode:
            change_key(transport, old, new, deadline)
            store.remember_account(directory_url, old.thumbprint, None, [])
        return {"changed": True, "account_url": state.url, "exists": True, "thumbprint": new.thumbprint,
                "previous_thumbprint": old.thumbprint, "acme_requests": dict(transport.requests)}
    finally:
        transport.close()
