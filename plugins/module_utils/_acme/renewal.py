"""The renewal decision: a pure function of (what is wanted, what is stored, policy, now).

No I/O here, so every case is a unit test. The default policy is the one Let's Encrypt and
the other mature clients use: renew when a third of the lifetime remains, or half of it for
short-lived certificates (under 10 days), so a 6-day certificate is renewed after 3 days.
"""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass
from typing import Optional, Sequence

from typing import TYPE_CHECKING

from .crypto import CertificateFacts
from .errors import InputError
from .names import Identifier
from .own_key import certificate_key_sha256
from .store import KEY_KEPT_ELSEWHERE

if TYPE_CHECKING:  # the spec uses this module's types
    from .spec import CertificateSpec
    from .store import Reading, StoredCertificate

SHORT_LIVED = datetime.timedelta(days=10)


@dataclass(frozen=True)
class RenewalPolicy:
    """When to renew. At most one of the two may be set; neither means the default fraction."""

    remaining_days: Optional[float] = None
    remaining_fraction: Optional[float] = None

    def __post_init__(self) -> None:
        if self.remaining_days is not None and self.remaining_fraction is not None:
            raise InputError("renew_remaining_days", "cannot be combined with renew_remaining_fraction",
                             "set only one of them")
        if self.remaining_days is not None and self.remaining_days < 0:
            raise InputError("renew_remaining_days", "must be zero or more")
        if self.remaining_fraction is not None and not 0 < self.remaining_fraction < 1:
            raise InputError("renew_remaining_fraction", "must be between 0 and 1 (exclusive)",
                             "e.g. 0.33 renews when a third of the lifetime is left")

    def threshold(self, lifetime: datetime.timedelta) -> datetime.timedelta:
        """How much remaining validity triggers a renewal for a certificate of this lifetime."""
        if self.remaining_days is not None:
            return datetime.timedelta(days=self.remaining_days)
        fraction = self.remaining_fraction
        if fraction is None:
            fraction = 0.5 if lifetime < SHORT_LIVED else 1 / 3
        return lifetime * fraction


@dataclass(frozen=True)
class AriWindow:
    """The CA's suggested renewal window (RFC 9773) and the point chosen inside it."""

    start: datetime.datetime
    end: datetime.datetime
    selected: datetime.datetime
    explanation_url: str = ""

    def describe(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M} - {self.end:%Y-%m-%d %H:%M} UTC"


class PlainEnum(str, enum.Enum):
    """A str enum that compares, prints and formats as its plain value ("keep", not
    "Action.KEEP"), on every Python the controller runs."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class Action(PlainEnum):
    """What happened (or, in check mode, would happen) to a certificate."""

    KEEP = "keep"
    ISSUE = "issue"          # nothing usable stored
    RENEW = "renew"
    PENDING = "pending"      # stage prepare: challenges handed to the hosts
    FAILED = "failed"


@dataclass(frozen=True)
class Decision:
    action: Action     # KEEP, ISSUE or RENEW
    reason: str

    @property
    def needs_order(self) -> bool:
        return self.action != Action.KEEP


def _days(delta: datetime.timedelta) -> str:
    return f"{delta.total_seconds() / 86400:.1f} days"


def renewal_decision(wanted: Sequence[Identifier], wanted_key_type: str,
                     current: Optional[CertificateFacts], policy: RenewalPolicy,
                     now: datetime.datetime, force: bool = False, revoked: bool = False,
                     ari: Optional[AriWindow] = None) -> Decision:
    """Decide keep / issue / renew for one certificate.

    Name comparison ignores order (a reordered list is the same certificate), but the key type
    must match exactly: a user who switches to RSA wants an RSA certificate now.
    """
    if current is None:
        return Decision(Action.ISSUE, "no certificate in the store")
    if force:
        return Decision(Action.RENEW, "forced")
    if revoked:
        return Decision(Action.RENEW, "the stored certificate was revoked")
    have, want = set(current.identifiers), set(wanted)
    if have != want:
        added = sorted(i.value for i in want - have)
        removed = sorted(i.value for i in have - want)
        parts = []
        if added:
            parts.append("added " + ", ".join(added))
        if removed:
            parts.append("removed " + ", ".join(removed))
        return Decision(Action.RENEW, "names changed (" + "; ".join(parts) + ")")
    if current.key_type != wanted_key_type:
        return Decision(Action.RENEW, f"key type changed ({current.key_type or 'unknown'} -> {wanted_key_type})")
    remaining = current.not_after - now
    if remaining <= datetime.timedelta(0):
        return Decision(Action.RENEW, "expired")
    if ari is not None:
        # The CA's window replaces the lifetime rule (RFC 9773 §4.2). A window that moved into
        # the past - the CA asking for early renewal, e.g. before a mass revocation - is open.
        explanation = f"; see {ari.explanation_url}" if ari.explanation_url else ""
        if now >= ari.selected:
            late = " (the window has passed)" if now > ari.end else ""
            return Decision(Action.RENEW, f"the CA's renewal window (ARI) is open: {ari.describe()}{late}{explanation}")
        return Decision(Action.KEEP, f"{_days(remaining)} left; the CA's renewal window (ARI) is {ari.describe()}, "
                                     f"renewing after {ari.selected:%Y-%m-%d %H:%M} UTC")
    threshold = policy.threshold(current.lifetime)
    if remaining <= threshold:
        return Decision(Action.RENEW, f"{_days(remaining)} left, inside the renewal window "
                                      f"(renew with {_days(threshold)} left)")
    return Decision(Action.KEEP, f"{_days(remaining)} left (renew with {_days(threshold)} left)")


def decide_read(spec: CertificateSpec, reading: Reading, now: datetime.datetime,
                ari: Optional[AriWindow] = None) -> Decision:
    """``decide`` on what the store gave: a damaged record is a certificate to replace."""
    if reading.damaged is not None:
        return Decision(Action.ISSUE, f"the stored certificate is damaged ({reading.damaged.reason}); a new one "
                                      "replaces it")
    return decide(spec, reading.stored, now, ari)


def decide(spec: CertificateSpec, stored: Optional[StoredCertificate],
           now: datetime.datetime, ari: Optional[AriWindow] = None) -> Decision:
    decision = renewal_decision(spec.identifiers, spec.key_type, stored.facts if stored else None,
                                spec.policy, now, spec.force, revoked=bool(stored and stored.meta.get("revoked_at")),
                                ari=ari)
    if decision.action != Action.KEEP or stored is None:
        return decision
    # The key is part of what was asked for: another key (of the same type) at csr_src/key_src,
    # or the switch between a key kept elsewhere and one certops makes, is a new certificate.
    if spec.own_key is not None and certificate_key_sha256(stored.cert_pem) != spec.own_key.spki_sha256:
        return Decision(Action.RENEW, f"the key given by {spec.own_key.describe()} is not the stored certificate's")
    if spec.own_key is None and stored.meta.get("key") == KEY_KEPT_ELSEWHERE:
        return Decision(Action.RENEW, "the stored certificate is for a key kept elsewhere; certops now makes the key")
    return decision
