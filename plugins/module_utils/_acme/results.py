"""What a batch reports per certificate, and what the reports add up to.

``CertificateResult`` is one certificate's outcome (the action plugin turns it into the task
result with ``to_dict``); ``failed_result`` builds a failure and sorts it: whether it counts
towards the failure memory, and whether another CA might do better (fallback.py). The
schedule's figures come from here too: when a stored certificate is due, and by when the next
run should start.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

from .crypto import utcnow
from .errors import AcmeProblem, AcmeTransportError, CaaForbidden, LockLost, OrderError, ProfileRefused
from .failures import FailureRecord
from .names import identifier_values
from .renewal import Action, AriWindow, RenewalPolicy
from .store import StoredCertificate

if TYPE_CHECKING:  # spec.py builds results for the entries it refuses
    from .spec import CertificateSpec


@dataclass
class CertificateResult:
    name: str
    action: Action
    reason: str = ""
    domains: list[str] = field(default_factory=list)
    error: Optional[str] = None
    stored: Optional[StoredCertificate] = None
    ari: Optional[AriWindow] = None
    #: When the stored certificate becomes due (the chosen point of the CA's window, else the
    #: lifetime rule), for the "next run due by" of a schedule; None without a certificate.
    renew_at: Optional[datetime.datetime] = None
    #: A failure: the CA's problem type and Retry-After, and whether it counts towards the
    #: failure memory (not for errors in the task's own input, nor for a certificate held back).
    error_type: str = ""
    retry_after: Optional[float] = None
    counts_as_failure: bool = False
    #: The failure memory of a failing certificate (after this run).
    failing: Optional[FailureRecord] = None
    #: A failure another CA might not have (rate limit, CA unreachable, CAA, refused profile):
    #: with several CAs the certificate is ordered from the next (fallback.py).
    another_ca_may_help: bool = False
    #: The CAs tried before the one this result is from, each with why it failed.
    tried: list[str] = field(default_factory=list)
    #: This run lost the certificate's lock mid-run (a shared store's lease lapsed, or another
    #: run took it over): nothing was finalized or stored for it after that.
    lock_lost: bool = False

    @property
    def changed(self) -> bool:
        return self.action in (Action.ISSUE, Action.RENEW, Action.PENDING)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "action": str(self.action), "changed": self.changed,
                                "reason": self.reason, "domains": self.domains, "error": self.error,
                                "not_after": None, "days_left": None, "serial": None, "sha256": None}
        if self.stored is not None:
            summary = self.stored.summary()
            data.update({k: summary[k] for k in ("not_after", "serial", "sha256", "issuer", "key_type")})
            data["days_left"] = round((self.stored.facts.not_after - utcnow()).total_seconds() / 86400, 1)
        data["profile"] = self.stored.meta.get("profile") if self.stored is not None else None
        data["profile_note"] = _profile_note(self.stored)
        data["directory"] = self.stored.meta.get("directory") if self.stored is not None else None
        data["tried"] = list(self.tried)
        data["lock_lost"] = self.lock_lost
        data["renew_at"] = self.renew_at.isoformat() if self.renew_at is not None else None
        data["failing_since"] = self.failing.first_failed_at.isoformat() if self.failing else None
        data["next_try_at"] = self.failing.next_try_at.isoformat() if self.failing else None
        data["failures"] = self.failing.count if self.failing else 0
        data["renewal_window"] = None if self.ari is None else {
            "start": self.ari.start.isoformat(), "end": self.ari.end.isoformat(),
            "selected": self.ari.selected.isoformat()}
        return data


def _profile_note(stored: Optional[StoredCertificate]) -> Optional[str]:
    """Says so when a preferred profile (``profile: {prefer: NAME}``) was not the one ordered."""
    preferred = stored.meta.get("profile_preferred") if stored is not None else None
    if not isinstance(preferred, str) or stored is None or stored.meta.get("profile") == preferred:
        return None
    ordered = stored.meta.get("profile")
    return (f"preferred profile {preferred[:64]!r} is not offered by the CA that issued it; ordered under "
            + (f"{str(ordered)[:64]!r}" if ordered else "the CA's default profile"))


def failed_result(spec: CertificateSpec, error: Union[str, Exception]) -> CertificateResult:
    """A failed certificate. What the CA answered about it (a problem document, a failed
    validation, a refused profile) counts towards its failure memory, with the problem type
    and Retry-After; a CA that could not be reached, the task's input, the store or a challenge
    deployment do not: retrying those on the next run costs the CA nothing."""
    counts = isinstance(error, (AcmeProblem, OrderError))
    return CertificateResult(spec.name, Action.FAILED, error=str(error), domains=identifier_values(spec.identifiers),
                             error_type=(getattr(error, "type", "") or type(error).__name__) if counts else "",
                             retry_after=getattr(error, "retry_after", None), counts_as_failure=counts,
                             another_ca_may_help=another_ca_may_help(error), lock_lost=isinstance(error, LockLost))


#: Problem codes (RFC 8555 §6.7 and the profiles draft) that another CA may well not answer.
FALLBACK_PROBLEMS = frozenset({"rateLimited", "caa", "invalidProfile", "serverInternal"})


def another_ca_may_help(error: Union[str, Exception]) -> bool:
    """Whether ``error`` is one retrying at the same CA will not fix but another CA might: a rate
    limit, a CA unreachable (past its deadline) or failing, CAA, a profile it refuses. Not a
    failed validation, the task's input, the store or a challenge deployment."""
    if isinstance(error, AcmeProblem):
        return error.code in FALLBACK_PROBLEMS or error.status >= 500
    return isinstance(error, (AcmeTransportError, CaaForbidden, ProfileRefused))


def next_run_due_by(results: Sequence[CertificateResult], now: datetime.datetime) -> Optional[datetime.datetime]:
    """The latest time the next run should start: the earliest renewal point, or a failing
    certificate's next try, or now when something failed outside the failure memory or waits
    on the hosts (None when nothing is stored or failing)."""
    points = [r.renew_at for r in results if r.renew_at is not None and r.action != Action.FAILED]
    for result in results:
        if result.action == Action.PENDING or (result.action == Action.FAILED and result.failing is None):
            return now
        if result.failing is not None:
            points.append(result.failing.next_try_at)
    return max(now, min(points)) if points else None


def renewal_point(result: CertificateResult, policy: RenewalPolicy) -> Optional[datetime.datetime]:
    """When ``result``'s stored certificate is due: the point chosen in the CA's window when one
    applies to it, else expiry minus the policy's threshold. A certificate issued by this run
    has no window yet (the CA is first asked a day later): the lifetime rule stands until then."""
    if result.stored is None:
        return None
    facts = result.stored.facts
    if result.ari is not None and result.action == Action.KEEP:
        return result.ari.selected
    return facts.not_after - policy.threshold(facts.lifetime)
