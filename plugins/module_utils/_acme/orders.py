"""One certificate order, start to finish (RFC 8555 §7.4), on a shared transport.

newOrder -> authorizations -> challenge answers -> poll -> finalize -> poll -> download.

Polling starts at 50 ms and grows by half each round up to 2 s, because a local or nearby CA
validates in milliseconds and a fixed one-second sleep (the ``acme`` library's
``poll_and_finalize``) would dominate a batch. When the server sends Retry-After we wait at
least that long. Every loop is bounded by the order's deadline.

Responders: challenge types other than stateless http-01 need something deployed before the
answer and removed afterwards; they plug in through :class:`ChallengeResponder`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol, Sequence

import josepy as jose
import requests
from cryptography import x509

from .crypto import build_csr, certificate_facts, chain_problems, load_private_key, public_key_matches
from .errors import AcmeProblem, AcmeTransportError, CertopsError
from .names import Identifier
from .transport import PEM_CHAIN, AcmeTransport, Deadline, json_object, parse_retry_after

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
POLL_FIRST = 0.05
POLL_GROWTH = 1.5
POLL_MAX = 2.0


class OrderError(CertopsError):
    """This certificate could not be issued; the message says which name and why."""


@dataclass
class PendingChallenge:
    identifier: Identifier
    type: str
    url: str
    token: str
    key_authorization: str
    authz_url: str


class ChallengeResponder(Protocol):
    """Deploys what a challenge type needs before the CA looks, and removes it afterwards."""

    def deploy(self, challenges: Sequence[PendingChallenge]) -> None: ...

    def cleanup(self, challenges: Sequence[PendingChallenge]) -> None: ...


class StatelessHttp01:
    """The proxy answers ``/.well-known/acme-challenge/<token>`` with ``<token>.<thumbprint>``
    by itself, so nothing is deployed per order."""

    def deploy(self, challenges: Sequence[PendingChallenge]) -> None:
        del challenges

    def cleanup(self, challenges: Sequence[PendingChallenge]) -> None:
        del challenges


@dataclass
class OrderRequest:
    name: str
    identifiers: Sequence[Identifier]
    key_pem: bytes
    challenge: str = "http-01"
    profile: Optional[str] = None


@dataclass
class IssuedCertificate:
    leaf: x509.Certificate
    chain: list[x509.Certificate]
    order_url: str
    alternate_chain_urls: list[str] = field(default_factory=list)


def _require(obj: dict[str, Any], key: str, kind: type, what: str) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or (kind in (str, list) and not value):
        raise AcmeTransportError(f"{what}: the CA's answer has no usable {key!r} field "
                                 "(RFC 8555 requires it)")
    return value


def _links(response: requests.Response, rel: str) -> list[str]:
    """All Link header targets with ``rel`` (requests keeps only one per rel)."""
    found = []
    for header in response.raw.headers.getlist("Link") if hasattr(response.raw, "headers") else []:
        for part in header.split(","):
            match = re.match(r'\s*<([^>]+)>\s*;\s*rel="?([^";]+)"?', part)
            if match and match.group(2) == rel:
                found.append(match.group(1))
    return found


def poll(fetch: Callable[[], tuple[dict[str, Any], requests.Response]],
         done: Callable[[dict[str, Any]], bool], deadline: Deadline) -> dict[str, Any]:
    """Re-fetch until ``done(obj)``; start short, back off, honour Retry-After."""
    delay = POLL_FIRST
    while True:
        obj, response = fetch()
        if done(obj):
            return obj
        wait = delay
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if retry_after is not None:
            wait = max(wait, retry_after)
        deadline.sleep(wait)
        delay = min(delay * POLL_GROWTH, POLL_MAX)


def _problem_text(obj: dict[str, Any]) -> str:
    error = obj.get("error")
    if isinstance(error, dict):
        return str(error.get("detail") or error.get("type") or error)[:300]
    return str(error)[:300] if error else ""


def issue_certificate(transport: AcmeTransport, request: OrderRequest, thumbprint: str,
                      responder: ChallengeResponder, deadline: Deadline) -> IssuedCertificate:
    label = f"certificate {request.name!r}"
    payload: dict[str, Any] = {"identifiers": [i.to_acme() for i in request.identifiers]}
    if request.profile:
        payload["profile"] = request.profile
    response = transport.post(transport.endpoint("newOrder"), payload, deadline, kind="newOrder")
    order = json_object(response, f"{label}: new order")
    order_url = response.headers.get("Location") or ""
    if not order_url:
        raise AcmeTransportError(f"{label}: the CA created an order without a Location header")

    pending: list[PendingChallenge] = []
    for authz_url in _require(order, "authorizations", list, f"{label}: order"):
        authz = json_object(transport.post(authz_url, None, deadline, kind="authz"), f"{label}: authorization")
        ident = authz.get("identifier") if isinstance(authz.get("identifier"), dict) else {}
        value = str(ident.get("value", "?"))
        status = authz.get("status")
        if status == "valid":
            continue  # reused authorization: nothing to prove
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
        token = str(chosen.get("token", ""))
        if not _TOKEN.match(token):
            raise OrderError(f"{label}: the CA sent a challenge token for {value} that is not "
                             f"base64url ({token[:40]!r}); refusing to use it")
        pending.append(PendingChallenge(
            identifier=Identifier(str(ident.get("type", "dns")), value), type=request.challenge,
            url=_require(chosen, "url", str, f"{label}: challenge"), token=token,
            key_authorization=f"{token}.{thumbprint}", authz_url=authz_url))

    responder.deploy(pending)
    try:
        for challenge in pending:
            transport.post(challenge.url, {}, deadline, kind="challenge")
        for challenge in pending:
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
    finally:
        responder.cleanup(pending)

    def fetch_order() -> tuple[dict[str, Any], requests.Response]:
        resp = transport.post(order_url, None, deadline, kind="order poll")
        return json_object(resp, f"{label}: order"), resp

    if order.get("status") not in ("ready", "pending", "valid"):
        raise OrderError(f"{label}: order is {order.get('status')!r} before finalization: "
                         f"{_problem_text(order) or 'no detail'}")

    key = load_private_key(request.key_pem, f"{label} key")
    csr = build_csr(key, request.identifiers)
    if order.get("status") != "valid":
        # Every authorization is valid now, so the order is "ready" (RFC 8555 §7.1.6): finalize
        # at once instead of spending a request to confirm it. A CA that lags behind answers
        # orderNotReady; then we poll until it catches up and finalize again.
        finalize_url = _require(order, "finalize", str, f"{label}: order")
        finalize_payload = {"csr": jose.b64encode(csr).decode("ascii")}
        try:
            resp = transport.post(finalize_url, finalize_payload, deadline, kind="finalize")
        except AcmeProblem as problem:
            if problem.code != "orderNotReady":
                raise
            order = poll(fetch_order, lambda o: o.get("status") != "pending", deadline)
            resp = transport.post(finalize_url, finalize_payload, deadline, kind="finalize")
        order = json_object(resp, f"{label}: finalize")
        if order.get("status") != "valid":
            order = poll(fetch_order, lambda o: o.get("status") not in ("processing", "ready", "pending"),
                         deadline)
        if order.get("status") != "valid":
            raise OrderError(f"{label}: order ended {order.get('status')!r}: "
                             f"{_problem_text(order) or 'no detail'}")

    cert_url = _require(order, "certificate", str, f"{label}: order")
    resp = transport.post(cert_url, None, deadline, kind="certificate", accept=PEM_CHAIN)
    leaf, chain = _verified_chain(resp.content, key, request, label)
    return IssuedCertificate(leaf=leaf, chain=chain, order_url=order_url,
                             alternate_chain_urls=_links(resp, "alternate"))


def _verified_chain(pem: bytes, key: Any, request: OrderRequest,
                    label: str) -> tuple[x509.Certificate, list[x509.Certificate]]:
    """Refuse what the CA sent unless it is the certificate we asked for."""
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise OrderError(f"{label}: the CA's certificate download is not a PEM chain") from None
    leaf, chain = certs[0], certs[1:]
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
