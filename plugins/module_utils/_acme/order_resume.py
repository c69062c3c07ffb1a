"""Finishing the order a stopped run left open, instead of opening another.

A run notes every order it opens on the certificate's lock (``StoreLock.note_order``) before it
answers anything: on the shared store the lock record carries the note, on the file store the
lock file does. A run that takes the lock over (the owner's lease ran out, or its process died
and the kernel dropped its flock) finds the note (``StoreLock.inherited_order``) and fetches
that order instead of sending a newOrder. An order the CA still has ``pending`` or ``ready`` is
finished with the taker's own key: authorizations belong to the account, not to a key, and the
key only enters at finalization (its CSR). So a controller killed mid-wave costs the CA no
second order for what it had opened, which counts against the CA's new-order limits.

The note comes from the store, which another writer may have changed, so it is used only when
it is for this account at this CA, for exactly this certificate's names, younger than
``MAX_NOTE_AGE``, and its URL is on the CA's own origin (``orders.resume_order`` checks that and
what the CA answers). Anything else, and an order the CA reports ``processing``, ``valid`` (its
certificate is for the stopped run's key, which nobody holds) or ``invalid``, gets a new order.
"""

from __future__ import annotations

import datetime
import re
from typing import Any, Optional, Sequence

from .ca.transport import AcmeTransport
from .names import Identifier
from .errors import LockLost
from .orders import PENDING_MAX_AGE, OpenOrder, OrderRequest, open_order, resume_order
from .store import StoreLock
from .waiting import Deadline

#: A note older than this is not followed (an order prepared for hosts waits as long).
MAX_NOTE_AGE = PENDING_MAX_AGE
#: An order URL as a CA hands it out: absolute, http(s), no spaces or controls, bounded.
ORDER_URL = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]{1,300}/[!-~]{0,1700}$")


def order_note(order: OpenOrder, account_url: str, directory_url: str, now: datetime.datetime) -> dict[str, Any]:
    """What a lock keeps of an order opened under it: enough for a taker to find it again and
    to tell whether it is the same certificate at the same CA for the same account."""
    return {"url": order.order_url, "account": account_url, "directory": directory_url,
            "identifiers": [i.to_acme() for i in order.request.identifiers], "opened": now.isoformat()}


def noted_url(note: object, identifiers: Sequence[Identifier], account_url: str, directory_url: str,
              now: datetime.datetime) -> Optional[str]:
    """The order URL of ``note`` if the note is well formed and for this certificate, account
    and CA, and young enough; else None."""
    if not isinstance(note, dict) or not account_url:
        return None
    url, opened = note.get("url"), note.get("opened")
    if not (isinstance(url, str) and url.isascii() and ORDER_URL.fullmatch(url)) or not isinstance(opened, str):
        return None
    if note.get("account") != account_url or note.get("directory") != directory_url:
        return None
    if note.get("identifiers") != [i.to_acme() for i in identifiers]:
        return None
    try:
        when = datetime.datetime.fromisoformat(opened[:64])
    except ValueError:
        return None
    if when.tzinfo is None or not datetime.timedelta(0) <= now - when <= MAX_NOTE_AGE:
        return None
    return url


def inherited_order(lock: StoreLock, transport: AcmeTransport, request: OrderRequest, account_url: str,
                    thumbprint: str, deadline: Deadline, now: datetime.datetime) -> Optional[OpenOrder]:
    """The order the lock's previous holder noted, fetched again to be finished with
    ``request``'s key, or None (nothing inherited, or nothing that can be finished)."""
    url = noted_url(lock.inherited_order, request.identifiers, account_url, transport.directory_url, now)
    if url is None:
        return None
    return resume_order(transport, request, url, thumbprint, deadline)


def open_or_resume(lock: StoreLock, transport: AcmeTransport, request: OrderRequest, account_url: str,
                   thumbprint: str, deadline: Deadline, now: datetime.datetime, note: bool) -> OpenOrder:
    """The order the lock's previous holder left open, if it can be finished; else a new one,
    noted on the lock (``note``) for a run that may take the lock over from this one."""
    resumed = inherited_order(lock, transport, request, account_url, thumbprint, deadline, now)
    if resumed is not None:
        return resumed
    order = open_order(transport, request, thumbprint, deadline)
    if note:
        lock.note_order(order_note(order, account_url, transport.directory_url, now))
    return order


def lost_meanwhile(lock: StoreLock) -> Optional[LockLost]:
    """Why an order failed when its lock was lost on the way: a run that took the lock over may
    have finished the same order, and the CA then refuses this run's answers as out of turn. The
    lost lock is the cause to report (``lock_lost``), not the CA's refusal."""
    try:
        lock.confirm_lease("finishing its order")
    except LockLost as lost:
        return lost
    return None


__all__ = ["MAX_NOTE_AGE", "inherited_order", "lost_meanwhile", "noted_url", "open_or_resume", "order_note"]
