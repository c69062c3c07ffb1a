# -*- coding: utf-8 -*-
"""Action plugin behind certops.acme.revoke (documented in plugins/modules/revoke.py)."""

from __future__ import annotations

from typing import Any

from ansible_collections.certops.acme.plugins.module_utils._acme import options
from ansible_collections.certops.acme.plugins.module_utils._acme.revocation import REASONS, revoke_stored
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
        return revoke_stored(store, args["certificates"], args["reason"], args["revoke_with"],
                             lambda: options.build_transport(args, pool_size=1),
                             lambda: options.build_account_key(args, store=store)[0], float(args["request_timeout"]),
                             self.check_mode)
