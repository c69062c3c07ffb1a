"""dns-persist-01 (draft-ietf-acme-dns-persist-02), the client side: experimental, behind the
``dns_persist_experimental`` flag because the draft may still change.

The record is published once, by whoever runs the DNS, and then serves every order:

    _validation-persist.<name>. TXT "<issuer domain>; accounturi=<hashed account URI>[; policy=wildcard]"

The hashed account URI is the CA's ``accountHashPrefix`` + ``sha-256/`` + base64url(SHA-256(
one length octet || name || the account key's JWK thumbprint || the account URL)). Before an
order, each name's record is looked up: a missing or non-matching one fails the certificate
with the exact record to publish (nothing is ordered); one whose ``persistUntil`` has passed
counts as missing; one that ends within ``warn_days`` gives a warning. The challenge itself
needs nothing deployed: the client answers it with ``{}``.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from ..caa import parse_issuer
from . import PendingChallenge
from ..dns_lookup import Lookup
from ..errors import CertopsError, PersistRecordMissing
from ..names import Identifier, checked_issuers
from ..waiting import Deadline

CHALLENGE = "dns-persist-01"
LABEL = "_validation-persist"


def hashed_account_uri(prefix: str, domain: str, thumbprint: str, account_url: str) -> str:
    """The draft's hashed URI for ``domain`` (or ``*``, the opt-out that fits every name)."""
    name = domain.encode("ascii")
    digest = hashlib.sha256(bytes([len(name)]) + name + thumbprint.encode("ascii") + account_url.encode("ascii"))
    return f"{prefix}sha-256/{base64.urlsafe_b64encode(digest.digest()).rstrip(b'=').decode('ascii')}"


@dataclass
class PersistSettings:
    warn_days: float = 30.0


@dataclass
class PersistCheck:
    """Looks up and judges each name's record before an order; collects the warnings."""

    lookup: Lookup
    settings: PersistSettings = field(default_factory=PersistSettings)
    warnings: list[str] = field(default_factory=list)

    def wanted_record(self, identifier: Identifier, issuer: str, prefix: str, thumbprint: str,
                      account_url: str) -> tuple[str, str]:
        base = identifier.value[2:] if identifier.is_wildcard else identifier.value
        # The record printed is bound to its own name (the draft's default); a published record
        # using the "*" opt-out is accepted as well.
        value = f"{issuer}; accounturi={hashed_account_uri(prefix, base, thumbprint, account_url)}"
        if identifier.is_wildcard:
            value += "; policy=wildcard"
        return f"{LABEL}.{base}", value

    def _usable(self, texts: Sequence[str], identifier: Identifier, issuers: Sequence[str], accepted: set[str],
                now: datetime.datetime) -> Optional[str]:
        """'' when a record fits, else why none does (for the message)."""
        why = "no record"
        for text in texts:
            issuer, params = parse_issuer(text)
            if issuer not in issuers:
                why = "no record names this CA"
                continue
            if params.get("accounturi") not in accepted:
                why = "the record's accounturi is for another account or key"
                continue
            if identifier.is_wildcard and params.get("policy", "").lower() != "wildcard":
                why = "the record lacks policy=wildcard, which a wildcard needs"
                continue
            until = params.get("persistuntil")
            if until is not None:
                if not until.isdigit():
                    why = f"the record's persistUntil {until[:20]!r} is not a UNIX time"
                    continue
                ends = datetime.datetime.fromtimestamp(int(until), datetime.timezone.utc)
                if ends <= now:
                    why = f"the record expired at {ends:%Y-%m-%d %H:%M} UTC (persistUntil)"
                    continue
                if ends - now < datetime.timedelta(days=self.settings.warn_days):
                    self.warnings.append(f"dns-persist-01: the record at {LABEL}.{identifier.value.removeprefix('*.')} "
                                         f"stops being valid at {ends:%Y-%m-%d %H:%M} UTC (persistUntil); publish "
                                         "a new one before then")
            return ""
        return why

    def check(self, certificate: str, identifiers: Sequence[Identifier], directory: dict[str, Any],
              thumbprint: str, account_url: Optional[str], now: datetime.datetime) -> None:
        """Raise PersistRecordMissing, with the records to publish, unless every name has one."""
        meta = directory.get("meta") if isinstance(directory.get("meta"), dict) else {}
        issuers = checked_issuers((meta or {}).get("issuerDomainNames"), "the CA's directory")
        prefix = (meta or {}).get("accountHashPrefix")
        if not isinstance(prefix, str) or not prefix.startswith(("https://", "http://")) or len(prefix) > 500:
            raise CertopsError(f"certificate {certificate!r}: the CA's directory has no usable accountHashPrefix; "
                               "it does not support dns-persist-01")
        if not account_url:
            raise CertopsError(f"certificate {certificate!r}: dns-persist-01 needs the account URL")
        missing = []
        for identifier in identifiers:
            if identifier.type != "dns":
                raise CertopsError(f"certificate {certificate!r}: dns-persist-01 is for DNS names, not "
                                   f"{identifier.value}")
            base = identifier.value.removeprefix("*.")
            accepted = {hashed_account_uri(prefix, d, thumbprint, account_url) for d in (base, "*")}
            texts = self.lookup.txt(f"{LABEL}.{base}")
            why = self._usable(texts, identifier, issuers, accepted, now)
            if why:
                name, value = self.wanted_record(identifier, issuers[0], prefix, thumbprint, account_url)
                missing.append((identifier.value, why, f'{name}. IN TXT "{value}"'))
        if missing:
            records = "; ".join(f"{n} ({why}): publish {record}" for n, why, record in missing)
            raise PersistRecordMissing(f"certificate {certificate!r}: dns-persist-01 needs a record published once "
                                       f"per name, then nothing per order; nothing was ordered. {records}")


class PersistResponder:
    """The ChallengeResponder of dns-persist-01: the record is already there (checked before
    the order), so nothing is deployed or removed."""

    def deploy(self, challenges: Sequence[PendingChallenge], deadline: Deadline) -> dict[str, str]:
        del challenges, deadline
        return {}

    def cleanup(self, challenges: Sequence[PendingChallenge]) -> None:
        del challenges
