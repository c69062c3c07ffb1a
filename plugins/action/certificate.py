# -*- coding: utf-8 -*-
"""Action plugin behind certops.acme.certificate (documented in plugins/modules/certificate.py)."""

from __future__ import annotations

import functools
import os
import threading
import time
from typing import Any, Optional

from ansible.utils.display import Display

from ansible_collections.certops.acme.plugins.module_utils._acme import options
from ansible_collections.certops.acme.plugins.module_utils._acme.account import AccountKey
from ansible_collections.certops.acme.plugins.module_utils._acme.batch import BatchSettings
from ansible_collections.certops.acme.plugins.module_utils._acme.caa import CaaPreflight, dns_query
from ansible_collections.certops.acme.plugins.module_utils._acme.crypto import utcnow
from ansible_collections.certops.acme.plugins.module_utils._acme.challenges.dns01 import (
    Dns01Responder, Dns01Router, DnsProvider, Rfc2136Provider, load_provider)
from ansible_collections.certops.acme.plugins.module_utils._acme.challenges.lexicon import LexiconProvider
from ansible_collections.certops.acme.plugins.module_utils._acme.challenges.dns_persist01 import PersistCheck, PersistSettings
from ansible_collections.certops.acme.plugins.module_utils._acme.dns_lookup import Lookup, parse_resolvers, parse_server
from ansible_collections.certops.acme.plugins.module_utils._acme.errors import InputError
from ansible_collections.certops.acme.plugins.module_utils._acme.fallback import (
    CertificateAuthority, FallbackOutcome, run_with_fallback)
from ansible_collections.certops.acme.plugins.module_utils._acme.results import next_run_due_by
from ansible_collections.certops.acme.plugins.module_utils._acme.spec import CERTIFICATE_OPTIONS, parse_specs
from ansible_collections.certops.acme.plugins.plugin_utils._action_base import CertopsAction
from ansible_collections.certops.acme.plugins.plugin_utils._dns_hook import HookProvider

display = Display()

RFC2136_SPEC = {
    # server, key_name and key_secret are required, from here or from $CERTOPS_DNS_RFC2136_*:
    # options.rfc2136_settings checks them once both are merged.
    "server": {"type": "str"},
    "port": {"type": "int"},
    "key_name": {"type": "str"},
    "key_secret": {"type": "str", "no_log": True},
    "key_algorithm": {"type": "str", "choices": ["hmac-sha256", "hmac-sha384", "hmac-sha512"]},
    "zone": {"type": "str"},
}


LEXICON_SPEC = {
    "provider": {"type": "str", "required": True},
    "options": {"type": "dict", "no_log": True},
    "zone": {"type": "str"},
}


def dns_responder(args: dict[str, Any]) -> Optional[Dns01Responder]:
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
        provider = HookProvider(args["dns_hook"])
    else:
        provider = load_provider(kind, args.get("dns_provider_options") or {})
    servers = [parse_server(s) for s in args.get("dns_check_servers") or []]
    return Dns01Responder(provider, servers, float(args["dns_propagation_timeout"]),
                          cnames=Lookup(cname_servers) if args["dns_follow_cname"] else None)


#: What an entry of ``dns_providers`` may set: the task's dns_* options without the prefix.
NAMED_DNS_KEYS = ("provider", "rfc2136", "lexicon", "hook", "provider_options", "check_servers", "resolvers",
                  "follow_cname", "propagation_timeout")


def dns_router(args: dict[str, Any], specs: list[Any]) -> Optional[Dns01Router]:
    """The dns-01 responders: the task's own (dns_provider) and each of dns_providers that a
    certificate names; an error names a certificate using dns-01 with no provider to use."""
    named = args.get("dns_providers") or {}
    responders: dict[str, Dns01Responder] = {}
    default = dns_responder(args)
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
        for key in ("dns_follow_cname", "dns_propagation_timeout", "dns_resolvers"):
            if own[key] is None:
                own[key] = args[key]
        try:
            responder = dns_responder(own)
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


def caa_preflight(args: dict[str, Any]) -> Optional[CaaPreflight]:
    if not args["caa_check"]:
        return None
    return CaaPreflight(dns_query(parse_resolvers(args.get("caa_resolvers") or [], "caa_resolvers")))


#: Batches of at least this many certificates print progress while the task runs.
PROGRESS_FROM = 10


class ProgressLine:
    """Prints ``ordering 40/200`` lines on the controller while a long batch runs: at most one
    every two seconds per phase, plus the last, so a 1000-certificate run is not silent for
    minutes and not flooded either."""

    def __init__(self, task_name: str, interval: float = 2.0) -> None:
        self.task_name = task_name
        self.interval = interval
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        with self._lock:
            if done < total and now - self._last.get(phase, 0.0) < self.interval:
                return
            self._last[phase] = now
            display.display(f"certops.acme.certificate [{self.task_name}]: {phase} {done}/{total}")


class ActionModule(CertopsAction):
    ARGUMENT_SPEC = options.merged_spec(
        options.CONNECTION_SPEC, options.ACCOUNT_KEY_SPEC, options.STORE_SPEC,
        certificates={"type": "list", "elements": "dict", "required": True, "options": CERTIFICATE_OPTIONS},
        stage={"type": "str", "default": "all", "choices": ["all", "prepare", "complete"]},
        workers={"type": "int", "default": 4},
        timeout={"type": "int", "default": 600},
        lock_timeout={"type": "int", "default": 300},
        dns_provider={"type": "str"},
        dns_rfc2136={"type": "dict", "options": RFC2136_SPEC},
        dns_hook={"type": "path"},
        dns_lexicon={"type": "dict", "options": LEXICON_SPEC},
        dns_resolvers={"type": "list", "elements": "str"},
        dns_follow_cname={"type": "bool", "default": True},
        dns_providers={"type": "dict", "no_log": True},
        dns_provider_options={"type": "dict", "no_log": True},
        dns_check_servers={"type": "list", "elements": "str"},
        dns_propagation_timeout={"type": "int", "default": 120},
        caa_check={"type": "bool", "default": True},
        caa_resolvers={"type": "list", "elements": "str"},
        fallback_after={"type": "int", "default": 60},
        dns_persist_experimental={"type": "bool", "default": False},
        dns_persist_warn_days={"type": "int", "default": 30},
    )
    VALIDATION = {"mutually_exclusive": [["account_key_src", "account_key_content"]]}

    def _account_key(self, args: dict[str, Any], store: Any) -> tuple[Optional[AccountKey], str]:
        """The account key for one CA, or None and why in check mode (not created yet)."""
        if options.account_key_in_store(args):
            if self.check_mode and store.account_key_pem() is None:
                return None, "the store holds no account key yet (the account task creates it)"
            return options.build_account_key(args, store=store)[0], ""
        if args.get("account_key_src") or args.get("account_key_content"):
            src = args.get("account_key_src")
            if self.check_mode and src and not os.path.exists(os.path.expanduser(src)):
                # The first --check on a fresh controller: the account task would create the key.
                # Deciding what is due needs no key; nothing is ordered in check mode anyway.
                return None, f"the account key {src} does not exist yet (the account task creates it)"
            return options.build_account_key(args)[0], ""
        return None, ""

    def run_action(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        specs, failures = parse_specs(args["certificates"])
        store = self.open_store(args)
        workers = max(1, min(int(args["workers"]), 32))
        cas: list[CertificateAuthority] = []
        check_without_key = ""
        for ca_args in options.ca_entries(args):
            account_key, missing = self._account_key(ca_args, store)
            check_without_key = check_without_key or missing
            cas.append(CertificateAuthority(options.directory_url(ca_args),
                                            functools.partial(options.build_transport, ca_args, pool_size=workers),
                                            account_key))
        persist = None
        if args["dns_persist_experimental"]:
            persist = PersistCheck(Lookup(parse_resolvers(args.get("dns_resolvers") or [], "dns_resolvers")),
                                   PersistSettings(warn_days=float(args["dns_persist_warn_days"])))
        responders: dict[str, Any] = {}
        dns = dns_router(args, specs)
        if dns is not None:
            responders["dns-01"] = dns
        settings = BatchSettings(workers=workers, deadline_seconds=float(args["timeout"]),
                                 lock_timeout=float(args["lock_timeout"]), check_mode=self.check_mode,
                                 progress=ProgressLine(self._task.get_name()) if len(specs) >= PROGRESS_FROM else None)
        batch = FallbackOutcome([], [])
        try:
            batch = run_with_fallback(store, settings, cas, specs, args["stage"], responders, caa_preflight(args),
                                      connect_seconds=float(args["fallback_after"]), persist=persist)
        finally:
            batch.close()
        results = batch.results
        by_name = {r.name: r for r in results + failures}
        ordered = [by_name[c["name"]] for c in args["certificates"] if c.get("name") in by_name]
        failed = [r for r in ordered if r.action == "failed"]
        out: dict[str, Any] = {
            "changed": any(r.changed for r in ordered),
            "certificates": [r.to_dict() for r in ordered],
            "challenges": batch.host_challenges,
            "acme_requests": batch.request_counts(),
            "account_url": batch.account_url,
            "store": store.describe(),
            "store_requests": store.requests,
        }
        due_by = next_run_due_by(ordered, utcnow())
        out["next_run_due_by"] = due_by.isoformat() if due_by is not None else None
        warnings = list(batch.warnings)
        lost = [r.name for r in ordered if r.lock_lost]
        if lost:
            warnings.append(f"{len(lost)} certificate(s) lost their store lock during this run ({', '.join(lost[:10])}"
                            f"{', ...' if len(lost) > 10 else ''}): this run's lease on the shared store lapsed "
                            "or another run took the lock over, so nothing was finalized or stored for them here; "
                            "the run holding the lock issues them")
        if check_without_key and any(r.action in ("issue", "renew") for r in ordered):
            warnings.append(f"check mode: {check_without_key}; the certificates marked issue/renew would be ordered")
        if dns is not None:
            warnings += dns.warnings
        if persist is not None:
            warnings += persist.warnings
        if dns is not None and dns.cleanup_errors:
            warnings += [f"dns-01 cleanup: {e}" for e in dns.cleanup_errors]
        if warnings:
            out["warnings"] = warnings
        if failed:
            ok = len(ordered) - len(failed)
            out["failed"] = True
            out["msg"] = (f"{len(failed)} of {len(ordered)} certificate(s) failed ({ok} stored or kept): "
                          + "; ".join(f"{r.name}: {r.error}" for r in failed))
        return out
