# -*- coding: utf-8 -*-
"""Action plugin behind certops.acme.pull_access (documented in plugins/modules/pull_access.py)."""

from __future__ import annotations

from typing import Any

from ansible_collections.certops.acme.plugins.module_utils._acme import options
from ansible_collections.certops.acme.plugins.module_utils._acme.errors import InputError
from ansible_collections.certops.acme.plugins.module_utils._acme.pull_access import PullAccess, checked_hosts
from ansible_collections.certops.acme.plugins.module_utils._acme.store.vault import VaultStore
from ansible_collections.certops.acme.plugins.plugin_utils._action_base import CertopsAction


class ActionModule(CertopsAction):
    ARGUMENT_SPEC = options.merged_spec(
        options.STORE_SPEC,
        hosts={"type": "list", "elements": "dict", "required": True, "options": {
            "name": {"type": "str", "required": True},
            "certificates": {"type": "list", "elements": "str", "default": []},
            "new_secret_id": {"type": "bool", "default": False}}},
        admin_token={"type": "str", "required": True, "no_log": True},
        approle_mount={"type": "str", "default": "approle"},
        name_prefix={"type": "str", "default": "certops-pull-"},
        token_ttl={"type": "str", "default": "1h"},
    )

    def run_action(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        hosts = checked_hosts(args["hosts"])
        new_secret_ids = sorted(entry["name"] for entry in args["hosts"] if entry["new_secret_id"])
        # The admin token writes policies and AppRoles; the store's own token is not used here.
        store = self.open_store({**args, "vault_token": args["admin_token"], "vault_role_id": None,
                                 "vault_secret_id": None}, write=True)
        if not isinstance(store, VaultStore):
            raise InputError("store", "pull delivery needs the shared store (store: vault)",
                             "set the store options of an OpenBao/Vault store, or deliver by push")
        access = PullAccess(store, args["approle_mount"], args["name_prefix"], args["token_ttl"])
        write = not self.check_mode
        out_hosts, secret_ids = {}, {}
        for host, certificates in sorted(hosts.items()):
            done = access.ensure(host, certificates, write)
            out_hosts[host] = {"role": done.role, "role_id": done.role_id, "changed": done.changed,
                               "certificates": sorted(set(certificates))}
        if write:
            secret_ids = {host: access.new_secret_id(host) for host in new_secret_ids}
        result: dict[str, Any] = {"changed": any(h["changed"] for h in out_hosts.values()) or bool(new_secret_ids),
                                  "hosts": out_hosts, "secret_ids": secret_ids,
                                  # What the agents' templates read: exactly the paths the policies allow.
                                  "store_urls": list(store.urls), "store_mount": store.mount,
                                  "store_prefix": store.prefix}
        if secret_ids:
            # New credentials: the task's output is hidden as with no_log (the next task writes them).
            result["_ansible_no_log"] = True
        return result
