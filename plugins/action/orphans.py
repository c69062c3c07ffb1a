# -*- coding: utf-8 -*-
"""Action plugin behind certops.acme.orphans (documented in plugins/modules/orphans.py)."""

from __future__ import annotations

import datetime
from typing import Any

from ansible_collections.certops.acme.plugins.module_utils._acme import options
from ansible_collections.certops.acme.plugins.module_utils._acme.claims import check_party
from ansible_collections.certops.acme.plugins.module_utils._acme.errors import InputError
from ansible_collections.certops.acme.plugins.module_utils._acme.orphans import orphans
from ansible_collections.certops.acme.plugins.module_utils._acme.store import check_certificate_name
from ansible_collections.certops.acme.plugins.plugin_utils._action_base import CertopsAction


class ActionModule(CertopsAction):
    ARGUMENT_SPEC = options.merged_spec(
        options.STORE_SPEC,
        wanted={"type": "list", "elements": "str", "required": True},
        prune={"type": "bool", "default": False},
        prune_after_days={"type": "int", "default": 7},
        wanted_by={"type": "str", "default": "inventory"},
        claim_unclaimed={"type": "bool", "default": False},
    )

    def run_action(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        for index, name in enumerate(args["wanted"]):
            check_certificate_name(name, f"wanted[{index}]")
        if args["prune_after_days"] < 0:
            raise InputError("prune_after_days", "is negative", "give the grace period in days, 0 or more")
        if args["prune"] and task_vars.get("ansible_limit"):
            raise InputError("prune", "refused on a run limited with --limit: the hosts left out would look "
                                      "as if they wanted nothing", "prune on a run over the whole inventory")
        party = check_party(args["wanted_by"])
        store = self.open_store(args)
        result = orphans(store, args["wanted"], prune=args["prune"], party=party,
                         prune_after=datetime.timedelta(days=args["prune_after_days"]), write=not self.check_mode,
                         claim_unclaimed=args["claim_unclaimed"])
        # Marks, releases and prunes are writes to the store: the task reports them as changes.
        out: dict[str, Any] = {"changed": bool(result["pruned"] or result["marked"] or result["released"]),
                               "wanted_by": party, **result}
        waiting = [o["name"] for o in result["orphans"] if not o["pruned"]]
        warnings = []
        if waiting:
            warnings.append(f"{len(waiting)} certificate(s) in the store that {party!r} alone claimed and no longer "
                            f"wants (not renewed): {', '.join(waiting)}"
                            + ("" if args["prune"] else "; prune them with prune: true (renew.yml: "
                                                        "certops_orphans_prune: true)"))
        if result["damaged"]:
            warnings.append(f"{len(result['damaged'])} certificate record(s) in the store are damaged and were not "
                            f"judged: {', '.join(result['damaged'])} (the next run that wants one replaces it)")
        if result["unclaimed"]:
            warnings.append(f"{len(result['unclaimed'])} certificate(s) in the store record no party that wants them "
                            f"and were not judged: {', '.join(result['unclaimed'][:20])}"
                            f"{', ...' if len(result['unclaimed']) > 20 else ''}. A run that orders or keeps one "
                            "records its party; if every one of them is yours (stored before certops.acme kept "
                            "claims, one inventory per store), judge them with claim_unclaimed: true (renew.yml: "
                            "certops_orphans_claim_unclaimed: true)")
        if warnings:
            out["warnings"] = warnings
        return out
