# -*- coding: utf-8 -*-
"""Action plugin behind certops.acme.revoke (documented in plugins/modules/revoke.py)."""

from __future__ import annotations

import functools
from typing import Any

from ansible_collections.certops.acme.plugins.module_utils._acme import options
from ansible_collections.certops.acme.plugins.module_utils._acme.ca.account import AccountKey
from ansible_collections.certops.acme.plugins.module_utils._acme.ca.revocation import REASONS, revoke_at_issuers, revoke_stored
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
        entries = options.ca_entries(args)
        if len(entries) == 1:
            return self._revoke(entries[0], store, args["certificates"])
        return revoke_at_issuers(store, [e["acme_directory"] for e in entries], args["certificates"],
                                 lambda index, names: self._revoke(entries[index], store, names))

    def _revoke(self, args: dict[str, Any], store: Any, names: list[str]) -> dict[str, Any]:
        def account_key() -> AccountKey:
            return options.build_account_key(args, store=store)[0]
        return revoke_stored(store, names, args["reason"], args["revoke_with"],
                             functools.partial(options.build_transport, args, pool_size=1), account_key,
                             float(args["request_timeout"]), self.check_mode)
