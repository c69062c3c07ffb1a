"""Certificates in the store that no inventory host wants any more: marked, reported, pruned.

A removed site leaves its certificate (and key) in the store. Nothing renews it (a batch only
orders what its hosts list), but it would sit there for ever, and on an AWX schedule nobody
would notice. So a run that sees every host's wants marks the rest as orphans (the time it
first saw them so), reports them, and with ``prune`` removes those orphaned for at least
``prune_after`` - a grace period, because a host that was unreachable for one run, or a site
moved between layouts, must not lose its certificate. A wanted certificate loses its mark.
"""

from __future__ import annotations

import datetime
from typing import Any, Iterable, Optional

from .crypto import utcnow
from .store import CertificateStore


def orphans(store: CertificateStore, wanted: Iterable[str], *, prune: bool, prune_after: datetime.timedelta,
            write: bool, now: Optional[datetime.datetime] = None) -> dict[str, Any]:
    """Mark, report and (with ``prune``) remove the store's certificates not in ``wanted``.
    ``write=False`` (check mode) changes nothing and reports what would happen."""
    now = now or utcnow()
    wanted_names = set(wanted)
    found, pruned, damaged, marked = [], [], [], []
    for name in store.names():
        reading = store.read(name)
        stored = reading.stored
        if reading.damaged is not None:
            damaged.append(name)  # not judged: the next run that wants it replaces it
            continue
        if stored is None:
            continue
        since_text = stored.meta.get("orphaned_since")
        if name in wanted_names:
            if since_text:
                marked.append(name)
                if write:
                    store.update_meta(name, stored.version, orphaned_since=None)
            continue
        since = orphaned_since(since_text, now) if since_text else now
        if not since_text:
            marked.append(name)
            if write:
                store.update_meta(name, stored.version, orphaned_since=now.isoformat())
        entry = {"name": name, "domains": stored.facts.names(), "not_after": stored.facts.not_after.isoformat(),
                 "orphaned_since": since.isoformat(), "revoked": bool(stored.meta.get("revoked_at")),
                 "pruned": False}
        if prune and now - since >= prune_after:
            if write:
                store.remove(name)
            entry["pruned"] = True
            pruned.append(name)
        found.append(entry)
    return {"orphans": found, "pruned": pruned, "damaged": damaged, "marked": marked}


def orphaned_since(value: object, now: datetime.datetime) -> datetime.datetime:
    """When an orphan mark says the certificate was first seen unwanted. A mark another writer
    damaged (not a time, no time zone, in the future) counts as now: the grace period starts
    again, which can only delay a prune, never hasten one."""
    try:
        since = datetime.datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        since = None
    if since is None or since.tzinfo is None or since > now:
        return now
    return since
