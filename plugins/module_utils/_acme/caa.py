"""CAA pre-flight (RFC 8659, RFC 8657): would the CA be allowed to issue for these names?

A CA checks CAA itself, but only after the order is open and its challenges are answered,
and a refusal then costs a failed validation against its rate limits. Asking DNS first lets a
certificate that CAA forbids fail at once, quoting the record that forbids it.

Rules applied (the CA's own check stays the authority: anything this side cannot decide is
left to it, never a reason to refuse):

- The relevant record set is the first non-empty CAA set found walking from the name up
  towards the top-level domain (RFC 8659 §3). A wildcard is looked up at its base name.
- ``issuewild`` records, when present, govern a wildcard; otherwise ``issue`` does. Without
  any of the governing tag, any CA may issue.
- A record grants the CA when its issuer domain is one of the directory's ``caaIdentities``
  and its ``accounturi``/``validationmethods`` parameters (RFC 8657), when present, name this
  account and this challenge. An empty issuer (``;``) grants no one.
- A record flagged critical with a tag this client does not know forbids issuance (§4.2).
- IP-address identifiers have no CAA (RFC 8738 §7); a CA without ``caaIdentities`` cannot be
  compared and is not checked; a DNS answer that is neither records nor "no such name" (a
  timeout, SERVFAIL, REFUSED) ends the walk without a verdict.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

try:
    import dns.rdatatype
except ImportError:  # dependencies.require_controller_libraries() names what is missing
    pass

from .dns_lookup import Lookup
from .errors import CaaForbidden, CertopsError
from .names import Identifier

#: Tags this client understands; a critical record with any other tag forbids issuance.
KNOWN_TAGS = frozenset({"issue", "issuewild", "iodef", "contactemail", "contactphone", "issuemail", "issuevmc"})
#: Records looked at per name, and characters of a value kept: DNS is outside input.
MAX_RECORDS = 64
MAX_VALUE = 255
QUERY_SECONDS = 3.0


class LookupUndecided(Exception):
    """DNS gave no usable answer for a name (timeout, SERVFAIL, REFUSED): no verdict."""


@dataclass(frozen=True)
class CaaRecord:
    flags: int
    tag: str
    value: str

    @property
    def critical(self) -> bool:
        return bool(self.flags & 0x80)

    def __str__(self) -> str:
        return f'{self.flags} {self.tag} "{self.value}"'


@dataclass(frozen=True)
class RelevantSet:
    """The CAA records that govern a name, and the name they were found at."""

    owner: str
    records: tuple[CaaRecord, ...]


#: Answers the CAA records at exactly one name: [] for none or no such name; raises
#: LookupUndecided when DNS could not say.
CaaQuery = Callable[[str], list[CaaRecord]]


def parse_issuer(value: str) -> tuple[str, dict[str, str]]:
    """An ``issue``/``issuewild`` value: issuer domain (lower case, may be empty) and parameters."""
    issuer, _sep, rest = value.partition(";")
    parameters: dict[str, str] = {}
    for part in rest.split(";"):
        key, sep, val = part.strip().partition("=")
        if sep and key.strip():
            parameters[key.strip().lower()] = val.strip()
    return issuer.strip().lower().rstrip("."), parameters


def _grants(record: CaaRecord, ca_identities: Sequence[str], challenge: str, account_url: Optional[str]) -> bool:
    issuer, parameters = parse_issuer(record.value)
    if not issuer or issuer not in {i.lower().rstrip(".") for i in ca_identities}:
        return False
    if "accounturi" in parameters and account_url and parameters["accounturi"] != account_url:
        return False
    methods = parameters.get("validationmethods")
    return methods is None or challenge in {m.strip() for m in methods.split(",")}


def forbidding_reason(identifier: Identifier, relevant: RelevantSet, ca_identities: Sequence[str],
                      challenge: str, account_url: Optional[str]) -> Optional[str]:
    """Why ``relevant`` forbids the CA to issue for ``identifier``, or None when it allows it."""
    records = relevant.records
    unknown_critical = [r for r in records if r.critical and r.tag not in KNOWN_TAGS]
    if unknown_critical:
        return (f"the CAA record at {relevant.owner} {str(unknown_critical[0])!r} is flagged critical with a "
                "tag this client does not know, which forbids issuance")
    tag = "issuewild" if identifier.is_wildcard and any(r.tag == "issuewild" for r in records) else "issue"
    governing = [r for r in records if r.tag == tag]
    if not governing or any(_grants(r, ca_identities, challenge, account_url) for r in governing):
        return None
    quoted = "; ".join(repr(str(r)) for r in governing[:5])
    return (f"CAA at {relevant.owner} allows only {quoted}, which does not grant this CA "
            f"({', '.join(ca_identities)}) {challenge} issuance for {identifier.value}")


class CaaPreflight:
    """Looks up and judges CAA for a batch, each DNS name once (a fleet's names share parents)."""

    def __init__(self, query: CaaQuery) -> None:
        self._query = query
        self._answers: dict[str, object] = {}
        self._lock = threading.Lock()
        self.lookups = 0

    def _records_at(self, name: str) -> list[CaaRecord]:
        with self._lock:
            cached = self._answers.get(name)
        if cached is None:
            try:
                cached = self._query(name)
            except LookupUndecided as undecided:
                cached = undecided
            with self._lock:
                self._answers[name] = cached
                self.lookups += 1
        if isinstance(cached, LookupUndecided):
            raise cached
        return cached if isinstance(cached, list) else []

    def relevant(self, name: str) -> Optional[RelevantSet]:
        """The first non-empty CAA set from ``name`` up to (excluding) the root; None when there
        is none or DNS could not say."""
        labels = name.lower().rstrip(".").removeprefix("*.").split(".")
        for start in range(len(labels)):
            owner = ".".join(labels[start:])
            try:
                records = self._records_at(owner)
            except LookupUndecided:
                return None
            if records:
                return RelevantSet(owner, tuple(records[:MAX_RECORDS]))
        return None

    def check(self, certificate: str, identifiers: Sequence[Identifier], ca_identities: Sequence[str],
              challenge: str, account_url: Optional[str]) -> None:
        """Raise :class:`CaaForbidden` naming the first name CAA forbids this CA to issue for."""
        if not ca_identities:
            return
        for identifier in identifiers:
            if identifier.type != "dns":
                continue
            relevant = self.relevant(identifier.value)
            if relevant is None:
                continue
            reason = forbidding_reason(identifier, relevant, ca_identities, challenge, account_url)
            if reason:
                raise CaaForbidden(f"certificate {certificate!r}: {reason}; nothing was ordered (add a record "
                                   f"granting one of {', '.join(ca_identities)}, or order from a CA it grants)")


def ca_identities(directory: dict[str, object]) -> list[str]:
    """The directory's ``meta.caaIdentities`` (RFC 8555 §7.1.1), bounded; [] when absent."""
    meta = directory.get("meta")
    values = meta.get("caaIdentities") if isinstance(meta, dict) else None
    if not isinstance(values, list):
        return []
    return [v[:253] for v in values[:16] if isinstance(v, str) and v]


def dns_query(servers: Sequence[tuple[str, int]] = (), timeout: float = QUERY_SECONDS) -> CaaQuery:
    """A CaaQuery through ``servers`` (host, port), or the system's resolvers when none."""
    lookup = Lookup(servers, timeout)

    def query(name: str) -> list[CaaRecord]:
        try:
            answer = lookup.answer(name.rstrip(".") + ".", "CAA")
        except CertopsError as error:
            raise LookupUndecided(str(error)) from None
        if answer is None or answer.rrset is None:
            return []
        return [CaaRecord(int(r.flags), r.tag.decode("ascii", "replace").lower()[:32],
                          r.value.decode("utf-8", "replace")[:MAX_VALUE])
                for r in list(answer.rrset)[:MAX_RECORDS] if r.rdtype == dns.rdatatype.CAA]
    return query
