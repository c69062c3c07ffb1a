"""Deadlines and the one backoff every wait in the engine uses.

A ``Deadline`` is a point in monotonic time; every wait is bounded by one, so a task ends by
its ``timeout`` whatever a CA, a DNS server or a store does. ``Backoff`` is the single retry
rhythm: a delay that starts short and grows by a factor up to a cap, never sleeping past the
deadline. It serves the ACME transport's network retries, order polling (which also honours
Retry-After), the dns-01 propagation wait and both stores' lock waits. Standard library only.
"""

from __future__ import annotations

import time

from .errors import AcmeDeadlineError


class Deadline:
    """A point in monotonic time; every wait in the engine is bounded by one."""

    def __init__(self, seconds: float, what: str) -> None:
        self.at = time.monotonic() + seconds
        self.seconds = seconds
        self.what = what

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def check(self) -> None:
        if self.remaining() <= 0:
            raise AcmeDeadlineError(f"{self.what} did not finish within {self.seconds:.0f} s")

    def sleep(self, seconds: float) -> None:
        """Sleep, but never past the deadline (then raise)."""
        self.check()
        time.sleep(max(0.0, min(seconds, self.remaining())))
        self.check()

    def backoff(self, first: float, factor: float, cap: float) -> "Backoff":
        return Backoff(self, first, factor, cap)


class Backoff:
    """Waits between attempts: ``first``, then ``factor`` times longer each time, at most ``cap``."""

    def __init__(self, deadline: Deadline, first: float, factor: float, cap: float) -> None:
        self.deadline = deadline
        self.delay = first
        self.factor = factor
        self.cap = cap

    def wait(self, at_least: float = 0.0) -> bool:
        """Sleep before the next attempt: the next delay (or ``at_least``, when longer, such as a
        server's Retry-After), cut short at the deadline. False, without sleeping, once the
        deadline has passed: the caller then gives up with its own message."""
        remaining = self.deadline.remaining()
        if remaining <= 0:
            return False
        time.sleep(min(max(self.delay, at_least), remaining))
        self.delay = min(self.delay * self.factor, self.cap)
        return True
