# -*- coding: utf-8 -*-
"""Action plugin behind certops.acme.certificate (documented in plugins/modules/certificate.py)."""

from __future__ import annotations

from typing import Any

from ansible_collections.certops.acme.plugins.module_utils._acme import options
from ansible_collections.certops.acme.plugins.module_utils._acme.batch import (
    BatchSettings, CertificateBatch, parse_specs)
from ansible_collections.certops.acme.plugins.plugin_utils._action_base import CertopsAction


class ActionModule(CertopsAction):
    ARGUMENT_SPEC = options.merged_spec(
        options.CONNECTION_SPEC, options.ACCOUNT_KEY_SPEC, options.STORE_SPEC,
        certificates={"type": "list", "elements": "dict", "required": True},
        workers={"type": "int", "default": 4},
        timeout={"type": "int", "default": 600},
        lock_timeout={"type": "int", "default": 300},
    )
    VALIDATION = {"mutually_exclusive": [["account_key_src", "account_key_content"]]}

    def run_action(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        specs, failures = parse_specs(args["certificates"])
        store = options.build_store(args)
        workers = max(1, min(int(args["workers"]), 32))
        account_key = None
        if args.get("account_key_src") or args.get("account_key_content"):
            account_key, _ = options.build_account_key(args)
        batch = CertificateBatch(
            store, BatchSettings(workers=workers, deadline_seconds=float(args["timeout"]),
                                 lock_timeout=float(args["lock_timeout"]), check_mode=self.check_mode),
            lambda: options.build_transport(args, pool_size=workers), account_key)
        try:
            results = batch.run(specs)
        finally:
            batch.close()
        by_name = {r.name: r for r in results + failures}
        ordered = [by_name[c["name"]] for c in args["certificates"] if c.get("name") in by_name]
        failed = [r for r in ordered if r.action == "failed"]
        out: dict[str, Any] = {
            "changed": any(r.changed for r in ordered),
            "certificates": [r.to_dict() for r in ordered],
            "acme_requests": dict(batch.transport.requests) if batch.transport else {},
            "account_url": batch.account_url,
            "store_path": store.root,
        }
        if failed:
            ok = len(ordered) - len(failed)
            out["failed"] = True
            out["msg"] = (f"{len(failed)} of {len(ordered)} certificate(s) failed ({ok} stored or kept): "
                          + "; ".join(f"{r.name}: {r.error}" for r in failed))
        return out
