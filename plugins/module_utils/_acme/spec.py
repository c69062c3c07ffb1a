"""The certificate spec, written once: one entry of the ``certificates`` option.

The action plugin gives it to Ansible's argument validation as the ``options`` of the list,
so wrong types, unknown keys and bad choices are refused for the whole task before anything
happens; ``parse_specs`` (below) keeps only the checks of meaning (names, a wildcard with
http-01, webroot with another challenge), which fail one certificate. The role filters take
from a site exactly the keys a certificate has (``SITE_KEYS``). The module documentation
(plugins/modules/certificate.py) describes these same keys; a unit test holds the two equal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional

from .crypto import DEFAULT_KEY_TYPE, KEY_TYPES
from .errors import InputError
from .names import Identifier, check_challenge_fits, normalize_names
from .own_key import OwnKey, own_key
from .renewal import Action, PlainEnum, RenewalPolicy
from .results import CertificateResult
from .store import check_certificate_name

CHALLENGES = ("http-01", "dns-01", "tls-alpn-01", "dns-persist-01")

CERTIFICATE_OPTIONS: dict[str, dict[str, Any]] = {
    "name": {"type": "str", "required": True},
    "domains": {"type": "list", "elements": "str", "required": True},
    "key_type": {"type": "str", "choices": list(KEY_TYPES)},
    "challenge": {"type": "str", "choices": list(CHALLENGES)},
    "webroot": {"type": "path"},
    "renew_remaining_days": {"type": "float"},
    "renew_remaining_fraction": {"type": "float"},
    "force": {"type": "bool", "default": False},
    "reuse_key": {"type": "bool", "default": False},
    "profile": {"type": "raw"},
    "preferred_chain": {"type": "str"},
    "dns": {"type": "str"},
    "csr_src": {"type": "path"},
    "key_src": {"type": "path"},
}

SPEC_KEYS = frozenset(CERTIFICATE_OPTIONS)

#: What a site of the edge and passthrough roles hands on to its certificate (its name and
#: domains are the site's own; force and webroot are the certificates role's business; a
#: proxy needs the key, which a csr_src/key_src certificate never ships).
SITE_KEYS = tuple(k for k in CERTIFICATE_OPTIONS
                  if k not in ("name", "domains", "force", "webroot", "csr_src", "key_src"))


@dataclass
class CertificateSpec:
    name: str
    identifiers: list[Identifier]
    key_type: str = DEFAULT_KEY_TYPE
    challenge: str = "http-01"
    policy: RenewalPolicy = field(default_factory=RenewalPolicy)
    force: bool = False
    reuse_key: bool = False
    profile: Optional[str] = None
    #: ``profile`` is a preference (``{prefer: NAME}``): where the CA lacks it, its default.
    profile_preferred: bool = False
    webroot: Optional[str] = None
    preferred_chain: Optional[str] = None
    #: A key certops does not hold (csr_src, key_src); None for keys certops makes.
    own_key: Optional[OwnKey] = None
    #: The named DNS provider (the task's dns_providers) for its dns-01 records; None: the task's.
    dns: Optional[str] = None

    @property
    def on_hosts(self) -> bool:
        """Whether its challenges are answered on the hosts rather than from the controller."""
        return self.challenge == "tls-alpn-01" or (self.challenge == "http-01" and bool(self.webroot))


class Stage(PlainEnum):
    """Which part of a batch a task runs (host-side challenges need two tasks)."""

    ALL = "all"
    PREPARE = "prepare"      # open the orders, hand host-side challenges to the hosts
    COMPLETE = "complete"    # answer them and store the certificates


def parse_specs(raw: object) -> tuple[list[CertificateSpec], list[CertificateResult]]:
    """Split the ``certificates`` option into usable specs and per-certificate failures.

    Problems with the list's shape (not a list, an entry without ``name``, duplicate names,
    unknown keys) fail the whole task: nothing sensible can run. A problem with one entry's
    *values* (a bad domain, a wildcard with http-01) fails only that certificate.
    """
    if not isinstance(raw, list) or not raw:
        raise InputError("certificates", "must be a non-empty list",
                         "e.g. certificates: [{name: www, domains: [www.example.com]}]")
    specs: list[CertificateSpec] = []
    failures: list[CertificateResult] = []
    seen: set[str] = set()
    for index, entry in enumerate(raw):
        where = f"certificates[{index}]"
        name = _checked_shape(entry, where, seen)
        try:
            specs.append(_spec_of(name, entry, where))
        except InputError as error:
            domains = entry.get("domains")
            shown = domains if isinstance(domains, list) else [domains]
            failures.append(CertificateResult(name=name, action=Action.FAILED, error=str(error),
                                              domains=[str(d) for d in shown]))
    return specs, failures


def _checked_shape(entry: object, where: str, seen: set[str]) -> str:
    """The entry's name, once its shape is right (else the whole task fails)."""
    if not isinstance(entry, dict):
        raise InputError(where, f"must be a mapping, got {type(entry).__name__}",
                         "each entry needs at least name and domains")
    unknown = set(entry) - SPEC_KEYS
    if unknown:
        raise InputError(where, f"unknown key(s) {', '.join(sorted(unknown))}",
                         f"allowed: {', '.join(sorted(SPEC_KEYS))}")
    name = check_certificate_name(entry.get("name"), f"{where}.name")
    if name in seen:
        raise InputError(f"{where}.name", f"{name!r} appears twice", "give each certificate its own name")
    seen.add(name)
    return name


def _spec_of(name: str, entry: dict[str, Any], where: str) -> CertificateSpec:
    """One entry's values checked for meaning (a failure fails this certificate only)."""
    identifiers = normalize_names(entry.get("domains"), f"{where}.domains")
    key_type = entry.get("key_type") or DEFAULT_KEY_TYPE
    if key_type not in KEY_TYPES:
        raise InputError(f"{where}.key_type", f"{key_type!r} is not supported", f"use one of {', '.join(KEY_TYPES)}")
    dns = entry.get("dns") or None
    challenge = entry.get("challenge") or ("dns-01" if dns or any(i.is_wildcard for i in identifiers) else "http-01")
    if dns and challenge != "dns-01":
        raise InputError(f"{where}.dns", f"names a DNS provider, but the challenge is {challenge}",
                         "drop dns or use challenge: dns-01")
    if challenge not in CHALLENGES:
        raise InputError(f"{where}.challenge", f"{challenge!r} is not supported", f"use one of {', '.join(CHALLENGES)}")
    check_challenge_fits(identifiers, challenge, f"{where}.challenge")
    webroot = entry.get("webroot") or None
    brought = own_key(entry.get("csr_src"), entry.get("key_src"), identifiers, where)
    if brought is not None:
        for clash in ("key_type", "reuse_key"):
            if entry.get(clash):
                raise InputError(f"{where}.{clash}", f"does not apply with {brought.option} (the key is "
                                 "given, and always kept)", f"drop {clash}")
        key_type = brought.key_type
    if webroot and challenge != "http-01":
        raise InputError(f"{where}.webroot", f"only applies to http-01, not {challenge}",
                         "drop webroot or use challenge: http-01")
    profile, profile_preferred = parse_profile(entry.get("profile"), f"{where}.profile")
    policy = RenewalPolicy(remaining_days=_optional_float(entry, "renew_remaining_days", where),
                           remaining_fraction=_optional_float(entry, "renew_remaining_fraction", where))
    return CertificateSpec(name=name, identifiers=identifiers, key_type=key_type, challenge=challenge, policy=policy,
                           force=bool(entry.get("force", False)), reuse_key=bool(entry.get("reuse_key", False)),
                           profile=profile, profile_preferred=profile_preferred, webroot=webroot,
                           preferred_chain=entry.get("preferred_chain") or None, own_key=brought, dns=dns)


#: A profile name as CAs publish them (Let's Encrypt: classic, tlsserver, shortlived).
_PROFILE_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")


def parse_profile(value: Any, field_name: str) -> tuple[Optional[str], bool]:
    """``profile`` as given: a name (required of the CA), ``{prefer: NAME}`` (the CA's default
    where it lacks it), or nothing. Returns (name, preferred)."""
    if value is None or value == "":
        return None, False
    if isinstance(value, dict) and set(value) == {"prefer"}:
        name, preferred = value["prefer"], True
    elif isinstance(value, str):
        name, preferred = value, False
    else:
        raise InputError(field_name, f"{value!r} is neither a profile name nor a mapping with only 'prefer'",
                         "give profile: NAME to require a profile, or profile: {prefer: NAME} to take the CA's "
                         "default where it does not offer NAME")
    if not isinstance(name, str) or not _PROFILE_NAME.match(name):
        raise InputError(field_name, f"{name!r} is not a profile name",
                         "give the name as the CA's directory lists it (letters, digits, ._-), e.g. tlsserver")
    return name, preferred


def _optional_float(entry: dict[str, Any], key: str, where: str) -> Optional[float]:
    value = entry.get(key)
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputError(f"{where}.{key}", f"{value!r} is not a number") from None
