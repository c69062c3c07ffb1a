"""Failure memory between runs: a certificate whose order failed is not tried again on every
scheduled run, but after an exponential backoff with jitter (1 h doubling to 1 day), or later
when the CA said so (Retry-After, rate limits), and at once when its settings change.

Why: with runs every few hours, a certificate that keeps failing (a name that no longer points
here, a rate limit) would send the CA the same doomed order each time, and CAs pause accounts
that keep failing; RFC 9773 (section 4.3) expects clients that run often to store information
about failures. One small record per failing certificate, in the store, so every controller
sharing the store sees it; it is removed by the next success.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

from .errors import CertopsError
from .names import identifier_values
from .renewal import Action

if TYPE_CHECKING:  # a batch's types; none of them imports this module
    from .results import CertificateResult
    from .spec import CertificateSpec
    from .store import CertificateStore

#: The first wait after a failure, doubled after each further failure up to MAX_BACKOFF.
FIRST_BACKOFF = datetime.timedelta(hours=1)
MAX_BACKOFF = datetime.timedelta(days=1)
#: Up to this fraction is taken off each wait, so controllers and certificates spread out.
JITTER = 0.2
#: A CA's Retry-After is honoured up to this long (a larger one is treated as this).
MAX_RETRY_AFTER = datetime.timedelta(days=7)
#: What is kept of the CA's error text.
MAX_ERROR = 500


@dataclass(frozen=True)
class FailureRecord:
    count: int
    first_failed_at: datetime.datetime
    last_failed_at: datetime.datetime
    next_try_at: datetime.datetime
    last_error: str
    error_type: str
    settings: str

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "first_failed_at": self.first_failed_at.isoformat(),
                "last_failed_at": self.last_failed_at.isoformat(), "next_try_at": self.next_try_at.isoformat(),
                "last_error": self.last_error, "error_type": self.error_type, "settings": self.settings}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Optional["FailureRecord"]:
        """The record, or None when it is not one (a damaged record must not block a certificate:
        another writer may have left any JSON here)."""
        try:
            count = data["count"]
            times = [datetime.datetime.fromisoformat(data[key])
                     for key in ("first_failed_at", "last_failed_at", "next_try_at")]
            if isinstance(count, bool) or not isinstance(count, int) or not 0 < count < 10 ** 6:
                return None
            if any(t.tzinfo is None for t in times) or not isinstance(data["settings"], str):
                return None
            return cls(count=count, first_failed_at=times[0], last_failed_at=times[1], next_try_at=times[2],
                       last_error=str(data.get("last_error", ""))[:MAX_ERROR],
                       error_type=str(data.get("error_type", ""))[:MAX_ERROR], settings=data["settings"])
        except (KeyError, TypeError, ValueError, AttributeError):
            return None

    def holds_back(self, settings: str, now: datetime.datetime) -> bool:
        """Whether a certificate with these settings waits at ``now``."""
        return settings == self.settings and now < self.next_try_at

    def describe(self) -> str:
        return (f"failing since {self.first_failed_at:%Y-%m-%d %H:%M} UTC ({self.count} failed attempt(s); last: "
                f"{self.last_error}); next try after {self.next_try_at:%Y-%m-%d %H:%M} UTC, or at once when its "
                "settings change or force is set")


def settings_key(settings: dict[str, Any]) -> str:
    """A digest of what the certificate is asked to be: a change means a new attempt, now."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:32]


def backoff(count: int, retry_after: Optional[float], draw: Callable[[], float] = random.random) -> datetime.timedelta:
    """The wait after the ``count``-th failure in a row."""
    wait = min(FIRST_BACKOFF * (2 ** max(0, count - 1)), MAX_BACKOFF)
    wait = wait * (1 - JITTER * draw())
    if retry_after is not None and retry_after > 0:
        wait = max(wait, min(datetime.timedelta(seconds=retry_after), MAX_RETRY_AFTER))
    return wait


def after_failure(previous: Optional[FailureRecord], settings: str, now: datetime.datetime, error: str,
                  error_type: str, retry_after: Optional[float],
                  draw: Callable[[], float] = random.random) -> FailureRecord:
    """The record after one more failure (a failure under other settings starts a new count)."""
    carried = previous if previous is not None and previous.settings == settings else None
    count = carried.count + 1 if carried else 1
    return FailureRecord(count=count, first_failed_at=carried.first_failed_at if carried else now,
                         last_failed_at=now, next_try_at=now + backoff(count, retry_after, draw),
                         last_error=error[:MAX_ERROR], error_type=error_type, settings=settings)


def failure_settings(spec: CertificateSpec) -> str:
    """What a failing certificate was asked to be: a change is tried at once."""
    return settings_key({"identifiers": sorted(identifier_values(spec.identifiers)), "key_type": spec.key_type,
                         "challenge": spec.challenge, "profile": spec.profile, "webroot": spec.webroot,
                         "preferred_chain": spec.preferred_chain, "reuse_key": spec.reuse_key,
                         "own_key": spec.own_key.spki_sha256 if spec.own_key else None, "dns": spec.dns})


class FailureMemory:
    """One batch's use of the store's failure records: read for the certificates due (an
    idempotent run reads none), asked whether a record holds a certificate back, extended by a
    counted failure and ended by a success. Store errors become warnings: the memory is advice."""

    def __init__(self, store: CertificateStore, warnings: list[str], last_resort: bool) -> None:
        self.store, self.warnings, self.last_resort = store, warnings, last_resort
        self.records: dict[str, Optional[FailureRecord]] = {}

    def read(self, names: Sequence[str]) -> None:
        found = self.store.failures(names)
        self.records = {name: FailureRecord.from_json(raw) if raw else None for name, raw in found.items()}

    def holding_back(self, spec: CertificateSpec, now: datetime.datetime) -> Optional[FailureRecord]:
        """The record that keeps ``spec`` waiting out its backoff (not when forced or changed)."""
        record = self.records.get(spec.name)
        if record is not None and not spec.force and record.holds_back(failure_settings(spec), now):
            return record
        return None

    def remember(self, result: CertificateResult, spec: CertificateSpec, now: datetime.datetime) -> None:
        if result.action not in (Action.FAILED, Action.ISSUE, Action.RENEW):
            return
        if result.name in self.records:
            previous = self.records[result.name]
        else:  # not read before ordering (a stage complete)
            previous = FailureRecord.from_json(self.store.failure(result.name) or {})
        if result.action == Action.FAILED and result.another_ca_may_help and not self.last_resort:
            return  # the next CA is tried now; only the last one's failure is remembered
        if result.action == Action.FAILED and result.counts_as_failure:
            result.failing = after_failure(previous, failure_settings(spec), now, result.error or "",
                                           result.error_type, result.retry_after)
            try:
                self.store.remember_failure(result.name, result.failing.to_json())
            except CertopsError as error:
                self.warnings.append(f"{result.name}: its failure could not be recorded: {error}")
        elif result.action in (Action.ISSUE, Action.RENEW) and previous is not None:
            try:
                self.store.forget_failure(result.name)
            except CertopsError as error:
                self.warnings.append(f"{result.name}: its old failure record could not be removed: {error}")
