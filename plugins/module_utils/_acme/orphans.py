"""Certificates in the store that a party no longer wants: released, marked, reported, pruned.

A removed site leaves its certificate (and key) in the store. Nothing renews it (a batch only
orders what its hosts list), but it would sit there for ever, and on an AWX schedule nobody
would notice. A store may serve several parties, though (inventories, teams, playbooks calling
the modules directly: claims.py), and one party's wants say nothing of another's. So a party
judges only what it claims:

- a certificate it claims and no longer wants, which another party claims too, is released
  (its claim removed), never marked;
- one it alone claims and no longer wants is its orphan: marked with the time first seen so,
  reported, and with ``prune`` removed once orphaned for ``prune_after`` - a grace period,
  because a host that was unreachable for one run, or a site moved between layouts, must not
  lose its certificate. A wanted certificate loses its mark;
- one that records no claims (stored before claims were kept, or by hand) is reported as
  unclaimed and left alone, unless the party takes them as its own (``claim_unclaimed``).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any, Iterable, Optional

from .claims import WANTED_BY, claims_of
from .crypto import utcnow
from .store import CertificateStore, StoredCertificate


@dataclass(frozen=True)
class OrphanJudge:
    """One party's view: what it wants, whether it prunes, and when."""

    party: str
    wanted: frozenset[str]
    prune: bool
    prune_after: datetime.timedelta
    write: bool
    claim_unclaimed: bool = False


def orphans(store: CertificateStore, wanted: Iterable[str], *, prune: bool, prune_after: datetime.timedelta,
            write: bool, party: str, claim_unclaimed: bool = False,
            now: Optional[datetime.datetime] = None) -> dict[str, Any]:
    """Release, mark, report and (with ``prune``) remove what ``party`` claims and does not
    want. ``write=False`` (check mode) changes nothing and reports what would happen."""
    judge = OrphanJudge(party, frozenset(wanted), prune, prune_after, write, claim_unclaimed)
    now = now or utcnow()
    out: dict[str, list[Any]] = {"orphans": [], "pruned": [], "damaged": [], "marked": [], "released": [],
                                 "unclaimed": []}
    for name in store.names():
        reading = store.read(name)
        if reading.damaged is not None:
            out["damaged"].append(name)  # not judged: the next run that wants it replaces it
        elif reading.stored is not None:
            _judge_one(store, judge, reading.stored, now, out)
    return out


def _judge_one(store: CertificateStore, judge: OrphanJudge, stored: StoredCertificate, now: datetime.datetime,
               out: dict[str, list[Any]]) -> None:
    name, meta = stored.name, stored.meta
    since_text = meta.get("orphaned_since")
    if name in judge.wanted:
        if since_text:
            out["marked"].append(name)
            if judge.write:
                store.update_meta(name, stored.version, orphaned_since=None)
        return
    claims = claims_of(meta)
    if claims is None and not judge.claim_unclaimed:
        out["unclaimed"].append(name)
        return
    claims = claims if claims is not None else frozenset({judge.party})
    if judge.party not in claims:
        return  # another party's: only it can tell whether it still wants it
    others = sorted(claims - {judge.party})
    if others:
        out["released"].append(name)
        if judge.write:
            store.update_meta(name, stored.version, **{WANTED_BY: others, "orphaned_since": None})
        return
    since = orphaned_since(since_text, now) if since_text else now
    if not since_text:
        out["marked"].append(name)
        if judge.write:
            store.update_meta(name, stored.version, orphaned_since=now.isoformat())
    entry = {"name": name, "domains": stored.facts.names(), "not_after": stored.facts.not_after.isoformat(),
             "orphaned_since": since.isoformat(), "revoked": bool(meta.get("revoked_at")), "pruned": False}
    if judge.prune and now - since >= judge.prune_after:
        # Removed only if, read again under its lock, it is the same version and still
        # claimed by this party alone: another party may have claimed it since.
        entry["pruned"] = not judge.write or store.remove_if(
            name, stored.version, lambda current: _alone(current, judge))
        if entry["pruned"]:
            out["pruned"].append(name)
    out["orphans"].append(entry)


def _alone(meta: dict[str, Any], judge: OrphanJudge) -> bool:
    claims = claims_of(meta)
    if claims is None:
        return judge.claim_unclaimed
    return claims == frozenset({judge.party})


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
