# -*- coding: utf-8 -*-
"""Action plugin behind certops.acme.account (documented in plugins/modules/account.py)."""

from __future__ import annotations

import os
from typing import Any

from ansible_collections.certops.acme.plugins.module_utils._acme import account as acme_account
from ansible_collections.certops.acme.plugins.module_utils._acme import options
from ansible_collections.certops.acme.plugins.module_utils._acme.transport import Deadline
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
    )
    VALIDATION = {"mutually_exclusive": [["account_key_src", "account_key_content"],
                                         ["new_account_key_src", "new_account_key_content"]],
                  "required_together": [["eab_kid", "eab_hmac_key"]]}

    def run_action(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        present = args["state"] == "present"
        src = args.get("account_key_src")
        if self.check_mode and present and args["account_key_create"] and src \
                and not os.path.exists(os.path.expanduser(src)):
            result: dict[str, Any] = {"changed": True, "exists": False, "account_url": None, "thumbprint": None,
                                      "contact": [], "msg": f"would create the key {src} and its account"}
            if self._play_context.diff:
                result["diff"] = {"before": "", "after": f"account key {src} (new)\naccount at {args.get('acme_directory') or 'the CA'}"
                                                         f" (new, contact: {', '.join(args.get('contact') or []) or 'none'})\n"}
            return result
        create_key = present and args["account_key_create"] and not self.check_mode
        key, key_created = options.build_account_key(args, create=create_key)
        store = self.open_store(args)
        directory_url = options.directory_url(args)
        known = store.known_account(directory_url, key.thumbprint) if present and not key_created else None
        if known is not None and not (args.get("new_account_key_src") or args.get("new_account_key_content")) \
                and (args.get("contact") is None or sorted(args["contact"]) == known.get("contact")):
            # Nothing to change, and an order through this store already used this account (the
            # batch remembers it then): no request at all. Every order checks the account again.
            return {"changed": False, "account_url": known["url"], "exists": True, "thumbprint": key.thumbprint,
                    "contact": known.get("contact") or [], "acme_requests": {}, "known_from_store": True}
        transport = options.build_transport(args, pool_size=1)
        deadline = Deadline(float(args["request_timeout"]) * 4, "the account operation")
        try:
            if present and (args.get("new_account_key_src") or args.get("new_account_key_content")):
                return self._roll_over(args, key, transport, deadline)
            state = acme_account.find_account(transport, key, deadline)
            changed = key_created
            if present:
                if not state.exists:
                    if not args["allow_creation"]:
                        return {"failed": True, "msg": "no account exists for this key and "
                                "allow_creation is false", "exists": False, "thumbprint": key.thumbprint}
                    changed = True
                    if not self.check_mode:
                        state = acme_account.create_account(transport, key, acme_account.AccountRequest(
                            contact=args.get("contact") or [], terms_agreed=args["terms_agreed"],
                            eab_kid=args.get("eab_kid"), eab_hmac_key=args.get("eab_hmac_key"),
                            eab_alg=args["eab_alg"]), deadline)
                elif args.get("contact") is not None and sorted(args["contact"]) != sorted(state.contact):
                    changed = True
                    if not self.check_mode:
                        state = acme_account.update_contact(transport, args["contact"], deadline)
            elif state.exists:
                changed = True
                if not self.check_mode:
                    acme_account.deactivate_account(transport, deadline)
            if not self.check_mode and not present:
                store.remember_account(directory_url, key.thumbprint, None, [])  # deactivated: forget it
            return {"changed": changed, "account_url": state.url, "exists": present and (state.exists or changed),
                    "thumbprint": key.thumbprint, "contact": state.contact,
                    "acme_requests": dict(transport.requests)}
        finally:
            transport.close()

    def _roll_over(self, args: dict[str, Any], old: acme_account.AccountKey, transport: Any,
                   deadline: Deadline) -> dict[str, Any]:
        """Idempotent key rollover: done when the account already answers to the new key."""
        new_src = args.get("new_account_key_src")
        if self.check_mode and new_src and not os.path.exists(os.path.expanduser(new_src)):
            return {"changed": True, "msg": f"would create {new_src} and roll the account over to it"}
        new = acme_account.load_account_key(new_src, args.get("new_account_key_content"), None,
                                            create=not self.check_mode)[0]
        if acme_account.find_account(transport, new, deadline).exists:
            if not self.check_mode:
                self._forget(args, old)
            return {"changed": False, "account_url": transport.account_url, "exists": True,
                    "thumbprint": new.thumbprint, "acme_requests": dict(transport.requests)}
        state = acme_account.find_account(transport, old, deadline)
        if not state.exists:
            return {"failed": True, "exists": False, "thumbprint": old.thumbprint,
                    "msg": "account_key_src: no account answers to the current key or to the new one; "
                           "nothing to roll over"}
        if not self.check_mode:
            acme_account.change_key(transport, old, new, deadline)
            self._forget(args, old)
        return {"changed": True, "account_url": state.url, "exists": True, "thumbprint": new.thumbprint,
                "previous_thumbprint": old.thumbprint, "acme_requests": dict(transport.requests)}

    def _forget(self, args: dict[str, Any], old: acme_account.AccountKey) -> None:
        """The old key no longer opens the account: what the store remembered for it goes."""
        self.open_store(args, write=True).remember_account(options.directory_url(args), old.thumbprint, None, [])
