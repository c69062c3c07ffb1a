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
from ansible_collections.certops.acme.plugins.module_utils._acme.ca.account import AccountKey
from ansible_collections.certops.acme.plugins.module_utils._acme.batch import BatchSettings
from ansible_collections.certops.acme.plugins.module_utils._acme.caa import CaaPreflight, dns_query
from ansible_collections.certops.acme.plugins.module_utils._acme.claims import DIRECT, check_party, claim_all
from ansible_collections.certops.acme.plugins.module_utils._acme.crypto import utcnow
from ansible_collections.certops.acme.plugins.module_utils._acme.challenges.dns01 import RFC2136_SPEC
from ansible_collections.certops.acme.plugins.module_utils._acme.challenges.dns01_options import build_dns01
from ansible_collections.certops.acme.plugins.module_utils._acme.challenges.dns_persist01 import PersistCheck, PersistSettings
from ansible_collections.certops.acme.plugins.module_utils._acme.challenges.lexicon import LEXICON_SPEC
from ansible_collections.certops.acme.plugins.module_utils._acme.dns_lookup import Lookup, parse_resolvers
from ansible_collections.certops.acme.plugins.module_utils._acme.fallback import (
    CertificateAuthority, FallbackOutcome, run_with_fallback)
from ansible_collections.certops.acme.plugins.module_utils._acme.results import next_run_due_by
from ansible_collections.certops.acme.plugins.module_utils._acme.spec import CERTIFICATE_OPTIONS, parse_specs
from ansible_collections.certops.acme.plugins.plugin_utils._action_base import CertopsAction
from ansible_collections.certops.acme.plugins.plugin_utils._dns_hook import HookProvider

display = Display()


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
        dns_propagation={"type": "str", "default": "check", "choices": ["check", "wait"]},
        dns_propagation_wait={"type": "int", "default": 60},
        caa_check={"type": "bool", "default": True},
        caa_resolvers={"type": "list", "elements": "str"},
        fallback_after={"type": "int", "default": 60},
        dns_persist_experimental={"type": "bool", "default": False},
        dns_persist_warn_days={"type": "int", "default": 30},
        wanted_by={"type": "str", "default": DIRECT},
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
        party = check_party(args["wanted_by"])
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
        dns = build_dns01(args, specs, hook=HookProvider)
        if dns is not None:
            responders["dns-01"] = dns
        settings = BatchSettings(workers=workers, deadline_seconds=float(args["timeout"]),
                                 lock_timeout=float(args["lock_timeout"]), check_mode=self.check_mode, party=party,
                                 progress=ProgressLine(self._task.get_name()) if len(specs) >= PROGRESS_FROM else None)
        batch = FallbackOutcome([], [])
        try:
            batch = run_with_fallback(store, settings, cas, specs, args["stage"], responders, caa_preflight(args),
                                      connect_seconds=float(args["fallback_after"]), persist=persist)
        finally:
            batch.close()
        results = batch.results
        # What was kept gets this party's claim where it lacks it (once; new versions carry it).
        claimed = claim_all(store, [r.stored for r in results if r.stored is not None], party,
                            write=not self.check_mode)
        by_name = {r.name: r for r in results + failures}
        ordered = [by_name[c["name"]] for c in args["certificates"] if c.get("name") in by_name]
        failed = [r for r in ordered if r.action == "failed"]
        out: dict[str, Any] = {
            # A claim is bookkeeping, like a cached renewal window: no certificate changed.
            "changed": any(r.changed for r in ordered),
            "certificates": [r.to_dict() for r in ordered],
            "challenges": batch.host_challenges,
            "acme_requests": batch.request_counts(),
            "account_url": batch.account_url,
            "store": store.describe(),
            "store_requests": store.requests,
            "claimed": claimed,
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
