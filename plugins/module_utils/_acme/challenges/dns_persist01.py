"""dns-persist-01 (draft-ietf-acme-dns-persist), the client side, as Let's Encrypt's Boulder
validates it (the only public CA with the challenge, draft-00/01): experimental, behind the
``dns_persist_experimental`` flag because the draft may still change.

The record is published once, by whoever runs the DNS, and then serves every order:

    _validation-persist.<name>. TXT "<issuer domain>; accounturi=<account URL>[; policy=wildcard][; persistUntil=<UNIX time>]"

The issuer domain names come with the challenge (``issuer-domain-names``). The account URI is
the account URL itself, compared as a plain string. Only a CA whose directory advertises
``accountHashPrefix`` (a later draft candidate) gets the hashed form: the prefix + ``sha-256/``
+ base64url(SHA-256(one length octet || name || the account key's JWK thumbprint || the account
URL)), or the same over ``*``, which fits every name.

Each name's record is looked up before anything is answered: before the order when the
directory names the CA's issuer domains (``meta.issuerDomainNames``), else once the
authorizations name them and before any challenge is answered, so a missing record never
becomes a failed validation. A missing or non-matching record fails the certificate with the
exact record to publish; one whose ``persistUntil`` has passed counts as missing; one that ends
within ``warn_days`` gives a warning. The challenge itself is answered with ``{}``.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Optional, Sequence

from . import PendingChallenge
from ..dns_lookup import Lookup
from ..errors import CertopsError, PersistRecordMissing
from ..names import Identifier, checked_issuers
from ..waiting import Deadline

if TYPE_CHECKING:
    from ..ca.client import CaClient

CHALLENGE = "dns-persist-01"
LABEL = "_validation-persist"
#: A TXT value longer than this is not a record of this challenge (one name's record is ~150).
MAX_RECORD = 1024
#: Records looked at per name; a name with more is not one anybody published by hand.
MAX_RECORDS = 32
#: A parameter value: visible ASCII but ";" (Boulder's parseDNSPersistRecord).
_VALUE = re.compile(r"[\x21-\x3a\x3c-\x7e]*")
#: persistUntil: a UNIX time in ASCII digits that fits 64 bits.
_UNIX_TIME = re.compile(r"[0-9]{1,19}")
#: The last second datetime can hold; a later persistUntil is "never ends".
_LAST_SECOND = 253402300799


def hashed_account_uri(prefix: str, domain: str, thumbprint: str, account_url: str) -> str:
    """The hashed account URI for ``domain`` (or ``*``, the opt-out that fits every name)."""
    name = domain.encode("ascii")
    digest = hashlib.sha256(bytes([len(name)]) + name + thumbprint.encode("ascii") + account_url.encode("ascii"))
    return f"{prefix}sha-256/{base64.urlsafe_b64encode(digest.digest()).rstrip(b'=').decode('ascii')}"


def parse_record(text: str) -> tuple[str, dict[str, str], str]:
    """A TXT value's issuer domain (lower case, no final dot), its known parameters (tags in
    lower case) and, when it is malformed, why ('' when well formed). Unknown tags are ignored,
    as the draft requires; a repeated known tag, an empty parameter or a value with spaces,
    controls or non-ASCII makes the record malformed."""
    if len(text) > MAX_RECORD:
        return "", {}, f"the record is longer than {MAX_RECORD} characters"
    issuer, *parts = text.split(";")
    issuer = issuer.strip(" \t").lower().rstrip(".")
    parameters: dict[str, str] = {}
    for part in parts:
        tag, sep, value = part.strip(" \t").partition("=")
        tag, value = tag.strip(" \t").lower(), value.strip(" \t")
        if not sep or not tag:
            return issuer, {}, f"the record has a parameter that is not tag=value ({part.strip()[:40]!r})"
        if not _VALUE.fullmatch(value):
            return issuer, {}, f"the record's {tag} value holds spaces, controls or non-ASCII characters"
        if tag in ("accounturi", "policy", "persistuntil"):
            if tag in parameters:
                return issuer, {}, f"the record names {tag} twice"
            parameters[tag] = value
    if not parameters.get("accounturi"):
        return issuer, {}, "the record has no accounturi"
    return issuer, parameters, ""


def persist_until(value: str) -> Optional[datetime.datetime]:
    """When a record's ``persistUntil`` ends (None: it does not parse, which counts as ended)."""
    if not _UNIX_TIME.fullmatch(value) or int(value) >= 2 ** 63:
        return None
    return datetime.datetime.fromtimestamp(min(int(value), _LAST_SECOND), datetime.timezone.utc)


class PersistAccount(NamedTuple):
    """What a record binds: the account, and the CA's directory that says how."""

    directory: dict[str, Any]
    thumbprint: str
    account_url: Optional[str]

    @classmethod
    def of(cls, ca: "CaClient", deadline: Deadline) -> "PersistAccount":
        return cls(ca.connected(deadline).directory(deadline), ca.thumbprint, ca.account_url)


@dataclass
class PersistSettings:
    warn_days: float = 30.0


@dataclass
class PersistCheck:
    """Looks up and judges each name's record before anything is answered; collects warnings."""

    lookup: Lookup
    settings: PersistSettings = field(default_factory=PersistSettings)
    warnings: list[str] = field(default_factory=list)

    @staticmethod
    def _hash_prefix(directory: dict[str, Any]) -> Optional[str]:
        meta = directory.get("meta") if isinstance(directory.get("meta"), dict) else {}
        prefix = (meta or {}).get("accountHashPrefix")
        if prefix is None:
            return None
        if not isinstance(prefix, str) or not prefix.startswith(("https://", "http://")) or len(prefix) > 500:
            raise CertopsError(f"the CA's directory has an unusable accountHashPrefix ({str(prefix)[:100]!r}); "
                               "dns-persist-01 cannot be used with it")
        return prefix

    def _accepted(self, account: PersistAccount, base: str) -> tuple[set[str], str]:
        """The accounturi values that bind this account for ``base``, and the one to publish."""
        url = account.account_url or ""
        prefix = self._hash_prefix(account.directory)
        if prefix is None:
            return {url}, url
        wanted = hashed_account_uri(prefix, base, account.thumbprint, url)
        return {wanted, hashed_account_uri(prefix, "*", account.thumbprint, url)}, wanted

    def _usable(self, texts: Sequence[str], identifier: Identifier, issuers: Sequence[str], accepted: set[str],
                now: datetime.datetime) -> str:
        """'' when a record fits, else why none does (for the message)."""
        why = "no record"
        for text in texts[:MAX_RECORDS]:
            issuer, params, malformed = parse_record(text)
            if issuer not in issuers:
                why = "no record names this CA"
                continue
            if malformed:
                why = malformed
                continue
            if params["accounturi"] not in accepted:
                why = "the record's accounturi is for another account or key"
                continue
            if identifier.is_wildcard and params.get("policy", "").lower() != "wildcard":
                why = "the record lacks policy=wildcard, which a wildcard needs"
                continue
            if "persistuntil" in params:
                ends = persist_until(params["persistuntil"])
                if ends is None:
                    why = f"the record's persistUntil {params['persistuntil'][:20]!r} is not a UNIX time"
                    continue
                if ends <= now:
                    why = f"the record expired at {ends:%Y-%m-%d %H:%M} UTC (persistUntil)"
                    continue
                if ends - now < datetime.timedelta(days=self.settings.warn_days):
                    self.warnings.append(f"dns-persist-01: the record at {LABEL}.{identifier.value.removeprefix('*.')} "
                                         f"stops being valid at {ends:%Y-%m-%d %H:%M} UTC (persistUntil); publish "
                                         "a new one before then")
            return ""
        return why

    def missing(self, identifiers: Sequence[Identifier], issuers: Sequence[str], account: PersistAccount,
                now: datetime.datetime) -> list[str]:
        """For each name without a usable record: why, and the record to publish."""
        _require_account_url(account)
        missing = []
        for identifier in identifiers:
            if identifier.type != "dns":
                raise CertopsError(f"dns-persist-01 is for DNS names, not {identifier.value}")
            base = identifier.value.removeprefix("*.")
            accepted, wanted = self._accepted(account, base)
            why = self._usable(self.lookup.txt(f"{LABEL}.{base}"), identifier, issuers, accepted, now)
            if why:
                value = f"{issuers[0]}; accounturi={wanted}" + ("; policy=wildcard" if identifier.is_wildcard else "")
                missing.append(f'{identifier.value} ({why}): publish {LABEL}.{base}. IN TXT "{value}"')
        return missing

    def check(self, certificate: str, identifiers: Sequence[Identifier], account: PersistAccount,
              now: datetime.datetime) -> None:
        """Before the order, where the directory names the CA's issuer domains: raise
        PersistRecordMissing, with the records to publish, unless every name has one. Without
        them the check waits for the authorizations (``PersistResponder``)."""
        meta = account.directory.get("meta") if isinstance(account.directory.get("meta"), dict) else {}
        named = (meta or {}).get("issuerDomainNames")
        try:
            self._hash_prefix(account.directory)
            if named is None:
                _require_account_url(account)
                return
            missing = self.missing(identifiers, checked_issuers(named, "the CA's directory"), account, now)
        except CertopsError as error:
            raise CertopsError(f"certificate {certificate!r}: {error}") from None
        if missing:
            raise PersistRecordMissing(_missing_message(certificate, missing, "nothing was ordered"))


def _require_account_url(account: PersistAccount) -> None:
    """A record binds the account by its URL (or a hash over it): without it nothing can be judged."""
    if not account.account_url:
        raise CertopsError("dns-persist-01 needs the account URL")


def _missing_message(certificate: str, missing: Sequence[str], consequence: str) -> str:
    return (f"certificate {certificate!r}: dns-persist-01 needs a record published once per name, then nothing "
            f"per order; {consequence}. {'; '.join(missing)}")


class PersistResponder:
    """The ChallengeResponder of dns-persist-01: nothing is deployed or removed, but no
    challenge is answered before its name's record is there (checked against the issuer domain
    names the challenge carries)."""

    def __init__(self, check: Optional[PersistCheck] = None, ca: Optional["CaClient"] = None,
                 now: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.timezone.utc)) -> None:
        self.check = check
        self.ca = ca
        self.now = now

    def deploy(self, challenges: Sequence[PendingChallenge], deadline: Deadline) -> dict[str, str]:
        if self.check is None or self.ca is None or not challenges:
            return {}
        account = PersistAccount.of(self.ca, deadline)
        failed: dict[str, str] = {}
        for certificate in dict.fromkeys(c.certificate for c in challenges):
            mine = [c for c in challenges if c.certificate == certificate]
            missing = []
            try:
                for challenge in mine:
                    missing += self.check.missing([challenge.identifier], challenge.issuers, account, self.now())
            except CertopsError as error:
                failed[certificate] = f"certificate {certificate!r}: {error}"
                continue
            if missing:
                failed[certificate] = _missing_message(certificate, missing,
                                                       "no challenge was answered (the order is left to expire)")
        return failed

    def cleanup(self, challenges: Sequence[PendingChallenge]) -> None:
        del challenges
