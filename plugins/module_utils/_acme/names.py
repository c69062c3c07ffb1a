"""Turn what users write as certificate names into ACME identifiers, or say precisely why not.

Rules (RFC 8555 §7.1.4, RFC 8738, RFC 5890): DNS names are IDNA-2008 encoded to punycode,
lower-cased, a trailing dot dropped; labels 1-63 characters of letters, digits and hyphens
(no leading/trailing hyphen); whole name at most 253; a wildcard is only ever the entire
left-most label (``*.example.com``) and never the whole name of a public suffix we could
detect cheaply (``*.com`` has only one label after it and is refused). IPv4/IPv6 literals become
``ip`` identifiers in canonical form.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Iterable, Sequence

try:
    import idna
except ImportError:  # dependencies.require_controller_libraries() names what is missing
    pass

from .errors import CertopsError, InputError

MAX_NAMES_PER_CERTIFICATE = 100
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True, order=True)
class Identifier:
    """One ACME identifier: ``type`` is ``dns`` or ``ip``; ``value`` is normalised."""

    type: str
    value: str

    @property
    def is_wildcard(self) -> bool:
        return self.type == "dns" and self.value.startswith("*.")

    def to_acme(self) -> dict[str, str]:
        return {"type": self.type, "value": self.value}


def _ip_identifier(text: str) -> Identifier | None:
    try:
        address = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None
    return Identifier("ip", address.compressed)


def _check_lengths(raw: str, ascii_name: str, wildcard: bool, field: str) -> None:
    if any(len(label) > 63 for label in ascii_name.split(".")):
        raise InputError(field, f"{raw!r} has a label longer than 63 characters",
                         "each dot-separated part may have at most 63 characters")
    if len(ascii_name) + (2 if wildcard else 0) > 253:
        raise InputError(field, f"{raw!r} is longer than 253 characters", "shorten the name")


def normalize_name(raw: object, field: str = "domains") -> Identifier:
    """Normalise one name; raise :class:`InputError` naming ``field`` when it cannot be used."""
    if not isinstance(raw, str):
        raise InputError(field, f"{raw!r} is not a string", "write each name as a plain string")
    text = raw.strip()
    if not text:
        raise InputError(field, "an empty name was given", "remove the empty entry")
    ip = _ip_identifier(text)
    if ip is not None:
        return ip
    if text.endswith("."):
        text = text[:-1]
    wildcard = False
    if text.startswith("*."):
        wildcard = True
        text = text[2:]
    if "*" in text:
        raise InputError(field, f"{raw!r} has a wildcard that is not the whole left-most label",
                         "only '*.example.com' form is allowed")
    if text.isascii():
        _check_lengths(raw, text, wildcard, field)
    try:
        ascii_name = idna.encode(text, uts46=True, transitional=False).decode("ascii")
    except idna.IDNAError as error:
        raise InputError(field, f"{raw!r} is not a valid domain name: {error}",
                         "use letters, digits, hyphens and dots (IDN is converted for you)") from None
    ascii_name = ascii_name.lower()
    _check_lengths(raw, ascii_name, wildcard, field)
    labels = ascii_name.split(".")
    for label in labels:
        if not _LABEL.fullmatch(label):
            raise InputError(field, f"{raw!r} has an invalid label {label!r}",
                             "each dot-separated part: 1-63 letters, digits or inner hyphens")
    full = ("*." if wildcard else "") + ascii_name
    if len(labels) < 2:
        if wildcard:
            raise InputError(field, f"{raw!r} is a wildcard over a top-level domain",
                             "a wildcard needs at least two labels after '*.'")
        raise InputError(field, f"{raw!r} is a single label, not a fully qualified name",
                         "use the full name, e.g. 'app.example.com'")
    return Identifier("dns", full)


def normalize_names(raw_names: object, field: str = "domains") -> list[Identifier]:
    """Normalise a certificate's name list, keeping the user's order (first name = CN)."""
    if isinstance(raw_names, str):
        raw_names = [raw_names]
    if not isinstance(raw_names, (list, tuple)) or not raw_names:
        raise InputError(field, "must be a non-empty list of names",
                         "e.g. domains: [app.example.com]")
    if len(raw_names) > MAX_NAMES_PER_CERTIFICATE:
        raise InputError(field, f"{len(raw_names)} names given; CAs accept at most "
                                f"{MAX_NAMES_PER_CERTIFICATE} per certificate",
                         "split them over several certificates")
    result: list[Identifier] = []
    seen: dict[Identifier, object] = {}
    for raw in raw_names:
        ident = normalize_name(raw, field)
        if ident in seen:
            raise InputError(field, f"{raw!r} repeats {seen[ident]!r} (both are {ident.value})",
                             "list each name once")
        seen[ident] = raw
        result.append(ident)
    return result


def check_challenge_fits(identifiers: Sequence[Identifier], challenge: str,
                         field: str = "challenge") -> None:
    """Wildcards can only be validated by dns-01 (RFC 8555 §7.1.3) or dns-persist-01 (with
    policy=wildcard); IPs never by either."""
    if challenge not in ("dns-01", "dns-persist-01"):
        wild = [i.value for i in identifiers if i.is_wildcard]
        if wild:
            raise InputError(field, f"wildcard name(s) {', '.join(wild)} cannot use {challenge}",
                             "use challenge: dns-01 for wildcards")
    else:
        ips = [i.value for i in identifiers if i.type == "ip"]
        if ips:
            raise InputError(field, f"IP identifier(s) {', '.join(ips)} cannot use {challenge}",
                             "use http-01 or tls-alpn-01 for IP addresses")


def identifier_values(identifiers: Iterable[Identifier]) -> list[str]:
    return [i.value for i in identifiers]


#: issuerDomainNames of dns-persist-01 (draft-ietf-acme-dns-persist): lower-case A-labels, no
#: trailing dot, 1 to 10 of them.
MAX_ISSUERS = 10
_ISSUER = re.compile(r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


def checked_issuers(values: object, where: str) -> list[str]:
    """A CA's issuerDomainNames as the draft requires them, or an error saying it sent otherwise."""
    if not isinstance(values, list) or not 1 <= len(values) <= MAX_ISSUERS or not all(
            isinstance(v, str) and _ISSUER.fullmatch(v) for v in values):
        raise CertopsError(f"{where}: the CA's issuerDomainNames are malformed ({str(values)[:200]}); "
                           "dns-persist-01 needs 1 to 10 lower-case domain names")
    return list(values)
