"""Taking a batch's certificate locks so that runs sharing a store split the work of a wave.

Three controllers started on the same 300 names used to end with one of them issuing all 300:
each took what locks it could, and on the first one held elsewhere gave back every later one and
waited in name order (the rule that keeps two runs from each holding what the other waits for).
Now a batch orders in two passes:

1. ``take``: each lock is tried once, without waiting, just before its order is opened (in the
   batch's worker threads, in list order). The batch orders what it got, then releases it - it
   never waits while holding a lock. A run that starts a moment after another on the same wave
   finds the first names taken and takes the ones the other has not reached yet.
2. ``wait_in_order`` for what was held elsewhere, afterwards: by then the other run has usually
   stored it, and the re-read under the lock keeps it. Here the batch may wait, with the old
   rule: tried at once again, then, from the first one still held elsewhere, waited for in name
   order holding no later one.

A run's share of a wave is what it locked first; controllers that start together each take
about their share, and none waits for a lock while it holds one.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

from .errors import CertopsError
from .store import CertificateStore, StoreLock


@dataclass
class Taken:
    """The locks a pass took, the names held elsewhere, and why a lock could not be had at all
    (a store that refuses writes, a wait that ran out)."""

    locks: dict[str, StoreLock] = field(default_factory=dict)
    elsewhere: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def _attempt(store: CertificateStore, name: str, taken: Taken) -> Optional[StoreLock]:
    try:
        return store.try_acquire(name)
    except CertopsError as error:
        taken.failed[name] = str(error)
        return None


def take(store: CertificateStore, name: str, taken: Taken) -> Optional[StoreLock]:
    """The first pass, one certificate at a time, just before its order is opened (from the
    batch's worker threads): the lock, or None with the name noted as held elsewhere or failed.
    A run that starts later then takes the names the earlier one has not reached yet."""
    lock = _attempt(store, name, taken)
    if lock is not None:
        taken.locks[name] = lock
    elif name not in taken.failed:
        taken.elsewhere.append(name)
    return lock


def try_all(store: CertificateStore, names: Sequence[str], pool: Callable[[int], ThreadPoolExecutor]) -> Taken:
    """Every lock tried once, in parallel (with a shared store each take is a network write)."""
    taken = Taken()
    ordered = sorted(names)
    with pool(len(ordered)) as workers:
        tried = dict(zip(ordered, workers.map(lambda name: _attempt(store, name, taken), ordered)))
    taken.locks = {name: lock for name, lock in tried.items() if lock is not None}
    taken.elsewhere = [name for name in ordered if name not in taken.locks and name not in taken.failed]
    return taken


def release_all(locks: dict[str, StoreLock], pool: Callable[[int], ThreadPoolExecutor]) -> None:
    if locks:
        with pool(len(locks)) as workers:
            list(workers.map(lambda lock: lock.release(), locks.values()))


def wait_in_order(store: CertificateStore, names: Sequence[str], timeout: float,
                  pool: Callable[[int], ThreadPoolExecutor]) -> Taken:
    """Every lock of ``names``, waiting where need be: tried at once; if some are held elsewhere,
    the locks after the first of those are given back and the rest are waited for in name order,
    so this run never waits while holding a lock with a later name."""
    taken = try_all(store, names, pool)
    if not taken.elsewhere:
        return taken
    first = taken.elsewhere[0]
    release_all({name: taken.locks.pop(name) for name in list(taken.locks) if name > first}, pool)
    for name in sorted(names):
        if name < first or name in taken.failed:
            continue
        try:
            taken.locks[name] = store.acquire(name, timeout)
        except CertopsError as error:
            taken.failed[name] = str(error)
    taken.elsewhere = []
    return taken
