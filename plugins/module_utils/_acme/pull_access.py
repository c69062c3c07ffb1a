"""Pull delivery, on the controller: each proxy host's own identity and policy in OpenBao/Vault.

A host that takes its certificates from the shared store (the agent of pull_delivery.yml) logs in
with an AppRole of its own, ``<name_prefix><inventory_hostname>``, whose tokens carry one policy
of the same name: read, and nothing else, on the store record of each certificate that host
serves. The policy is generated from the inventory on every run, so a site moved to another
host moves its read right too; an unchanged inventory writes nothing.

Policy paths are globs in OpenBao/Vault (``*`` at the end, ``+`` for a segment), so every name
that enters one is checked against an anchored pattern without either character: a name
cannot widen a host's policy to other hosts' keys. These calls need a token that may write
policies and AppRoles (``admin_token``); the store's own token never needs that right.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional, Sequence

try:
    import hvac.exceptions
except ImportError:  # VaultStore() names the missing package
    hvac = None

from .errors import InputError, StoreError
from .store import check_certificate_name
from .store.vault import CERTIFICATES, VaultStore

HOST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z")
NAME_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,40}\Z")
STORE_PATH = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*\Z")
DURATION = re.compile(r"^[1-9][0-9]{0,6}[smhd]?\Z")


def check_host(host: object, field: str) -> str:
    if not isinstance(host, str) or not HOST_NAME.match(host):
        raise InputError(field, f"{host!r} cannot name a host's AppRole and policy",
                         "use inventory host names of 1-100 letters, digits, '.', '_' or '-'")
    return host


def role_name(name_prefix: str, host: str) -> str:
    """The AppRole and the policy of one host (the same name)."""
    return f"{name_prefix}{host}"


def policy_text(mount: str, store_prefix: str, host: str, certificates: Sequence[str]) -> str:
    """The ACL policy of one host: read on each of its certificates' store records (KV v2)."""
    for value, field in ((mount, "vault_mount"), (store_prefix, "vault_prefix")):
        if not STORE_PATH.match(value):
            raise InputError(field, f"{value!r} cannot be written into a policy path",
                             "use segments of letters, digits, '.', '_' or '-' separated by '/'")
    lines = [f"# certops.acme pull delivery: what {host} serves, read only. Generated on every run;",
             "# edits here are overwritten."]
    for name in sorted(set(certificates)):
        lines.append(f'path "{mount}/data/{store_prefix}/{CERTIFICATES}/{name}" {{\n  capabilities = ["read"]\n}}')
    return "\n".join(lines) + "\n"


@dataclass
class HostAccess:
    """What one host's identity is after ensure(): its role id (empty in check mode for a role
    not made yet) and whether anything was written."""

    role: str
    role_id: str
    changed: bool


class PullAccess:
    """Writes the hosts' policies and AppRoles through a store client holding an admin token."""

    def __init__(self, store: VaultStore, approle_mount: str, name_prefix: str, token_ttl: str) -> None:
        if not STORE_PATH.match(approle_mount):
            raise InputError("approle_mount", f"{approle_mount!r} is not a mount path", "e.g. approle")
        if not NAME_PREFIX.match(name_prefix):
            raise InputError("name_prefix", f"{name_prefix!r} cannot begin a policy name",
                             "use 1-41 letters, digits, '.', '_' or '-', e.g. certops-pull-")
        if not DURATION.match(token_ttl):
            raise InputError("token_ttl", f"{token_ttl!r} is not a duration", "e.g. 1h or 3600")
        self.store, self.mount, self.prefix, self.token_ttl = store, approle_mount, name_prefix, token_ttl

    def _policy(self, name: str) -> Optional[str]:
        try:
            answer = self.store.admin_call(f"read policy {name}", lambda c: c.sys.read_policy(name))
        except hvac.exceptions.InvalidPath:
            return None
        data = answer.get("data", answer) if isinstance(answer, dict) else {}
        rules = data.get("rules") if isinstance(data, dict) else None
        return rules if isinstance(rules, str) else None

    def _role_policies(self, name: str) -> Optional[list[str]]:
        try:
            answer = self.store.admin_call(f"read AppRole {name}",
                                           lambda c: c.auth.approle.read_role(name, mount_point=self.mount))
        except hvac.exceptions.InvalidPath:
            return None
        policies = ((answer or {}).get("data") or {}).get("token_policies")
        return sorted(policies) if isinstance(policies, list) else []

    def ensure(self, host: str, certificates: Sequence[str], write: bool) -> HostAccess:
        """The host's policy and AppRole as the inventory says (written only where they differ)."""
        name = role_name(self.prefix, host)
        wanted = policy_text(self.store.mount, self.store.prefix, host, certificates)
        changed = False
        if self._policy(name) != wanted:
            changed = True
            if write:
                self.store.admin_call(f"write policy {name}",
                                      lambda c: c.sys.create_or_update_policy(name=name, policy=wanted))
        if self._role_policies(name) != [name]:
            changed = True
            if write:
                self.store.admin_call(f"write AppRole {name}", lambda c: c.auth.approle.create_or_update_approle(
                    name, token_policies=[name], token_ttl=self.token_ttl, token_max_ttl="24h", bind_secret_id=True,
                    secret_id_num_uses=0, mount_point=self.mount))
        role_id = ""
        if write or not changed:
            answer = self.store.admin_call(f"read the role id of {name}",
                                           lambda c: c.auth.approle.read_role_id(name, mount_point=self.mount))
            role_id = str(((answer or {}).get("data") or {}).get("role_id") or "")
        return HostAccess(name, role_id, changed)

    def new_secret_id(self, host: str) -> str:
        """A new secret id for the host's AppRole (the old ones stay valid until revoked)."""
        name = role_name(self.prefix, host)
        answer = self.store.admin_call(f"make a secret id for {name}", lambda c: c.auth.approle.generate_secret_id(
            name, metadata={"host": host, "by": "certops.acme pull delivery"}, mount_point=self.mount))
        secret = ((answer or {}).get("data") or {}).get("secret_id")
        if not isinstance(secret, str) or not secret:
            raise StoreError(f"store {self.store.describe()}: no secret id came back for {name}")
        return secret


def checked_hosts(hosts: Any) -> dict[str, list[str]]:
    """{host: [certificate names]} from the action's ``hosts`` option, every name checked."""
    checked: dict[str, list[str]] = {}
    for index, entry in enumerate(hosts):
        host = check_host(entry.get("name"), f"hosts[{index}].name")
        if host in checked:
            raise InputError(f"hosts[{index}].name", f"{host!r} is listed twice", "list each host once")
        checked[host] = [check_certificate_name(n, f"hosts[{index}].certificates")
                         for n in entry.get("certificates") or []]
    return checked
