"""Who wants a stored certificate: the parties that claim it, kept in its metadata.

A store may serve several parties: the inventories (or teams) whose plays order into it, and
playbooks that call ``certops.acme.certificate`` directly. Each names itself with
``wanted_by``. A certificate records, under ``wanted_by``, every party that has ordered or
kept it since. Only then can the orphans step judge it from complete evidence: a party that no
longer wants a certificate gives up its own claim, and only a certificate no other party
claims becomes that party's orphan (orphans.py).

Cost: a claim is written once, when a party first wants a certificate (an idempotent run whose
claims are in place writes nothing); a new version carries the claims of the version it
replaces in the metadata it is saved with, so issuing costs no extra write.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Optional

from .errors import InputError

#: The metadata field holding the claims: a sorted list of party names.
WANTED_BY = "wanted_by"
#: The party of certificates ordered by a task that names none: never one of the roles'
#: parties, so a role's orphans step never judges what a playbook ordered directly.
DIRECT = "direct"
#: At most this many parties per certificate: a longer list is another writer's damage.
MAX_CLAIMS = 64
_PARTY = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}\Z")


def check_party(value: object, field: str = "wanted_by") -> str:
    """A party name as given in a task: refused unless it is a plain name."""
    if not isinstance(value, str) or not _PARTY.match(value):
        raise InputError(field, f"{value!r} is not a party name",
                         "give 1 to 128 characters from letters, digits and ._:@/- starting with a letter or "
                         "digit, e.g. the inventory's name")
    return value


def claims_of(meta: Any) -> Optional[frozenset[str]]:
    """The parties a version's metadata records, or None when it records none: stored before
    claims were kept, an empty list, or a value another writer damaged (the evidence is then
    incomplete)."""
    raw = meta.get(WANTED_BY) if isinstance(meta, dict) else None
    if not isinstance(raw, list) or not raw or len(raw) > MAX_CLAIMS:
        return None
    if not all(isinstance(item, str) and _PARTY.match(item) for item in raw):
        return None
    return frozenset(raw)


def carried(meta: Any, party: Optional[str]) -> dict[str, Any]:
    """The claims field for a new version replacing one with ``meta`` (None: no version before):
    the old claims plus ``party``. A party of None adds nothing; with no claims to carry either,
    the new version records none."""
    claims = set(claims_of(meta) or ())
    if party is not None:
        claims.add(party)
    return {WANTED_BY: sorted(claims)} if claims else {}


def missing_claim(meta: Any, party: str) -> Optional[list[str]]:
    """The claims to write so that ``party`` is among them, or None when it is already."""
    claims = claims_of(meta) or frozenset()
    return None if party in claims else sorted(claims | {party})


def claim_all(store: Any, stored: Iterable[Any], party: str, write: bool) -> list[str]:
    """Record ``party``'s claim on each stored certificate (a ``StoredCertificate``) that lacks
    it; returns the names claimed (or, with ``write`` False, that would be). A version replaced
    meanwhile is left alone: its writer carried the claims it saw, and the next run adds ours."""
    claimed = []
    for certificate in stored:
        wanted_by = missing_claim(certificate.meta, party)
        if wanted_by is None:
            continue
        if not write or store.update_meta(certificate.name, certificate.version, **{WANTED_BY: wanted_by}):
            claimed.append(certificate.name)
    return claimed
