# -*- coding: utf-8 -*-
"""Action plugin behind certops.acme.challenge: adds the tls-alpn-01 challenge certificates
from the controller store (as a no_log option) before the target module runs."""

from __future__ import annotations

from typing import Any

from ansible_collections.certops.acme.plugins.module_utils._acme import options
from ansible_collections.certops.acme.plugins.module_utils._acme.orders import pending_alpn
from ansible_collections.certops.acme.plugins.module_utils._acme.store import check_certificate_name
from ansible_collections.certops.acme.plugins.module_utils._target_options import CHALLENGE_OPTIONS
from ansible_collections.certops.acme.plugins.plugin_utils._action_base import CertopsAction

MODULE = "certops.acme.challenge"
PASSED_THROUGH = ("state", "webroot", "responder_dir", "responder_address", "responder_port", "responder_ttl")


class ActionModule(CertopsAction):
    ARGUMENT_SPEC = options.merged_spec(options.STORE_SPEC, CHALLENGE_OPTIONS)

    def run_action(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        module_args = {k: args[k] for k in PASSED_THROUGH if args.get(k) is not None}
        module_args["challenges"] = args["challenges"]
        alpn_items = [c for c in args["challenges"] if c.get("type") == "tls-alpn-01"]
        if alpn_items and args["state"] == "present":
            store = self.open_store(args)
            material: dict[str, list[str]] = {}
            for name in {check_certificate_name(c.get("certificate"), "challenges[].certificate") for c in alpn_items}:
                material.update(pending_alpn(store.get_pending(name)))
            module_args["alpn_material"] = material
        if not args["challenges"]:
            return {"changed": False, "files": [], "responder": {"running": False}}
        result = self.run_target_module(MODULE, module_args, task_vars)
        return result
