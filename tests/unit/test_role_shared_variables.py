"""The variables the layout roles share with the certificates role (the ACME, store and account
options they hand on) mean the same in all three: same default, same type, same choices, and
secret in all three or none. A new shared option that one role forgets, or a default changed in
one place, fails here instead of behaving differently by layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[2] / "roles"
LAYOUTS = ("edge", "passthrough")
#: Shared names whose defaults differ on purpose, with why.
DIFFERENT_ON_PURPOSE = {
    # A layout owns the whole list of sites on its hosts, so a site it no longer lists goes; the
    # certificates role used on its own is never told about the other certificates of a host.
    "remove_unlisted": "default",
}
SPEC_KEYS = ("type", "elements", "choices", "no_log", "default", "required")


def defaults(role: str) -> dict[str, Any]:
    prefix = f"certops_{role}_"
    data = yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text()) or {}
    return {name[len(prefix):]: value for name, value in data.items() if name.startswith(prefix)}


def argument_specs(role: str) -> dict[str, dict[str, Any]]:
    prefix = f"certops_{role}_"
    data = yaml.safe_load((ROLES / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    options: dict[str, dict[str, Any]] = {}
    for entry_point in data.values():
        for name, spec in (entry_point.get("options") or {}).items():
            if name.startswith(prefix):
                options.setdefault(name[len(prefix):], spec)
    return options


SHARED = sorted(set(defaults("certificates")) & (set(defaults("edge")) | set(defaults("passthrough"))))


def test_there_are_shared_variables_to_check():
    assert {"acme_directory", "account_key_src", "account_key_in_store", "store_path"} <= set(SHARED)


@pytest.mark.parametrize("name", SHARED)
def test_a_shared_variable_exists_in_every_layout_with_the_same_default(name):
    values = {role: defaults(role) for role in ("certificates", *LAYOUTS)}
    missing = [role for role in LAYOUTS if name not in values[role]]
    assert not missing, f"{name} is shared but certops_<role>_{name} is missing in {missing}"
    if DIFFERENT_ON_PURPOSE.get(name) == "default":
        return
    assert values["edge"][name] == values["passthrough"][name] == values["certificates"][name], name


@pytest.mark.parametrize("name", SHARED)
def test_a_shared_variable_is_specified_alike_in_every_role(name):
    specs = {role: argument_specs(role).get(name) for role in ("certificates", *LAYOUTS)}
    assert all(specs.values()), f"{name} lacks an argument spec in {[r for r, s in specs.items() if not s]}"
    keys = [k for k in SPEC_KEYS if not (k == "default" and DIFFERENT_ON_PURPOSE.get(name) == "default")]
    shown = {role: {k: spec.get(k) for k in keys} for role, spec in specs.items() if spec}
    assert shown["edge"] == shown["passthrough"] == shown["certificates"], name
