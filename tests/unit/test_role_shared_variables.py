"""The settings the layout roles share with the certificates role (the ACME, store, account,
dns-01 and alert options) mean the same in all three: same default, same type, same choices,
and secret in all three or none. The certificates role takes most of them from the layout
itself (``_certops_certificates_handed_on``), so a new one is written in four places: that list
with its default, and the three argument specs. A shared option that one role forgets, a default
changed in one place, or a layout setting that nothing hands on fails here instead of behaving
differently by layout."""

from __future__ import annotations

import re
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
    # Each role marks what it installs as its own, so two of them sharing a directory never
    # remove each other's certificates.
    "install_scope": "default",
}
SPEC_KEYS = ("type", "elements", "choices", "no_log", "default", "required")


def defaults_file(role: str) -> dict[str, Any]:
    return yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text()) or {}


def defaults(role: str) -> dict[str, Any]:
    prefix = f"certops_{role}_"
    return {name[len(prefix):]: value for name, value in defaults_file(role).items() if name.startswith(prefix)}


def argument_specs(role: str) -> dict[str, dict[str, Any]]:
    prefix = f"certops_{role}_"
    data = yaml.safe_load((ROLES / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    options: dict[str, dict[str, Any]] = {}
    for entry_point in data.values():
        for name, spec in (entry_point.get("options") or {}).items():
            if name.startswith(prefix):
                options.setdefault(name[len(prefix):], spec)
    return options


def mapped_by(layout: str) -> set[str]:
    """The certificates role's variables a layout sets itself (its block vars)."""
    tasks = (ROLES / layout / "tasks" / "main.yml").read_text()
    return set(re.findall(r"^    certops_certificates_(\w+):", tasks, re.M))


HANDED_ON = defaults_file("certificates")["_certops_certificates_handed_on"]
SHARED = sorted(set(argument_specs("certificates")) & (set(argument_specs("edge")) | set(argument_specs("passthrough"))))


def test_there_are_shared_variables_to_check():
    assert {"acme_directory", "account_key_src", "account_key_in_store", "store_path"} <= set(HANDED_ON)
    assert set(HANDED_ON) <= set(SHARED)


@pytest.mark.parametrize("name", SHARED)
def test_a_shared_variable_is_specified_alike_in_every_role(name):
    specs = {role: argument_specs(role).get(name) for role in ("certificates", *LAYOUTS)}
    assert all(specs.values()), f"{name} lacks an argument spec in {[r for r, s in specs.items() if not s]}"
    keys = [k for k in SPEC_KEYS if not (k == "default" and DIFFERENT_ON_PURPOSE.get(name) == "default")]
    shown = {role: {k: spec.get(k) for k in keys} for role, spec in specs.items() if spec}
    assert shown["edge"] == shown["passthrough"] == shown["certificates"], name


@pytest.mark.parametrize("name", SHARED)
def test_a_shared_variable_reaches_the_certificates_role_one_way_only(name):
    """Handed on by name (the certificates role reads certops_<layout>_<name>) or set by the
    layout's block vars, never both and never neither."""
    for layout in LAYOUTS:
        ways = [way for way, used in (("handed on", name in HANDED_ON), ("block var", name in mapped_by(layout)))
                if used]
        assert len(ways) == 1, f"certops_{layout}_{name} reaches the certificates role by {ways or 'no way'}"


@pytest.mark.parametrize("name", HANDED_ON)
def test_a_handed_on_variable_has_its_default_once_or_the_same_everywhere(name):
    values = {role: defaults(role) for role in ("certificates", *LAYOUTS)}
    assert name in values["certificates"], f"certops_certificates_{name} has no default"
    for layout in LAYOUTS:
        if name in values[layout]:  # a layout that uses the value itself keeps a default
            assert values[layout][name] == values["certificates"][name], f"certops_{layout}_{name}"
