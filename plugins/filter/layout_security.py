# -*- coding: utf-8 -*-
# Copyright: certops.acme contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt)
"""What the layouts' proxies promise a security review: Mozilla's TLS profiles (one source for
HAProxy and nginx), the peers whose forwarding headers are trusted, and HSTS.

Every value here is written into a proxy configuration, so each is checked with an anchored
pattern and parsed before use, and a bad one fails naming the variable and the fix.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Optional

from ansible.errors import AnsibleFilterError

from ansible_collections.certops.acme.plugins.filter.certificates import checked_sites

#: Mozilla's server-side TLS guideline (6.0, the "intermediate" and "modern" configurations).
#: Groups: X25519, P-256, P-384 only (no X448, P-521 or finite-field groups, in TLS 1.3 too).
TLS_PROFILES: dict[str, dict[str, Any]] = {
    "intermediate": {
        "protocols": ["TLSv1.2", "TLSv1.3"],
        "ciphers": ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
                    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
                    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"],
    },
    "modern": {"protocols": ["TLSv1.3"], "ciphers": []},
}
_GROUPS = [("X25519", "X25519"), ("prime256v1", "P-256"), ("secp384r1", "P-384")]
#: TLS 1.3 suites (Mozilla: OpenSSL's default three, client's order).
_TLS13_SUITES = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"]

# An address or network as typed: hex digits, dots, colons and an optional /prefix. Parsed by
# ipaddress afterwards; the pattern keeps anything else (spaces, quotes, ';') out for certain.
_NETWORK = re.compile(r"[0-9A-Fa-f.:]{2,45}(/[0-9]{1,3})?")
#: HSTS max-age bounds: at least a day (shorter is no protection), at most two years
#: (Mozilla's value and what browsers cap at).
_HSTS_MIN, _HSTS_MAX = 86400, 63072000
#: What hstspreload.org requires before it lists a domain.
_PRELOAD_MIN_AGE = 31536000


def tls_profile(name: Any, variable: str) -> dict[str, Any]:
    """The settings of a Mozilla profile, spelled for each proxy."""
    if not isinstance(name, str) or name not in TLS_PROFILES:
        raise AnsibleFilterError("%s: %r is not a TLS profile; use %s (Mozilla's guideline; modern is TLS 1.3 only)"
                                 % (variable, name, " or ".join(sorted(TLS_PROFILES))))
    profile = TLS_PROFILES[name]
    return {
        "name": name,
        "nginx_protocols": " ".join(profile["protocols"]),
        "haproxy_min_version": profile["protocols"][0],
        "ciphers": ":".join(profile["ciphers"]),
        "tls13_ciphersuites": ":".join(_TLS13_SUITES),
        "nginx_groups": ":".join(openssl for openssl, _haproxy in _GROUPS),
        "haproxy_groups": ":".join(haproxy for _openssl, haproxy in _GROUPS),
    }


def checked_networks(value: Any, variable: str) -> list[str]:
    """IP addresses or networks (``10.0.0.0/8``, ``2001:db8::/32``, ``192.0.2.7``), normalised."""
    if value is None or value == "":
        return []
    if not isinstance(value, list):
        raise AnsibleFilterError("%s: expected a list of IP addresses or networks, got %s"
                                 % (variable, type(value).__name__))
    networks = []
    for index, entry in enumerate(value):
        text = entry if isinstance(entry, str) else ""
        try:
            if not _NETWORK.fullmatch(text):
                raise ValueError(text)
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise AnsibleFilterError("%s[%d]: %r is not an IP address or network; write e.g. 203.0.113.0/24, "
                                     "192.0.2.7 or 2001:db8::/32; nothing was changed"
                                     % (variable, index, entry)) from None
        networks.append(str(network))
    return networks


def _hsts_header(value: Any, where: str, default: dict[str, Any]) -> str:
    """The Strict-Transport-Security value of a site (``hsts``: a bool, or a mapping of
    ``max_age``, ``include_subdomains``, ``preload`` over the role's defaults), or '' when off."""
    settings = dict(default)
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"max_age", "include_subdomains", "preload"})
        if unknown:
            raise AnsibleFilterError("%s: unknown key(s) %s; use max_age, include_subdomains and preload"
                                     % (where, ", ".join(unknown)))
        settings.update(value)
        settings["enabled"] = True
    elif value is not None:
        if not isinstance(value, bool):
            raise AnsibleFilterError("%s: %r is neither true/false nor a mapping of max_age, include_subdomains "
                                     "and preload" % (where, value))
        settings["enabled"] = value
    if not settings.get("enabled"):
        return ""
    max_age = settings.get("max_age")
    if isinstance(max_age, bool) or not isinstance(max_age, int) or not _HSTS_MIN <= max_age <= _HSTS_MAX:
        raise AnsibleFilterError("%s: max_age %r must be whole seconds from %d (a day) to %d (two years)"
                                 % (where, max_age, _HSTS_MIN, _HSTS_MAX))
    for flag in ("include_subdomains", "preload"):
        if not isinstance(settings.get(flag), bool):
            raise AnsibleFilterError("%s: %s must be true or false" % (where, flag))
    if settings["preload"] and (not settings["include_subdomains"] or max_age < _PRELOAD_MIN_AGE):
        raise AnsibleFilterError("%s: preload needs include_subdomains: true and max_age of at least %d (what the "
                                 "browsers' preload list requires); nothing was changed" % (where, _PRELOAD_MIN_AGE))
    header = "max-age=%d" % max_age
    if settings["include_subdomains"]:
        header += "; includeSubDomains"
    if settings["preload"]:
        header += "; preload"
    return header


def secured_sites(sites: Any, variable: str, trusted_proxies: Any, trusted_variable: str,
                  hsts: Any, hsts_variable: str) -> list[dict[str, Any]]:
    """The (already checked) sites, each with ``trusted_proxies`` (its own list, else the
    role's, normalised) and ``hsts_header`` (its own ``hsts``, else the role's settings).

    ``hsts`` is the role's HSTS settings: ``{enabled, max_age, include_subdomains, preload}``."""
    role_networks = checked_networks(trusted_proxies, trusted_variable)
    if not isinstance(hsts, dict):
        raise AnsibleFilterError("%s: expected the role's HSTS settings" % hsts_variable)
    role_hsts = {"enabled": hsts.get("enabled"), "max_age": hsts.get("max_age"),
                 "include_subdomains": hsts.get("include_subdomains"), "preload": hsts.get("preload")}
    _hsts_header(None, hsts_variable, role_hsts)  # the role's own settings are checked even if no site uses them
    secured = []
    for index, site in enumerate(sites or []):
        where = "%s[%d]" % (variable, index)
        own: Optional[Any] = site.get("trusted_proxies")
        networks = role_networks if own is None else checked_networks(own, where + ".trusted_proxies")
        secured.append(dict(site, trusted_proxies=networks,
                            hsts_header=_hsts_header(site.get("hsts"), where + ".hsts", role_hsts)))
    return secured


def input_problems(sites: Any, variable: str, trusted_proxies: Any, trusted_variable: str, hsts: Any,
                   hsts_variable: str, profile: Any, profile_variable: str) -> list[str]:
    """What ``checked_sites``, ``secured_sites`` and ``tls_profile`` refuse in a layout's inputs,
    as messages instead of an error. The roles assert on these before they compute anything, so a
    refusal reads as the message itself: ansible-core 2.19 buries an error raised while a
    ``set_fact`` is templated under "Task failed: Finalization of task args for ...". """
    problems = []
    try:
        secured_sites(checked_sites(sites, variable), variable, trusted_proxies, trusted_variable, hsts, hsts_variable)
    except AnsibleFilterError as error:
        problems.append(error.message)
    try:
        tls_profile(profile, profile_variable)
    except AnsibleFilterError as error:
        problems.append(error.message)
    return problems


class FilterModule(object):
    def filters(self) -> dict[str, Any]:
        return {"tls_profile": tls_profile, "checked_networks": checked_networks, "secured_sites": secured_sites,
                "input_problems": input_problems}
