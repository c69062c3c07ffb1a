"""Leases and locks of the shared store (vault_store.VaultStore): one lease per run, renewed
by one heartbeat however many locks it holds, and the fencing that keeps a run which lost its
lease (cut off from the cluster for longer than a lease) from finalizing or storing anything.

Rules a caller may rely on:

- The lease lapses, for good, once no renewal was acknowledged within a lease of the previous
  one; a renewal is never given longer than the lease has left, so a late one cannot hide a gap.
- ``VaultLock.confirm`` passes only with at least CONFIRM_SHARE of a lease left and the lock
  record still naming this run with the lock's token (the KV version its write created).
- Release deletes a lock only while the lease holds and the record still names this run with
  its token; otherwise the lock is left to expire with the lease. A lock ``confirm`` proved ours
  is deleted without reading it again: nobody takes a lock over while its owner's lease holds,
  and the lease has held since that proof (it is checked at release).
- A malformed owner record (another writer's) counts as expired, never as an error.
"""

from __future__ import annotations

import math
import threading
import time
from typing import TYPE_CHECKING, Any, Optional

from ..errors import LockLost, StoreError
from . import StoreLock

if TYPE_CHECKING:
    from .vault import VaultStore

#: An irreversible step needs at least this share of a lease left on this run's lease.
CONFIRM_SHARE = 0.5
#: How long a confirmation reads the lock record again when it finds it missing or older than
#: the version this run wrote: a standby answers reads from its own copy, which can lag behind a
#: write the leader acknowledged (most after a leader change). At most half the lease left.
STALE_READ_GRACE = 10.0
#: Where each run's lease record lives: ``owners/OWNER`` {expires}.
OWNERS = "owners"


class VaultLock(StoreLock):
    def __init__(self, keeper: "LeaseKeeper", path: str, token: int,
                 inherited: Optional[dict[str, Any]] = None) -> None:
        self.keeper = keeper
        self.path = path
        self.inherited_order = inherited
        #: The KV version of the lock record this run wrote: the fencing token.
        self.token = token
        #: Set once ``confirm`` read the record naming this run with ``token``.
        self.proven = False

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def lost(self) -> bool:
        """True once this run's lease lapsed: others may have taken the lock over."""
        return self.keeper.lapsed

    def confirm(self, step: str) -> None:
        """The lease has at least half a lease left and the lock record still names this run
        with this lock's token; else LockLost (and the step must not be taken)."""
        keeper = self.keeper
        keeper.confirm(step, self.name)
        found = self._read_current(step)
        owner = found[0].get("owner") if found else None
        if found is None or owner != keeper.store.owner or found[1] != self.token:
            now_held = f"now held by {str(owner)[:40]!r}" if found else "its record is gone"
            raise LockLost(f"certificate {self.name!r}: its lock was taken over ({now_held}); {step} is left "
                           "to the run that holds it")
        keeper.confirm(step, self.name)  # the read took time too
        self.proven = True

    def _read_current(self, step: str) -> Optional[tuple[dict[str, Any], int]]:
        """The lock record, read again for a while if a node answers with none, or with a
        version older than this run's own write (a lagging standby): only a record at least as
        new as that write can say whether the lock is still ours. Never proceeds on a stale one."""
        keeper = self.keeper
        give_up = time.monotonic() + min(STALE_READ_GRACE, keeper.time_left() / 2)
        while True:
            try:
                found = keeper.store._read(self.path, timeout=keeper.time_left())  # pylint: disable=protected-access
            except StoreError as error:
                raise LockLost(f"certificate {self.name!r}: cannot confirm its lock before {step} within the "
                               f"lease's time left ({error}); the step is not taken") from None
            if (found is not None and found[1] >= self.token) or time.monotonic() >= give_up:
                return found
            time.sleep(0.2)

    def confirm_lease(self, step: str) -> None:
        self.keeper.confirm(step, self.name)

    def note_order(self, note: dict[str, Any]) -> None:
        """The note joins the lock record, written onto this lock's token (check-and-set): a
        record that changed under us means the lock is no longer ours. The write itself is the
        proof, so no share of the lease is asked for (unlike ``confirm``, before an irreversible
        step): a note on a lock that lapsed unnoticed only helps whoever takes it over."""
        keeper = self.keeper
        if keeper.lapsed:
            raise LockLost(f"certificate {self.name!r}: this run's lock lease lapsed; its order is not noted")
        record = {"owner": keeper.store.owner, "order": note}
        token = keeper.store._rewrite_lock(self.path, record, self.token, None)  # pylint: disable=protected-access
        if token is None:
            raise LockLost(f"certificate {self.name!r}: its lock record changed under this run (taken over); "
                           "its order is left to the run that holds the lock")
        self.token = token
        self.proven = True  # the write landed on our own token while the lease held

    def release(self) -> None:
        self.keeper.release(self)


class LeaseKeeper:
    """This run's lease: one record, ``owners/OWNER`` {expires}, renewed every third of a lease
    while the run holds any lock. Every lock names its owner, so renewing costs one write
    however many certificates a batch holds, and a dead run's locks all expire together.

    ``renewed_at`` is when the last acknowledged renewal was *sent* (the expiry it wrote counts
    from then). The lease lapses, for good, when a renewal is not acknowledged before the
    previous one's expiry: from then on another run may hold any of our locks."""

    def __init__(self, store: VaultStore) -> None:
        self.store = store
        self.path = store._path(OWNERS, store.owner)  # pylint: disable=protected-access
        self._held: dict[str, VaultLock] = {}
        self._guard = threading.Condition()
        self._renewing = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._stopped = False
        self.renewed_at = 0.0
        self.lapsed = False

    @property
    def lease(self) -> float:
        return self.store.lock_lease

    def time_left(self) -> float:
        """Seconds until this run's lease ends, as far as this run can prove (0 once lapsed)."""
        return 0.0 if self.lapsed else max(self.renewed_at + self.lease - time.time(), 0.0)

    def _renew(self) -> None:
        """Write a new expiry. A renewal gets no longer than the current lease has left: one
        acknowledged after that cannot prove the lease was never interrupted."""
        started = time.time()
        first = self.renewed_at == 0.0
        limit = None if first else self.renewed_at + self.lease - started
        if limit is not None and limit <= 0:
            self.lapsed = True
            raise LockLost(f"store {self.store.describe()}: this run's lock lease lapsed (not renewed "
                           f"within {self.lease:.0f} s)")
        try:
            self.store._write(self.path, {"expires": started + self.lease}, timeout=limit)  # pylint: disable=protected-access
        except StoreError:
            if not first and time.time() >= self.renewed_at + self.lease:
                self.lapsed = True
            raise
        if not first and time.time() >= self.renewed_at + self.lease:
            self.lapsed = True  # acknowledged too late: the old lease may have run out meanwhile
            raise LockLost(f"store {self.store.describe()}: this run's lock lease was renewed only after it "
                           "had run out")
        self.renewed_at = started

    def confirm(self, step: str, name: str) -> None:
        """At least CONFIRM_SHARE of a lease left, renewing now if the heartbeat is behind."""
        if self.time_left() < self.lease * CONFIRM_SHARE:
            with self._renewing:  # one renewal for every worker that finds the lease short
                if self.time_left() < self.lease * CONFIRM_SHARE and not self.lapsed:
                    try:
                        self._renew()
                    except StoreError:
                        pass  # judged below
        if self.lapsed or self.time_left() < self.lease * CONFIRM_SHARE:
            state = "lapsed" if self.lapsed else f"only {self.time_left():.1f} s left"
            raise LockLost(f"certificate {name!r}: this run's lock lease ({self.lease:.0f} s) is {state}: the store "
                           f"{self.store.describe()} did not confirm it in time, so another run may hold the lock; "
                           f"{step} is not done")

    def start(self) -> None:
        """Before the first lock: the owner record must exist before a lock names it."""
        with self._guard:
            if self._thread is not None:
                return
            self._renew()
            self._thread = threading.Thread(target=self._run, name="certops-vault-lease", daemon=True)
            self._thread.start()

    def alive(self, owner: str) -> bool:
        if owner == self.store.owner:
            return True
        found = self.store._read(self.store._path(OWNERS, owner)) if owner else None  # pylint: disable=protected-access
        return found is not None and owner_expiry(found[0]) > time.time()

    def holds(self, path: str) -> bool:
        with self._guard:
            return path in self._held

    def hold(self, path: str, token: int, inherited: Optional[dict[str, Any]] = None) -> VaultLock:
        lock = VaultLock(self, path, token, inherited)
        with self._guard:
            self._held[path] = lock
        return lock

    def release(self, lock: VaultLock) -> None:
        """Delete the lock record only while it provably is ours: the lease holds, and the record
        names this run with the lock's token. Otherwise leave it to expire with our lease."""
        with self._guard:
            if self._held.get(lock.path) is not lock:
                return
            del self._held[lock.path]
        if self.lapsed or self.time_left() < self.lease * CONFIRM_SHARE:
            return
        store = self.store
        try:
            if not lock.proven:
                found = store._read(lock.path, timeout=self.time_left())  # pylint: disable=protected-access
                if found is None or found[0].get("owner") != store.owner or found[1] != lock.token:
                    return
            store._remove_path(lock.path)  # pylint: disable=protected-access
        except StoreError:
            pass  # the store is gone: the lock expires with our lease

    def stop(self) -> None:
        with self._guard:
            held = list(self._held.values())
        for lock in held:
            self.release(lock)
        with self._guard:
            self._stopped = True
            self._guard.notify_all()
            started = self._thread is not None
        if started and not self.lapsed:
            try:
                self.store._remove_path(self.path)  # pylint: disable=protected-access
            except StoreError:
                pass

    def _run(self) -> None:
        interval = max(self.lease / 3.0, 0.2)
        while True:
            with self._guard:
                self._guard.wait(interval)
                if self._stopped or self.lapsed:
                    return
            with self._renewing:
                try:
                    self._renew()
                except StoreError:
                    pass  # tried again next beat, with less time; _renew marks the lease lapsed


def owner_expiry(record: dict[str, Any]) -> float:
    """An owner record's expiry; a malformed one (another writer's, or damaged) counts as expired."""
    value = record.get("expires")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0
    try:
        expiry = float(value)
    except OverflowError:
        return 0.0
    return expiry if math.isfinite(expiry) else 0.0  # NaN and infinity: a lease that could never end


__all__ = ["CONFIRM_SHARE", "LeaseKeeper", "VaultLock", "owner_expiry"]
