"""The dns-01 responders a certificate task asks for, built from its options.

``build_dns01`` turns the task's ``dns_*`` options (one provider) and ``dns_providers`` (named
ones that certificates pick with ``dns``) into one router. Each provider's option spec lives
beside its class (``RFC2136_SPEC``, ``LEXICON_SPEC``). The hook provider starts a process, so
it lives in plugin_utils and the action plugin hands it in as ``hook``.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

from .. import options
from ..dns_lookup import Lookup, parse_resolvers, parse_server
from ..errors import InputError
from ..spec import CertificateSpec
from .dns01 import Dns01Responder, Dns01Router, DnsProvider, Rfc2136Provider, load_provider
from .lexicon import LexiconProvider


def dns_responder(args: dict[str, Any], hook: Callable[[str], DnsProvider]) -> Optional[Dns01Responder]:
    """The responder for one provider (the task's dns_* options), or None without dns_provider."""
    kind = args.get("dns_provider")
    if not kind:
        return None
    resolvers = parse_resolvers(args.get("dns_resolvers") or [], "dns_resolvers")
    provider: DnsProvider
    # CNAMEs are looked up at the given resolvers, else (RFC 2136) at the updated server, which
    # serves the main zone, else at the system's resolvers.
    cname_servers: list[tuple[str, int]] = list(resolvers)
    if kind == "rfc2136":
        settings = options.rfc2136_settings(args.get("dns_rfc2136"))
        provider = Rfc2136Provider(server=settings["server"], port=settings["port"],
                                   key_name=settings["key_name"], key_secret=settings["key_secret"],
                                   key_algorithm=settings["key_algorithm"], zone=settings.get("zone"))
        cname_servers = cname_servers or [(settings["server"], settings["port"])]
    elif kind == "lexicon":
        lexicon = args.get("dns_lexicon") or {}
        if not lexicon.get("provider"):
            raise InputError("dns_lexicon.provider", "is required with dns_provider: lexicon",
                             "name the lexicon provider, e.g. cloudflare, route53, powerdns")
        provider = LexiconProvider(lexicon["provider"], lexicon.get("options"), lexicon.get("zone"),
                                   Lookup(resolvers))
    elif kind == "hook":
        if not args.get("dns_hook"):
            raise InputError("dns_hook", "is required with dns_provider: hook", "give the executable's path")
        provider = hook(args["dns_hook"])
    else:
        provider = load_provider(kind, args.get("dns_provider_options") or {})
    servers = [parse_server(s) for s in args.get("dns_check_servers") or []]
    wait = args.get("dns_propagation_wait", 60)
    if not isinstance(wait, int) or isinstance(wait, bool) or not 0 <= wait <= MAX_PROPAGATION_WAIT:
        raise InputError("dns_propagation_wait", f"{str(wait)[:40]!r} is not whole seconds from 0 to "
                         f"{MAX_PROPAGATION_WAIT}", "give the seconds to wait before the CA is asked to look")
    if args.get("dns_propagation", "check") not in ("check", "wait"):
        raise InputError("dns_propagation", f"{str(args.get('dns_propagation'))[:40]!r} is neither check nor wait",
                         "use check (ask the authoritative servers) or wait (a fixed dns_propagation_wait)")
    return Dns01Responder(provider, servers, float(args["dns_propagation_timeout"]),
                          cnames=Lookup(cname_servers) if args["dns_follow_cname"] else None,
                          propagation_wait=float(wait) if args.get("dns_propagation") == "wait" else None)


#: What an entry of ``dns_providers`` may set: the task's dns_* options without the prefix.
NAMED_DNS_KEYS = ("provider", "rfc2136", "lexicon", "hook", "provider_options", "check_servers", "resolvers",
                  "follow_cname", "propagation_timeout", "propagation", "propagation_wait")
#: The longest fixed wait (dns_propagation: wait) a batch may spend; an hour is already longer
#: than any provider's documented propagation.
MAX_PROPAGATION_WAIT = 3600


def build_dns01(args: dict[str, Any], specs: Sequence[CertificateSpec],
                hook: Callable[[str], DnsProvider]) -> Optional[Dns01Router]:
    """The dns-01 responders: the task's own (dns_provider) and each of dns_providers that a
    certificate names; an error names a certificate using dns-01 with no provider to use."""
    named = args.get("dns_providers") or {}
    responders: dict[str, Dns01Responder] = {}
    default = dns_responder(args, hook)
    if default is not None:
        responders[""] = default
    wanted = {s.dns for s in specs if s.challenge == "dns-01"}
    for name in sorted(n for n in wanted if n):
        entry = named.get(name)
        if not isinstance(entry, dict):
            known = ", ".join(sorted(map(str, named))) or "none"
            raise InputError("certificates[].dns", f"names the DNS provider {name!r}, which dns_providers does not "
                             f"define (defined: {known})", "add it to dns_providers or fix the name")
        unknown = sorted(str(k) for k in entry if k not in NAMED_DNS_KEYS)
        if unknown:
            raise InputError(f"dns_providers.{name}", f"unknown key(s) {', '.join(unknown)}",
                             f"allowed: {', '.join(NAMED_DNS_KEYS)}")
        if not entry.get("provider"):
            raise InputError(f"dns_providers.{name}.provider", "is required", "e.g. rfc2136, lexicon or hook")
        own = {f"dns_{key}": entry.get(key) for key in NAMED_DNS_KEYS}
        for key in ("dns_follow_cname", "dns_propagation_timeout", "dns_resolvers", "dns_propagation",
                    "dns_propagation_wait"):
            if own[key] is None:
                own[key] = args[key]
        try:
            responder = dns_responder(own, hook)
        except InputError as error:
            raise InputError(f"dns_providers.{name}", str(error)) from None
        if responder is not None:  # always: entry["provider"] is set
            responders[name] = responder
    if None in wanted and "" not in responders:
        raise InputError("dns_provider", "certificates use dns-01 (wildcards default to it) but no DNS provider is set",
                         "set dns_provider (rfc2136, lexicon, hook), or name one of dns_providers in the "
                         "certificate's dns")
    if not responders:
        return None
    return Dns01Router(responders, {s.name: s.dns or "" for s in specs})
