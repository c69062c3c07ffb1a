# -*- coding: utf-8 -*-
# Copyright: certops.acme contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt)
"""Pull delivery's settings and the files its agent reads (certificates role, pull_delivery.yml).

Every setting reaches the agent's configuration, a systemd unit or a command line on the host,
so each is checked with an anchored pattern and fails naming the variable and the fix.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.certops.acme.plugins.filter.certificates import setting_problems

#: Each setting of certops_<layout>_pull and the pattern kind it must match (setting_problems).
SETTING_KINDS = {"dir": "path", "agent_binary": "path", "refresh": "duration", "vault_address": "url",
                 "approle_mount": "mount", "unit_path": "path"}
KNOWN = frozenset(SETTING_KINDS) | {"admin_token", "status_command", "restart_command", "rotate_secret_id",
                                    "first_apply_timeout"}


def pull_problems(pull: Any, layout: str, store: Any) -> list[str]:
    """What is wrong with the pull settings ``pull`` (defaults merged) of ``layout``, one message
    each; ``store`` is the store options the role orders with."""
    variable = "certops_%s_pull" % (layout or "certificates")
    problems = []
    if not isinstance(pull, dict):
        return ["%s: expected a mapping of settings, got %s" % (variable, type(pull).__name__)]
    if (store or {}).get("store") != "vault":
        problems.append("certops_%s_delivery: pull needs the shared store (store: vault in certops_%s_store); "
                        "deliver by push with the file store" % (layout or "certificates", layout or "certificates"))
    unknown = sorted(set(pull) - KNOWN)
    if unknown:
        problems.append("%s: unknown setting(s) %s; known: %s" % (variable, ", ".join(unknown), ", ".join(sorted(KNOWN))))
    if not pull.get("admin_token"):
        problems.append("%s.admin_token is empty; give a token that may write policies and AppRoles "
                        "(or set $CERTOPS_PULL_ADMIN_TOKEN on the controller)" % variable)
    if not str(pull.get("first_apply_timeout", "")).isdigit():
        problems.append("%s.first_apply_timeout: %r is not a number of seconds" % (variable, pull.get("first_apply_timeout")))
    for command in ("status_command", "restart_command"):
        if not isinstance(pull.get(command), str) or not pull[command].strip():
            problems.append("%s.%s is empty; give the command (systemd: the defaults)" % (variable, command))
    checked = dict(("%s.%s" % (variable, key), [kind, pull.get(key, "")]) for key, kind in SETTING_KINDS.items()
                   if key != "unit_path" or pull.get("unit_path"))
    return problems + setting_problems(checked)


def pull_apply_config(pull: dict[str, Any], layout_inputs: dict[str, Any], wanted: list[dict[str, Any]],
                      names: list[str]) -> dict[str, Any]:
    """The apply step's configuration (apply.json): where the bundles go and with which modes, the
    names each certificate must cover, how the proxy takes renewals, and which listeners to check."""
    domains = dict((spec["name"], list(spec.get("domains") or [])) for spec in wanted if spec.get("name") in names)
    return {"rendered": pull["dir"] + "/rendered/bundles.json", "status": pull["dir"] + "/status.json",
            "certificates": dict((name, {"domains": domains.get(name, [])}) for name in names),
            **layout_inputs}


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"pull_problems": pull_problems, "pull_apply_config": pull_apply_config}
