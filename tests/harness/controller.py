"""The test's controller: an account at Pebble, a place to write playbooks and run them as a
user would, and the stateless http-01 answer on HAProxy that the batch tests put in front."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.harness import pebble
from tests.harness.ansible import PlaybookRun, run_playbook, spawn_playbook

from ansible_collections.certops.acme.plugins.module_utils._acme.ca.account import (
    AccountRequest, create_account, find_account, load_account_key)
from ansible_collections.certops.acme.plugins.module_utils._acme.ca.transport import AcmeTransport
from ansible_collections.certops.acme.plugins.module_utils._acme.waiting import Deadline


def make_account(pebble_info: pebble.PebbleInfo, path: Path) -> dict[str, str]:
    """An account key at ``path`` with its account at that Pebble."""
    key, _ignored = load_account_key(str(path), None, None, create=True)
    transport = AcmeTransport(pebble_info.directory_url, verify=pebble_info.ca_cert)
    deadline = Deadline(30, "test account")
    if not find_account(transport, key, deadline).exists:
        create_account(transport, key, AccountRequest(terms_agreed=True), deadline)
    transport.close()
    return {"key_path": str(path), "thumbprint": key.thumbprint}


def stateless_haproxy_config(address: str, port: int, thumbprint: str) -> str:
    return f"""global
    stats socket {{sock}} mode 600 level admin
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend acme_http
    bind {address}:{port}
    acl acme_challenge path_reg ^/\\.well-known/acme-challenge/[-_A-Za-z0-9]+$
    http-request return status 200 content-type text/plain lf-string "%[path,field(-1,/)].{thumbprint}" if acme_challenge
    http-request deny deny_status 404
"""


class Controller:
    """A place to write playbooks and run them like a user would."""

    def __init__(self, work: Path, pebble_info: pebble.PebbleInfo, account_info: dict[str, str]) -> None:
        self.work = work
        self.pebble = pebble_info
        self.account = account_info
        self.store = work / "store"
        self.inventory = work / "inventory.json"
        self.write_inventory({"all": {"hosts": {"localhost": self.local_host()}}})

    @staticmethod
    def local_host(**extra: Any) -> dict[str, Any]:
        host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
        host.update(extra)
        return host

    def write_inventory(self, data: dict[str, Any]) -> None:
        self.inventory.write_text(json.dumps(data, indent=2))

    def acme_defaults(self) -> dict[str, Any]:
        return {"acme_directory": self.pebble.directory_url, "ca_path": self.pebble.ca_cert,
                "account_key_src": self.account["key_path"]}

    def playbook(self, name: str, tasks: list[dict[str, Any]], hosts: str = "localhost") -> Path:
        path = self.work / f"{name}.yml"
        play = {"name": name, "hosts": hosts, "gather_facts": False,
                "module_defaults": {"group/certops.acme.acme": self.acme_defaults()}, "tasks": tasks}
        path.write_text(json.dumps([play], indent=2))
        return path

    def role_playbook(self, name: str, dump: str, dump_to: str) -> Path:
        """A play running the certificates role on every host, then writing the expression
        ``dump`` (a host's result) as JSON to ``dump_to`` (templated per host) for the test."""
        path = self.work / f"{name}.yml"
        path.write_text(json.dumps([{"hosts": "all", "gather_facts": False,
                                     "roles": [{"role": "certops.acme.certificates"}],
                                     "post_tasks": [{"ansible.builtin.copy": {
                                         "content": "{{ %s | to_json }}" % dump, "dest": dump_to},
                                         "check_mode": False, "changed_when": False}]}]))
        return path

    def spawn(self, playbook: Path, *args: str) -> "subprocess.Popen[str]":
        return spawn_playbook(playbook, self.inventory, self.work, list(args))

    def run(self, playbook: Path, *args: str, check: bool = False, env: dict[str, str] | None = None) -> PlaybookRun:
        return run_playbook(playbook, self.inventory, self.work, list(args), env=env, check=check)
