# -*- coding: utf-8 -*-
"""Action plugin behind certops.acme.account (documented in plugins/modules/account.py)."""

from __future__ import annotations

import functools
import os
from typing import Any

from ansible_collections.certops.acme.plugins.module_utils._acme.ca import account as acme_account
from ansible_collections.certops.acme.plugins.module_utils._acme import fallback
from ansible_collections.certops.acme.plugins.module_utils._acme import options
from ansible_collections.certops.acme.plugins.module_utils._acme.errors import InputError
from ansible_collections.certops.acme.plugins.plugin_utils._action_base import CertopsAction


class ActionModule(CertopsAction):
    ARGUMENT_SPEC = options.merged_spec(
        options.CONNECTION_SPEC, options.ACCOUNT_KEY_SPEC, options.STORE_SPEC,
        state={"type": "str", "default": "present", "choices": ["present", "absent"]},
        account_key_create={"type": "bool", "default": False},
        contact={"type": "list", "elements": "str"},
        terms_agreed={"type": "bool", "default": False},
        allow_creation={"type": "bool", "default": True},
        eab_kid={"type": "str"},
        eab_hmac_key={"type": "str", "no_log": True},
        eab_alg={"type": "str", "default": "HS256", "choices": ["HS256", "HS384", "HS512"]},
        new_account_key_src={"type": "path"},
        new_account_key_content={"type": "str", "no_log": True},
        fallback_after={"type": "int", "default": 60},
    )
    VALIDATION = {"mutually_exclusive": [["account_key_src", "account_key_content"],
                                         ["new_account_key_src", "new_account_key_content"]],
                  "required_together": [["eab_kid", "eab_hmac_key"]]}

    def run_action(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        store = self.open_store(args)
        entries = options.ca_entries(args)
        if len(entries) == 1:
            return self._account(entries[0], store)
        if args.get("new_account_key_src") or args.get("new_account_key_content"):
            raise InputError("new_account_key_src", "rolls over the account at one CA, not a list",
                             "give acme_directory as the URL of that CA")
        return fallback.account_at_every_ca(store, entries, args["fallback_after"], options.directory_url,
                                            functools.partial(self._account, store=store), record=not self.check_mode)

    def _account(self, args: dict[str, Any], store: Any) -> dict[str, Any]:
        """The account at the one CA ``args`` names."""
        present = args["state"] == "present"
        in_store = options.account_key_in_store(args)
        src = args.get("account_key_src")
        if self.check_mode and present and args["account_key_create"]:
            if in_store and store.account_key_pem() is None:
                return self._would_create(args, f"in the store ({store.describe()})")
            if src and not os.path.exists(os.path.expanduser(src)):
                return self._would_create(args, src)
        create_key = present and args["account_key_create"] and not self.check_mode
        key, key_created = options.build_account_key(args, create=create_key, store=store)
        directory_url = options.directory_url(args)
        timeout = float(args["request_timeout"]) * 4
        new_src, new_content = args.get("new_account_key_src"), args.get("new_account_key_content")
        if present and (new_src or new_content):
            if self.check_mode and new_src and not os.path.exists(os.path.expanduser(new_src)):
                return {"changed": True, "msg": f"would create {new_src} and roll the account over to it"}
            new = acme_account.load_account_key(new_src, new_content, None, create=not self.check_mode)[0]
            return acme_account.roll_over(store, directory_url, key, new, lambda: options.build_transport(args, 1),
                                          timeout, self.check_mode)
        wish = acme_account.AccountWish(
            present=present, contact=args.get("contact"), terms_agreed=args["terms_agreed"],
            allow_creation=args["allow_creation"], eab_kid=args.get("eab_kid"), eab_hmac_key=args.get("eab_hmac_key"),
            eab_alg=args["eab_alg"])
        return acme_account.ensure_account(store, directory_url, key, wish, lambda: options.build_transport(args, 1),
                                           timeout, self.check_mode, key_created)

    def _would_create(self, args: dict[str, Any], src: str) -> dict[str, Any]:
        """The first --check on a fresh controller: the key does not exist yet."""
        result: dict[str, Any] = {"changed": True, "exists": False, "account_url": None, "thumbprint": None,
                                  "contact": [], "msg": f"would create the key {src} and its account"}
        if self._play_context.diff:
            result["diff"] = {"before": "", "after": f"account key {src} (new)\naccount at "
                                                     f"{args.get('acme_directory') or 'the CA'} (new, contact: "
                                                     f"{', '.join(args.get('contact') or []) or 'none'})\n"}
        return result
