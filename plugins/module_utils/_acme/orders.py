"""One certificate order, start to finish (RFC 8555 §7.4), on a shared transport.

newOrder -> authorizations -> challenge answers -> poll -> finalize -> poll -> download.

Polling starts at 50 ms and grows by half each round up to 2 s, because a local or nearby CA
validates in milliseconds and a fixed one-second sleep (the ``acme`` library's
``poll_and_finalize``) would dominate a batch. When the server sends Retry-After we wait at
least that long. Every loop is bounded by the order's deadline.

The flow is split in two phases so a batch can deploy every challenge at once (one DNS update
and one propagation wait for the whole batch) and so challenges that live on hosts can be
deployed by other Ansible tasks between the phases: :func:`open_order` (newOrder and
authorizations), then :func:`complete_order` (answer, poll, finalize, download, verify).
Responders plug in through :class:`challenges.ChallengeResponder`.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

try:
    import josepy as jose
    from acme import messages
    import requests
    from cryptography import x509
except ImportError:  # dependencies.require_controller_libraries() names what is missing
    pass

from .crypto import (MAX_CHAIN_LENGTH, build_csr, certificate_facts, chain_matches, chain_problems, chain_root, load_private_key,
                     public_key_matches, without_repeats)
from .errors import AcmeProblem, AcmeTransportError, OrderError, ProfileRefused
from .challenges import PendingChallenge
from .names import Identifier, checked_issuers
from .ca.transport import PEM_CHAIN, AcmeTransport, json_object, mapping_field, parse_retry_after
from .waiting import Deadline

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
POLL_FIRST = 0.05
POLL_GROWTH = 1.5
POLL_MAX = 2.0


@dataclass
class OrderRequest:
    name: str
    identifiers: Sequence[Identifier]
    key_pem: bytes
    challenge: str = "http-01"
    profile: Optional[str] = None
    #: Issuer name to prefer among the CA's chains (the default chain when none matches).
    preferred_chain: Optional[str] = None
    #: ARI certID of the certificate this order replaces (RFC 9773 §5), when renewing.
    replaces: Optional[str] = None
    #: The CSR (DER) for a key certops does not hold (own_key.py); ``key_pem`` is then empty.
    csr_der: Optional[bytes] = None
    #: ``profile`` is only preferred: a CA that does not offer it orders under its default.
    profile_preferred: bool = False


@dataclass
class OpenOrder:
    """An order whose challenges are known but not yet answered."""

    request: OrderRequest
    order_url: str
    order: dict[str, Any]
    pending: list[PendingChallenge]


@dataclass
class IssuedCertificate:
    leaf: x509.Certificate
    chain: list[x509.Certificate]
    order_url: str
    alternate_chain_urls: list[str] = field(default_factory=list)
    #: Name of the CA at the top of the chosen chain (issuer of its last certificate).
    chain_root: str = ""


def _require(obj: dict[str, Any], key: str, kind: type, what: str) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or (kind in (str, list) and not value):
        raise AcmeTransportError(f"{what}: the CA's answer has no usable {key!r} field "
                                 "(RFC 8555 requires it)")
    return value


def _links(response: requests.Response, rel: str) -> list[str]:
    """All Link header targets with ``rel``. ``response.links`` keeps one per rel, but a CA sends
    one ``alternate`` per extra chain; the joined header holds them all."""
    return [link["url"] for link in requests.utils.parse_header_links(response.headers.get("Link", ""))
            if link.get("rel") == rel and link.get("url")]


def poll(fetch: Callable[[], tuple[dict[str, Any], requests.Response]],
         done: Callable[[dict[str, Any]], bool], deadline: Deadline) -> dict[str, Any]:
    """Re-fetch until ``done(obj)``; start short, back off, honour Retry-After."""
    backoff = deadline.backoff(POLL_FIRST, POLL_GROWTH, POLL_MAX)
    while True:
        obj, response = fetch()
        if done(obj):
            return obj
        if not backoff.wait(at_least=parse_retry_after(response.headers.get("Retry-After")) or 0.0):
            deadline.check()


def _problem_text(obj: dict[str, Any]) -> str:
    error = obj.get("error")
    if isinstance(error, dict):
        return str(error.get("detail") or error.get("type") or error)[:300]
    return str(error)[:300] if error else ""


_NEW_ORDER_MESSAGE: Any = None


def new_order_payload(request: OrderRequest) -> bytes:
    """The newOrder body: the ``acme`` library's NewOrder message, extended by the ARI
    ``replaces`` field it does not have (a subclass, built on first use so that importing this
    module never needs the library)."""
    global _NEW_ORDER_MESSAGE  # pylint: disable=global-statement
    if _NEW_ORDER_MESSAGE is None:
        class NewOrderWithReplaces(messages.NewOrder):
            """newOrder with ``replaces`` (RFC 9773 §5)."""

            replaces: Optional[str] = jose.field("replaces", omitempty=True)
        _NEW_ORDER_MESSAGE = NewOrderWithReplaces
    message = _NEW_ORDER_MESSAGE(
        identifiers=tuple(messages.Identifier.from_json(i.to_acme()) for i in request.identifiers),
        profile=request.profile or None, replaces=request.replaces or None)
    return message.json_dumps().encode()


#: The profile Let's Encrypt requires for IP-address certificates (RFC 8738 identifiers).
IP_PROFILE = "shortlived"


def order_profile(request: OrderRequest, directory: dict[str, Any]) -> Optional[str]:
    """The profile to order ``request`` under, decided from the CA's directory before ordering.

    A profile the user named must be one the CA offers, unless it is only preferred: then the
    CA's own choice is taken, as if none were named. A certificate for IP addresses with no
    profile named takes ``shortlived`` when the CA offers it (Let's Encrypt issues IP
    certificates under no other); a CA that offers profiles but not that one fails it here,
    before any order exists, instead of refusing it at finalization. A CA without profiles
    (RFC 8555 alone) decides itself and gets no profile."""
    label = f"certificate {request.name!r}"
    meta = directory.get("meta")
    offered = meta.get("profiles") if isinstance(meta, dict) else None
    listed = ", ".join(sorted(str(p)[:40] for p in offered)[:20]) if isinstance(offered, dict) else ""
    if request.profile and isinstance(offered, dict) and request.profile in offered:
        return request.profile
    if request.profile and not request.profile_preferred:
        raise ProfileRefused(f"{label}: profile {request.profile!r} is not offered by this CA "
                             + (f"(it offers: {listed})" if listed else "(its directory lists no profiles)"))
    if not any(i.type == "ip" for i in request.identifiers) or not isinstance(offered, dict) or not offered:
        return None
    if IP_PROFILE in offered:
        return IP_PROFILE
    addresses = ", ".join(i.value for i in request.identifiers if i.type == "ip")
    raise ProfileRefused(f"{label}: it names IP addresses ({addresses}), which need the {IP_PROFILE!r} profile, "
                         f"and this CA does not offer it (it offers: {listed}); set profile to one of those "
                         "that allows IP addresses, or order these addresses from a CA that offers "
                         f"{IP_PROFILE!r}")


def open_order(transport: AcmeTransport, request: OrderRequest, thumbprint: str,
               deadline: Deadline) -> OpenOrder:
    """newOrder and its authorizations; returns the challenges still to be answered."""
    label = f"certificate {request.name!r}"
    if request.profile or any(i.type == "ip" for i in request.identifiers):
        request = dataclasses.replace(request, profile=order_profile(request, transport.directory(deadline)))
    try:
        response = transport.post(transport.endpoint("newOrder", deadline), new_order_payload(request), deadline,
                                  kind="newOrder")
    except AcmeProblem as problem:
        if not request.replaces or problem.status >= 500:
            raise
        # A CA may refuse ``replaces`` (already replaced by another order, unknown certificate):
        # the renewal matters more than the hint, so order again without it.
        request = dataclasses.replace(request, replaces=None)
        response = transport.post(transport.endpoint("newOrder", deadline), new_order_payload(request), deadline,
                                  kind="newOrder")
    order = json_object(response, f"{label}: new order")
    order_url = response.headers.get("Location") or ""
    if not order_url:
        raise AcmeTransportError(f"{label}: the CA created an order without a Location header")
    return OpenOrder(request=request, order_url=order_url, order=order,
                     pending=_challenges_to_answer(transport, order, request, thumbprint, deadline, label))


def _challenges_to_answer(transport: AcmeTransport, order: dict[str, Any], request: OrderRequest, thumbprint: str,
                          deadline: Deadline, label: str, answered_too: bool = True) -> list[PendingChallenge]:
    """Each of the order's authorizations fetched, and the challenge of ``request``'s type in
    those still to be proven; without ``answered_too``, only challenges not answered yet (an
    order taken up from another run: a challenge is answered once)."""
    pending: list[PendingChallenge] = []
    for authz_url in _require(order, "authorizations", list, f"{label}: order"):
        authz = json_object(transport.post(authz_url, None, deadline, kind="authz"), f"{label}: authorization")
        challenge = _challenge_to_answer(authz, str(authz_url), request, thumbprint, label)
        if challenge is not None and (answered_too or _challenge_status(authz, challenge.url) == "pending"):
            pending.append(challenge)
    return pending


def _origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def resume_order(transport: AcmeTransport, request: OrderRequest, order_url: str, thumbprint: str,
                 deadline: Deadline) -> Optional[OpenOrder]:
    """An order opened earlier (by a run that stopped holding the lock), fetched again to be
    finished with ``request``'s key; None unless it is at the CA's own origin, for exactly
    ``request``'s names, and still ``pending`` or ``ready``. Challenges the earlier run already
    answered are only awaited (a challenge is answered once)."""
    label = f"certificate {request.name!r}"
    try:
        if _origin(order_url) != _origin(transport.endpoint("newOrder", deadline)):
            return None
        order = json_object(transport.post(order_url, None, deadline, kind="order resume"), f"{label}: order")
        if order.get("status") not in ("pending", "ready"):
            return None
        named = order.get("identifiers")
        if not isinstance(named, list) or len(named) > len(request.identifiers) or {
                Identifier(str(i.get("type")), str(i.get("value"))) for i in named if isinstance(i, dict)
        } != set(request.identifiers):
            return None
        pending = _challenges_to_answer(transport, order, request, thumbprint, deadline, label, answered_too=False)
    except (AcmeProblem, OrderError):
        return None  # gone, refused or failed meanwhile: a new order instead
    return OpenOrder(request=request, order_url=order_url, order=order, pending=pending)


def _challenge_status(authz: dict[str, Any], url: str) -> Optional[str]:
    for challenge in authz.get("challenges") or []:
        if isinstance(challenge, dict) and challenge.get("url") == url:
            status = challenge.get("status")
            return status if isinstance(status, str) else None
    return None


def _challenge_to_answer(authz: dict[str, Any], authz_url: str, request: OrderRequest, thumbprint: str,
                         label: str) -> Optional[PendingChallenge]:
    """The challenge of ``request``'s type in one authorization (None: already valid), after
    checking that the CA asks about a name this order names and sends a usable token."""
    ident = mapping_field(authz, "identifier")
    value = str(ident.get("value", "?"))
    if authz.get("wildcard") and not value.startswith("*."):
        value = "*." + value  # RFC 8555 §7.1.4: the authorization names the base domain
    if Identifier(str(ident.get("type", "dns")), value) not in request.identifiers:
        # Never deploy anything for a name we did not order: a hostile CA could otherwise
        # make a dns-01 hook write (and delete) records of its choosing.
        raise OrderError(f"{label}: the CA sent an authorization for {value[:100]!r}, which this "
                         "order does not name; refusing it")
    status = authz.get("status")
    if status == "valid":
        return None  # reused authorization: nothing to prove
    if status != "pending":
        raise OrderError(f"{label}: authorization for {value} is {status!r}")
    challenges = authz.get("challenges")
    if not isinstance(challenges, list):
        raise AcmeTransportError(f"{label}: authorization for {value} lists no challenges")
    chosen = next((c for c in challenges if isinstance(c, dict) and c.get("type") == request.challenge), None)
    if chosen is None:
        offered = ", ".join(str(c.get("type")) for c in challenges if isinstance(c, dict))
        raise OrderError(f"{label}: the CA offers no {request.challenge} challenge for {value} "
                         f"(offered: {offered or 'none'})")
    issuers: tuple[str, ...] = ()
    if request.challenge == "dns-persist-01":
        # No token: the persistent record binds the account instead (draft-ietf-acme-dns-persist),
        # matched against the issuer domain names the challenge carries.
        issuers = tuple(checked_issuers(chosen.get("issuer-domain-names", chosen.get("issuerDomainNames")),
                                        f"{label}: the challenge for {value}"))
        token = ""
    else:
        token = str(chosen.get("token", ""))
        if not _TOKEN.fullmatch(token):
            raise OrderError(f"{label}: the CA sent a challenge token for {value} that is not "
                             f"base64url ({token[:40]!r}); refusing to use it")
    return PendingChallenge(
        certificate=request.name, identifier=Identifier(str(ident.get("type", "dns")), value),
        type=request.challenge, url=_require(chosen, "url", str, f"{label}: challenge"), token=token,
        key_authorization=f"{token}.{thumbprint}" if token else "", authz_url=authz_url, issuers=issuers)


def complete_order(transport: AcmeTransport, opened: OpenOrder, deadline: Deadline,
                   before_finalize: Optional[Callable[[], None]] = None,
                   before_answer: Optional[Callable[[], None]] = None) -> IssuedCertificate:
    """Answer the deployed challenges, wait for validation, finalize, download and verify.
    ``before_finalize`` runs right before each finalize request and may raise to abandon the
    order unfinalized (the batch confirms its lock there); ``before_answer`` likewise before the
    first challenge is answered (the batch checks its lease: a run that took the lock over may
    be finishing this very order)."""
    request = opened.request
    label = f"certificate {request.name!r}"
    if before_answer is not None and opened.pending:
        before_answer()
    _answer_and_await_validation(transport, opened, deadline, label)
    order = opened.order
    if order.get("status") not in ("ready", "pending", "valid"):
        raise OrderError(f"{label}: order is {order.get('status')!r} before finalization: "
                         f"{_problem_text(order) or 'no detail'}")
    key: Any
    if request.csr_der:
        csr = request.csr_der
        key = x509.load_der_x509_csr(csr).public_key()
    else:
        key = load_private_key(request.key_pem, f"{label} key")
        csr = build_csr(key, request.identifiers)
    if order.get("status") != "valid":
        order = _finalize(transport, opened.order_url, order, csr, deadline, before_finalize, label)
    cert_url = _require(order, "certificate", str, f"{label}: order")
    resp = transport.post(cert_url, None, deadline, kind="certificate", accept=PEM_CHAIN)
    leaf, chain = _verified_chain(resp.content, key, request, label)
    alternates = _links(resp, "alternate")
    if request.preferred_chain and not chain_matches(chain, request.preferred_chain):
        # Alternates are only fetched when the default chain is not the preferred one.
        for url in alternates:
            alt = transport.post(url, None, deadline, kind="alternate chain", accept=PEM_CHAIN)
            alt_leaf, alt_chain = _verified_chain(alt.content, key, request, label)
            if chain_matches(alt_chain, request.preferred_chain):
                leaf, chain = alt_leaf, alt_chain
                break
    return IssuedCertificate(leaf=leaf, chain=chain, order_url=opened.order_url, alternate_chain_urls=alternates,
                             chain_root=chain_root(leaf, chain))


def _answer_and_await_validation(transport: AcmeTransport, opened: OpenOrder, deadline: Deadline,
                                 label: str) -> None:
    for challenge in opened.pending:
        transport.post(challenge.url, {}, deadline, kind="challenge")
    for challenge in opened.pending:
        def fetch_authz(url: str = challenge.authz_url) -> tuple[dict[str, Any], requests.Response]:
            resp = transport.post(url, None, deadline, kind="authz poll")
            return json_object(resp, f"{label}: authorization"), resp
        authz = poll(fetch_authz, lambda a: a.get("status") != "pending", deadline)
        if authz.get("status") != "valid":
            detail = ""
            for chall in authz.get("challenges") or []:
                if isinstance(chall, dict) and chall.get("error"):
                    detail = _problem_text(chall)
            raise OrderError(f"{label}: validation of {challenge.identifier.value} by "
                             f"{challenge.type} failed ({authz.get('status')}): {detail or 'no detail'}")


def _finalize(transport: AcmeTransport, order_url: str, order: dict[str, Any], csr: bytes, deadline: Deadline,
              before_finalize: Optional[Callable[[], None]], label: str) -> dict[str, Any]:
    """Finalizes with ``csr`` and waits for the order to be valid; returns the valid order.
    Every authorization is valid now, so the order is "ready" (RFC 8555 §7.1.6): finalize at
    once instead of spending a request to confirm it. A CA that lags behind answers
    orderNotReady; then we poll until it catches up and finalize again."""
    def fetch_order() -> tuple[dict[str, Any], requests.Response]:
        resp = transport.post(order_url, None, deadline, kind="order poll")
        return json_object(resp, f"{label}: order"), resp

    finalize_url = _require(order, "finalize", str, f"{label}: order")
    finalize_payload = {"csr": jose.b64encode(csr).decode("ascii")}
    if before_finalize is not None:
        before_finalize()
    try:
        resp = transport.post(finalize_url, finalize_payload, deadline, kind="finalize")
    except AcmeProblem as problem:
        if problem.code != "orderNotReady":
            raise
        poll(fetch_order, lambda o: o.get("status") != "pending", deadline)
        if before_finalize is not None:
            before_finalize()
        resp = transport.post(finalize_url, finalize_payload, deadline, kind="finalize")
    order = json_object(resp, f"{label}: finalize")
    if order.get("status") != "valid":
        order = poll(fetch_order, lambda o: o.get("status") not in ("processing", "ready", "pending"), deadline)
    if order.get("status") != "valid":
        raise OrderError(f"{label}: order ended {order.get('status')!r}: {_problem_text(order) or 'no detail'}")
    return order


def _verified_chain(pem: bytes, key: Any, request: OrderRequest,
                    label: str) -> tuple[x509.Certificate, list[x509.Certificate]]:
    """Refuse what the CA sent unless it is the certificate we asked for."""
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise OrderError(f"{label}: the CA's certificate download is not a PEM chain") from None
    if len(certs) > MAX_CHAIN_LENGTH + 1:
        raise OrderError(f"{label}: the CA sent {len(certs)} certificates; a chain of more than "
                         f"{MAX_CHAIN_LENGTH} is refused")
    leaf, chain = certs[0], without_repeats(certs[1:])
    if not public_key_matches(key, leaf):
        raise OrderError(f"{label}: the CA returned a certificate for a different key")
    got = set(certificate_facts(leaf).identifiers)
    want = set(request.identifiers)
    if got != want:
        missing = sorted(i.value for i in want - got)
        extra = sorted(i.value for i in got - want)
        raise OrderError(f"{label}: the CA returned a certificate whose names do not match the "
                         f"order (missing: {missing}, unexpected: {extra})")
    problem = chain_problems(leaf, chain)
    if problem:
        raise OrderError(f"{label}: the CA's chain does not verify: {problem}")
    return leaf, chain


#: How long an order prepared for host-side challenges may wait for its second stage.
PENDING_MAX_AGE = datetime.timedelta(hours=1)


def pending_record(order: OpenOrder, alpn: Optional[dict[str, list[str]]] = None) -> dict[str, Any]:
    """An opened order (and the key it will be finalized with) as the store keeps it until the
    hosts have deployed its challenges; ``alpn`` holds tls-alpn-01 material per identifier."""
    request = order.request
    return {"created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "name": request.name, "identifiers": [i.to_acme() for i in request.identifiers],
            "challenge": request.challenge, "profile": request.profile,
            "preferred_chain": request.preferred_chain,
            "key_pem": request.key_pem.decode("ascii"), "order_url": order.order_url,
            "csr": jose.b64encode(request.csr_der).decode("ascii") if request.csr_der else None,
            "order": order.order, "pending": [c.to_dict() for c in order.pending],
            "alpn": alpn or {}}


def order_from_record(record: Optional[dict[str, Any]], identifiers: Sequence[Identifier],
                      now: datetime.datetime) -> Optional[OpenOrder]:
    """The order a pending record holds if it is recent and for the same names, else None."""
    if not record:
        return None
    try:
        created = datetime.datetime.fromisoformat(record["created"])
        idents = [Identifier(i["type"], i["value"]) for i in record["identifiers"]]
        if idents != list(identifiers) or now - created > PENDING_MAX_AGE:
            return None
        request = OrderRequest(record["name"], idents, record["key_pem"].encode("ascii"), record["challenge"],
                               record.get("profile"), preferred_chain=record.get("preferred_chain"),
                               csr_der=jose.b64decode(record["csr"]) if record.get("csr") else None)
        return OpenOrder(request=request, order_url=record["order_url"], order=record["order"],
                         pending=[PendingChallenge.from_dict(c) for c in record["pending"]])
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def pending_alpn(record: Optional[dict[str, Any]]) -> dict[str, list[str]]:
    """tls-alpn-01 material of a pending record: {identifier: [cert PEM, key PEM]}."""
    alpn = (record or {}).get("alpn") or {}
    return alpn if isinstance(alpn, dict) else {}
