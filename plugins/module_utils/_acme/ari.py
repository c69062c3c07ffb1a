"""ACME Renewal Information (RFC 9773): the CA says when to renew each certificate.

``renewal_window`` returns the suggested window of a stored certificate, from the store's
metadata while the CA's Retry-After has not passed, otherwise from one unauthenticated GET of
``renewalInfo/<certID>``, and writes the answer back. The point to renew at is picked at random
inside the window once (RFC 9773 §4.2) and kept while the window stays the same, so parallel
fleets spread their renewals and repeated runs agree. The decision itself stays a pure function
(renewal.renewal_decision).
"""

from __future__ import annotations

import datetime
import random
from typing import Any, Callable, Optional, Sequence

from .crypto import ari_cert_id, split_pem_chain
from .errors import AcmeProblem, CertopsError
from .renewal import AriWindow
from .store import CertificateStore, StoredCertificate
from .ca.transport import AcmeTransport, parse_retry_after
from .waiting import Deadline

#: Bounds on the CA's Retry-After: poll at least daily, at most every minute.
MIN_RECHECK = datetime.timedelta(minutes=1)
MAX_RECHECK = datetime.timedelta(days=1)
#: How long to remember that a CA (directory) has no renewalInfo endpoint.
UNSUPPORTED_RECHECK = datetime.timedelta(days=1)


def _parse_time(value: Any) -> datetime.datetime:
    text = str(value).strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)


def select_in_window(start: datetime.datetime, end: datetime.datetime, fraction: float) -> datetime.datetime:
    """The point ``fraction`` (0..1) of the way through the window."""
    return start + (end - start) * min(max(fraction, 0.0), 1.0)


#: A certificate just issued is first asked about after this long (its window is far ahead);
#: until then the lifetime rule decides. Saves one request per new certificate.
FIRST_ASK_AFTER = datetime.timedelta(days=1)


def meta_at_issuance(now: datetime.datetime) -> dict[str, Any]:
    """The ``ari`` metadata of a certificate stored right after issuance."""
    return {"next_check": (now + FIRST_ASK_AFTER).isoformat()}


def cached_window(meta: dict[str, Any], now: datetime.datetime) -> tuple[Optional[AriWindow], bool]:
    """(window, fresh): what the store remembers, and whether it may be used without asking."""
    ari = meta.get("ari")
    if not isinstance(ari, dict):
        return None, False
    try:
        fresh = now < _parse_time(ari["next_check"])
        if ari.get("unsupported") or "start" not in ari:
            return None, fresh
        return AriWindow(_parse_time(ari["start"]), _parse_time(ari["end"]), _parse_time(ari["selected"]),
                         str(ari.get("explanation_url") or "")), fresh
    except (KeyError, ValueError, TypeError):
        return None, False


def _remember(store: CertificateStore, stored: StoredCertificate, remember: bool, ari: dict[str, Any]) -> None:
    if remember:  # not in check mode
        store.update_meta(stored.name, stored.version, ari=ari)


def renewal_window(store: CertificateStore, stored: StoredCertificate, transport: Callable[[], AcmeTransport],
                   now: datetime.datetime, deadline: Deadline,
                   rand: Callable[[], float] = random.random, remember: bool = True) -> Optional[AriWindow]:
    """The ARI window for ``stored`` (None when the CA has no ARI or the certificate no certID)."""
    window, fresh = cached_window(stored.meta, now)
    if fresh:
        return window
    cert_id = ari_cert_id(split_pem_chain(stored.cert_pem)[0])
    acme = transport()
    base = acme.directory(deadline).get("renewalInfo")
    if not cert_id or not isinstance(base, str) or not base:
        _remember(store, stored, remember, {
            "unsupported": True, "next_check": (now + UNSUPPORTED_RECHECK).isoformat()})
        return None
    response = acme.get(f"{base.rstrip('/')}/{cert_id}", deadline, kind="renewalInfo")
    if response.status_code == 404:
        _remember(store, stored, remember, {
            "unsupported": True, "next_check": (now + UNSUPPORTED_RECHECK).isoformat()})
        return None
    if not response.ok:
        raise AcmeProblem(response.status_code, response.url, response.text[:300])
    try:
        body = response.json()
        start = _parse_time(body["suggestedWindow"]["start"])
        end = _parse_time(body["suggestedWindow"]["end"])
    except (ValueError, KeyError, TypeError):
        raise CertopsError(f"certificate {stored.name!r}: the CA's renewalInfo answer has no valid "
                           f"suggestedWindow: {response.text[:200]}") from None
    if end < start:
        raise CertopsError(f"certificate {stored.name!r}: the CA's renewal window ends before it starts")
    # Keep the point already chosen while it still lies inside the (possibly moved) window.
    if window is not None and start <= window.selected <= end:
        selected = window.selected
    else:
        selected = select_in_window(start, end, rand())
    retry = parse_retry_after(response.headers.get("Retry-After"))
    recheck = datetime.timedelta(seconds=retry) if retry is not None else MAX_RECHECK
    recheck = min(max(recheck, MIN_RECHECK), MAX_RECHECK)
    explanation = str(body.get("explanationURL") or "")
    _remember(store, stored, remember, {
        "start": start.isoformat(), "end": end.isoformat(), "selected": selected.isoformat(),
        "next_check": (now + recheck).isoformat(), "cert_id": cert_id, "explanation_url": explanation})
    return AriWindow(start, end, selected, explanation)


class RenewalWindows:
    """The ARI windows of one batch's stored certificates, each kept with the version it was
    read for: a certificate replaced meanwhile has no window until it is read again."""

    def __init__(self) -> None:
        self._windows: dict[str, tuple[str, Optional[AriWindow]]] = {}

    def for_stored(self, stored: Optional[StoredCertificate]) -> Optional[AriWindow]:
        if stored is None:
            return None
        version, window = self._windows.get(stored.name, ("", None))
        return window if version == stored.version else None

    def take_cached(self, stored: Sequence[StoredCertificate], now: datetime.datetime) -> list[StoredCertificate]:
        """Keeps the windows the store's cache still holds (the CA's Retry-After allows);
        returns the certificates whose window must be asked for."""
        to_ask = []
        for each in stored:
            window, fresh = cached_window(each.meta, now)
            if fresh:
                self._windows[each.name] = (each.version, window)
            else:
                to_ask.append(each)
        return to_ask

    def by_lifetime(self, stored: Sequence[StoredCertificate]) -> None:
        """No window for these: their lifetime decides."""
        for each in stored:
            self._windows[each.name] = (each.version, None)

    def ask(self, store: CertificateStore, to_ask: Sequence[StoredCertificate],
            transport: Callable[[], AcmeTransport], now: datetime.datetime, deadline: Deadline,
            in_parallel: Callable[..., Any], remember: bool) -> list[tuple[str, CertopsError]]:
        """Asks the CA for each window with ``in_parallel`` (a pool's map); returns the
        certificates whose renewalInfo failed, with why (their lifetime decides)."""
        def one(stored: StoredCertificate) -> tuple[str, str, Optional[AriWindow], Optional[CertopsError]]:
            try:
                return stored.name, stored.version, renewal_window(store, stored, transport, now, deadline,
                                                                   remember=remember), None
            except CertopsError as error:
                return stored.name, stored.version, None, error
        problems = []
        for name, version, window, problem in in_parallel(one, to_ask):
            self._windows[name] = (version, window)
            if problem is not None:
                problems.append((name, problem))
        return problems
