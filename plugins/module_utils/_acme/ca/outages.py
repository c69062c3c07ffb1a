"""Memory of CAs that could not be reached: one is passed over at once for a while.

Without it, a CA that is down costs every run its full wait - ``fallback_after`` before the
next CA is tried, the whole task timeout when it is the only one - however often the schedule
runs. A CA that cannot be reached (connection refused, no answer, no route) is recorded in the
store with when it started and the last error; until ``retry_at`` (5 minutes, doubling with
each further failure, at most an hour) a batch that needs it passes it over without a request
when another CA follows, and gives it only ``fallback_after`` when it is the last one. The
first success removes the record. Records are shared through the store like the failure
memory, so every controller sharing the store skips the same outage.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
import contextlib
from typing import Any, Callable, Optional

from ..crypto import utcnow
from ..errors import AcmeTransportError, CertopsError
from ..store import CertificateStore

#: The first pass-over after a CA could not be reached, doubled after each further failure.
FIRST_PASS_OVER = datetime.timedelta(minutes=5)
MAX_PASS_OVER = datetime.timedelta(hours=1)
#: What is kept of the last error.
MAX_ERROR = 300


@dataclass(frozen=True)
class CaOutage:
    directory: str
    since: datetime.datetime
    failures: int
    last_error: str
    retry_at: datetime.datetime

    def current(self, now: datetime.datetime) -> bool:
        """Whether the CA is still to be passed over at ``now``."""
        return now < self.retry_at

    def describe(self) -> str:
        return (f"the ACME server at {self.directory} has been unreachable since {self.since:%Y-%m-%d %H:%M} UTC "
                f"({self.failures} failed attempt(s), last: {self.last_error}); passed over until "
                f"{self.retry_at:%H:%M} UTC")

    def to_json(self) -> dict[str, Any]:
        return {"directory": self.directory, "since": self.since.isoformat(), "failures": self.failures,
                "last_error": self.last_error, "retry_at": self.retry_at.isoformat()}

    @classmethod
    def from_json(cls, directory: str, data: Any) -> Optional["CaOutage"]:
        """The record, or None when it is not one (another writer may have left anything here;
        a damaged record must never keep a CA from being asked)."""
        if not isinstance(data, dict):
            return None
        try:
            since = datetime.datetime.fromisoformat(data["since"])
            retry_at = datetime.datetime.fromisoformat(data["retry_at"])
            failures = data["failures"]
        except (KeyError, TypeError, ValueError):
            return None
        if since.tzinfo is None or retry_at.tzinfo is None or isinstance(failures, bool) \
                or not isinstance(failures, int) or not 0 < failures < 10 ** 6:
            return None
        if retry_at - since > datetime.timedelta(days=2) + MAX_PASS_OVER:
            retry_at = since  # implausibly far: ask the CA now rather than skip it for days
        return cls(directory, since, failures, str(data.get("last_error", ""))[:MAX_ERROR], retry_at)


def remembered(store: CertificateStore, directory: str) -> Optional[CaOutage]:
    return CaOutage.from_json(directory, store.ca_outage(directory))


def after_failure(previous: Optional[CaOutage], directory: str, error: str, now: datetime.datetime) -> CaOutage:
    """The outage after one more failed attempt to reach the CA."""
    failures = (previous.failures if previous else 0) + 1
    wait = min(FIRST_PASS_OVER * 2 ** min(failures - 1, 10), MAX_PASS_OVER)
    return CaOutage(directory, previous.since if previous else now, failures, error[:MAX_ERROR], now + wait)


def record_failure(store: CertificateStore, directory: str, error: str, now: datetime.datetime) -> CaOutage:
    outage = after_failure(remembered(store, directory), directory, error, now)
    store.remember_ca_outage(directory, outage.to_json())
    return outage


def account_at(store: CertificateStore, directory: str, check: Callable[[], dict[str, Any]],
               record: bool = True) -> dict[str, Any]:
    """The account task's outcome at one CA of several: passed over while the CA is remembered
    unreachable, else ``check()``; one CA's failure never stops the others' (a failed outcome)."""
    outage = None
    with contextlib.suppress(CertopsError):
        outage = remembered(store, directory)
    if outage is not None and outage.current(utcnow()):
        return {"failed": True, "msg": outage.describe(), "changed": False}
    try:
        outcome = check()
    except AcmeTransportError as error:
        if record:
            with contextlib.suppress(CertopsError):
                record_failure(store, directory, str(error), utcnow())
        return {"failed": True, "msg": str(error), "changed": False}
    except CertopsError as error:
        return {"failed": True, "msg": str(error), "changed": False}
    if outage is not None and record:
        with contextlib.suppress(CertopsError):
            store.forget_ca_outage(directory)
    return outcome
