"""Every variable a role defines carries the collection-qualified prefix ``certops_<role>_``.

This replaces ansible-lint's var-naming[no-role-prefix], which is skipped in .ansible-lint:
that rule derives the prefix from the short role name (``certificates_``, ``edge_``), which two
collections' roles can share; ``certops_<role>_`` cannot collide. Private helpers start with
``_certops_<role>_``. The layout roles may also set ``certops_certificates_*`` where they include
that role (task vars, or the vars of a block that includes it): that is the certificates role's
documented interface. Never in vars/main.yml: role vars stay visible to later roles of the play,
so ``roles: [edge, certificates]`` would give the second role the edge sites."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[2] / "roles"
ROLE_NAMES = sorted(p.name for p in ROLES.iterdir() if (p / "tasks").is_dir())
INCLUDE_ACTIONS = {"include_role", "import_role", "ansible.builtin.include_role", "ansible.builtin.import_role"}


def allowed(name: str, role: str, interface: bool = False) -> bool:
    prefixes = [f"certops_{role}_"] + (["certops_certificates_"] if interface else [])
    return any(name.lstrip("_").startswith(p) for p in prefixes)


def walk(tasks):
    for task in tasks or []:
        yield task
        for section in ("block", "rescue", "always"):
            yield from walk(task.get(section))


def defined_names(role: str):
    """(file, variable, may-use-the-certificates-interface) for every variable the role defines."""
    base = ROLES / role
    for kind in ("defaults", "vars"):
        for path in sorted((base / kind).glob("*.yml")):
            for name in (yaml.safe_load(path.read_text()) or {}):
                yield path.relative_to(ROLES), name, False
    for path in sorted((base / "tasks").glob("*.yml")):
        for task in walk(yaml.safe_load(path.read_text())):
            if "register" in task:
                yield path.relative_to(ROLES), task["register"], False
            for key in ("ansible.builtin.set_fact", "set_fact"):
                for name in (task.get(key) or {}):
                    if name != "cacheable":
                        yield path.relative_to(ROLES), name, False
            includes = any(action in inner for inner in walk([task]) for action in INCLUDE_ACTIONS)
            for name in (task.get("vars") or {}):
                yield path.relative_to(ROLES), name, includes


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_every_role_variable_has_the_collection_qualified_prefix(role):
    wrong = [f"{path}: {name}" for path, name, interface in defined_names(role) if not allowed(name, role, interface)]
    assert not wrong, "variables without the certops_<role>_ prefix:\n" + "\n".join(wrong)


def test_the_check_sees_variables():
    # Guard against a walker that silently finds nothing.
    assert sum(1 for role in ROLE_NAMES for _item in defined_names(role)) > 30
