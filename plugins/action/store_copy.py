# -*- coding: utf-8 -*-
"""Action plugin behind certops.acme.store_copy (documented in plugins/modules/store_copy.py)."""

from __future__ import annotations

from typing import Any

from ansible_collections.certops.acme.plugins.module_utils._acme import options
from ansible_collections.certops.acme.plugins.module_utils._acme.errors import InputError
from ansible_collections.certops.acme.plugins.module_utils._acme.store.copy import copy_store
from ansible_collections.certops.acme.plugins.module_utils._acme.store import check_certificate_name
from ansible_collections.certops.acme.plugins.plugin_utils._action_base import CertopsAction


class ActionModule(CertopsAction):
    ARGUMENT_SPEC = options.merged_spec(
        options.STORE_SPEC,
        source={"type": "dict", "required": True, "options": options.merged_spec(options.STORE_SPEC)},
        certificates={"type": "list", "elements": "str"},
    )

    def run_action(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        names = args.get("certificates")
        for index, name in enumerate(names or []):
            check_certificate_name(name, f"certificates[{index}]")
        source = options.build_store(args["source"], check_mode=True)  # only read
        self._stores.append(source)
        target = self.open_store(args)
        if source.describe() == target.describe():
            raise InputError("source", f"is the task's own store ({target.describe()})",
                             "name the store to copy from in source, the one to copy to in the task's store options")
        return copy_store(source, target, names, write=not self.check_mode)
