# -*- coding: utf-8 -*-
"""Action plugin behind certops.acme.revoke (documented in plugins/modules/revoke.py)."""

from __future__ import annotations

from typing import Any

from ansible_collections.certops.acme.plugins.module_utils._acme import options
from ansible_collections.certops.acme.plugins.module_utils._acme.account import AccountKey, find_account
from ansible_collections.certops.acme.plugins.module_utils._acme.crypto import load_private_key
from ansible_collections.certops.acme.plugins.module_utils._acme.errors import InputError
from ansible_collections.certops.acme.plugins.module_utils._acme.revocation import REASONS, revoke, revoked_now
from ansible_collections.certops.acme.plugins.module_utils._acme.storage import check_certificate_name
from ansible_collections.certops.acme.plugins.module_utils._acme.transport import Deadline
from ansible_collections.certops.acme.plugins.plugin_utils._action_base import CertopsAction


class ActionModule(CertopsAction):
    ARGUMENT_SPEC = options.merged_spec(
        options.CONNECTION_SPEC, options.ACCOUNT_KEY_SPEC, options.STORE_SPEC,
        certificates={"type": "list", "elements": "str", "required": True},
        reason={"type": "str", "default": "unspecified", "choices": list(REASONS)},
        revoke_with={"type": "str", "default": "account_key", "choices": ["account_key", "certificate_key"]},
    )
    VALIDATION = {"mutually_exclusive": [["account_key_src", "account_key_content"]]}

    def run_action(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        store = self.open_store(args)
        wanted = []
        for index, name in enumerate(args["certificates"]):
            check_certificate_name(name, f"certificates[{index}]")
            stored = store.load(name)
            if stored is None:
                raise InputError(f"certificates[{index}]", f"{name!r} is not in the store ({store.describe()})",
                                 "give the name a certops.acme.certificate task stored it under")
            wanted.append(stored)
        due = [s for s in wanted if not s.meta.get("revoked_at")]
        results = [{"name": s.name, "changed": False, "serial": s.facts.serial, "note": "already revoked (store)"}
                   for s in wanted if s not in due]
        if not due or self.check_mode:
            results += [{"name": s.name, "changed": True, "note": "would revoke"} for s in due]
            return {"changed": bool(due), "certificates": results}
        transport = options.build_transport(args, pool_size=1)
        deadline = Deadline(float(args["request_timeout"]) * (2 + len(due)), "revocation")
        try:
            account_key = None
            if args["revoke_with"] == "account_key":
                account_key, _ignored = options.build_account_key(args)
                if not find_account(transport, account_key, deadline).exists:
                    raise InputError("account_key_src", "no ACME account exists for this key",
                                     "revoke with the account that ordered the certificate, or "
                                     "revoke_with: certificate_key")
            for stored in due:
                signer = None
                if args["revoke_with"] == "certificate_key":
                    signer = AccountKey.from_key(load_private_key(stored.key_pem, f"stored key of {stored.name!r}"))
                done = revoke(transport, stored, args["reason"], deadline, certificate_key=signer)
                store.update_meta(stored.name, stored.version, revoked_at=revoked_now(),
                                  revocation_reason=args["reason"])
                results.append({"name": done.name, "changed": done.changed, "serial": done.serial,
                                "reason": done.reason, "note": done.note})
            return {"changed": any(r["changed"] for r in results), "certificates": results,
                    "acme_requests": dict(transport.requests)}
        finally:
            transport.close()
