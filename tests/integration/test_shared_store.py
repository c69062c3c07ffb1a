"""Several controllers, one truth: the Vault store on a real 3-node OpenBao Raft cluster.

Each "controller" is its own ansible-playbook process with its own empty work directory (no
local store); they share only the cluster. Pebble's log is the judge of what was ordered.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.harness import openbao
from tests.harness.ansible import playbook_command
from tests.harness.layouts import EdgeLayout
from tests.harness.processes import kill_tree
from tests.harness.controller import Controller
from tests.harness.awx import injected_environment

pytestmark = pytest.mark.integration
CLUSTER_PORT = int(os.environ.get("CERTOPS_TEST_BAO_PORT", "14400"))
SEALED_PORT = int(os.environ.get("CERTOPS_TEST_BAO_SEALED_PORT", "14310"))


@pytest.fixture(scope="module")
def bao_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[openbao.BaoCluster]:
    cluster = openbao.start_cluster(tmp_path_factory.mktemp("bao-raft"), port=CLUSTER_PORT)
    yield cluster
    cluster.stop()


def vault_options(cluster: openbao.BaoCluster, prefix: str, **extra: Any) -> dict[str, Any]:
    options = {"store": "vault", "vault_url": cluster.urls, "vault_token": cluster.token,
               "vault_ca_cert": cluster.ca_cert, "vault_prefix": prefix, "vault_timeout": 60}
    options.update(extra)
    return options


def names(count: int) -> list[str]:
    run = uuid.uuid4().hex[:6]
    return [f"s{i}-{run}.shared.test" for i in range(count)]


def shared_playbook(controller: Controller, name: str, certificate_names: list[str], store: dict[str, Any],
                    account: bool = False) -> Path:
    tasks: list[dict[str, Any]] = []
    if account:
        tasks.append({"name": "Account", "certops.acme.account": {"state": "present", "terms_agreed": True},
                      "register": "account"})
    tasks += [
        {"name": "Certificates", "certops.acme.certificate": {
            "certificates": [{"name": n, "domains": [n]} for n in certificate_names]}, "register": "issued"},
        {"ansible.builtin.copy": {"content": "{{ {'issued': issued, 'account': account | default(None)} | to_json }}",
                                  "dest": str(controller.work / f"{name}.json")}, "changed_when": False},
    ]
    playbook = controller.playbook(name, tasks)
    plays = json.loads(playbook.read_text())
    plays[0]["module_defaults"]["group/certops.acme.store"] = store
    playbook.write_text(json.dumps(plays))
    return playbook


def controllers(tmp_path: Path, pebble_server, account, count: int) -> list[Controller]:
    out = []
    for index in range(count):
        work = tmp_path / f"controller{index}"
        work.mkdir(parents=True)
        out.append(Controller(work, pebble_server, account))
    return out


def results(controller: Controller, name: str) -> dict[str, Any]:
    return json.loads((controller.work / f"{name}.json").read_text())


def test_three_controllers_order_each_name_once_and_agree(bao_cluster, pebble_server, account, http01_responder,
                                                          tmp_path):
    everything = names(60)
    prefix = f"certops-acme/three-{uuid.uuid4().hex[:6]}"
    store = vault_options(bao_cluster, prefix)
    trio = controllers(tmp_path, pebble_server, account, 3)
    # Overlapping sets of 40 (0-39, 20-59, 40-59 + 0-19), each listed in another order.
    wanted = [everything[0:40], list(reversed(everything[20:60])), everything[40:60] + everything[0:20]]
    playbooks = [shared_playbook(c, "run", w, store) for c, w in zip(trio, wanted)]
    orders_before = pebble_server.new_orders()
    procs = [c.spawn(p) for c, p in zip(trio, playbooks)]
    outputs = [p.communicate(timeout=500)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(o[-3000:] for o in outputs)

    # 60 names, each needing at least one order: 60 orders in all means exactly one per name.
    assert pebble_server.new_orders() - orders_before == 60
    serials: dict[str, set[str]] = {}
    for controller in trio:
        for certificate in results(controller, "run")["issued"]["certificates"]:
            serials.setdefault(certificate["name"], set()).add(certificate["serial"])
    assert sorted(serials) == sorted(everything)
    assert all(len(s) == 1 for s in serials.values()), {n: s for n, s in serials.items() if len(s) > 1}
    assert sorted(bao_cluster.kv_list(f"{prefix}/certificates")) == sorted(everything)
    # Nothing in a controller's default store (tests/harness/ansible.py gives each run its own).
    assert not any((c.work / "default-store" / "certificates").exists() for c in trio)

    # A fourth controller, fresh and empty: nothing is due, so not one request reaches the CA
    # (the account and the ARI schedule live in the shared store); no secret in -vvvv --diff.
    fresh = controllers(tmp_path / "later", pebble_server, account, 1)[0]
    requests_before = pebble_server.count_log("POST /") + pebble_server.count_log("GET /") + pebble_server.count_log("HEAD /")
    run = fresh.run(shared_playbook(fresh, "again", everything, store, account=True), "-vvvv", "--diff", check=True)
    assert pebble_server.count_log("POST /") + pebble_server.count_log("GET /") + pebble_server.count_log("HEAD /") \
        == requests_before
    again = results(fresh, "again")
    assert again["issued"]["acme_requests"] == {} and {c["action"] for c in again["issued"]["certificates"]} == {"keep"}
    assert again["account"]["known_from_store"] is True
    assert again["issued"]["store"].startswith(f"vault {bao_cluster.urls[0]}")
    assert run.total("changed") == 0
    for secret in (bao_cluster.token, bao_cluster.root_token, "PRIVATE KEY"):
        assert secret not in run.stdout + run.stderr


WAIT_FOR_GO = "import os, sys, time\nwhile not os.path.exists(sys.argv[1]):\n    time.sleep(0.01)"


def test_three_controllers_started_on_one_wave_split_it(bao_cluster, pebble_server, account, http01_responder,
                                                        tmp_path):
    """The same 60 names, in the same order, on three controllers started together: each takes
    what the others have not reached yet and comes back for the rest (lock_waves.py), so each
    issues a share and no name is ordered twice. Before, the first to start issued nearly all."""
    everything = names(60)
    store = vault_options(bao_cluster, f"certops-acme/wave-{uuid.uuid4().hex[:6]}")
    trio = controllers(tmp_path, pebble_server, account, 3)
    playbooks = [shared_playbook(c, "wave", everything, store) for c in trio]
    go = tmp_path / "go"
    for controller, playbook in zip(trio, playbooks):
        # Started together: each waits at the line until all three have started up (ansible's
        # own start-up takes seconds, and varies more than the wave takes).
        plays = json.loads(playbook.read_text())
        plays[0]["tasks"][:0] = [
            {"ansible.builtin.copy": {"content": "", "dest": str(controller.work / "ready")}, "changed_when": False},
            # A tight wait (wait_for polls once a second, which staggers the start by as much).
            {"ansible.builtin.command": {"argv": [sys.executable, "-c", WAIT_FOR_GO, str(go)]}, "changed_when": False}]
        playbook.write_text(json.dumps(plays))
    orders_before = pebble_server.new_orders()
    procs = [c.spawn(p) for c, p in zip(trio, playbooks)]
    deadline = time.monotonic() + 120
    while not all((c.work / "ready").exists() for c in trio) and time.monotonic() < deadline:
        time.sleep(0.05)
    go.write_text("")
    outputs = [p.communicate(timeout=500)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(o[-3000:] for o in outputs)
    assert pebble_server.new_orders() - orders_before == 60
    issued = [sum(1 for c in results(c, "wave")["issued"]["certificates"] if c["action"] == "issue") for c in trio]
    kept = [sum(1 for c in results(c, "wave")["issued"]["certificates"] if c["action"] == "keep") for c in trio]
    print(f"\nthree controllers on one wave of 60: issued {issued}, kept {kept}")
    assert sum(issued) == 60 and [i + k for i, k in zip(issued, kept)] == [60, 60, 60]
    # Each start still varies by a few hundred milliseconds: no exact thirds, but no controller
    # takes (nearly) the whole wave, as the first to start did before.
    assert max(issued) <= 45 and sum(1 for i in issued if i > 0) >= 2, f"the wave was not split: {issued}"


def test_a_batch_survives_the_raft_leader_being_killed(bao_cluster, pebble_server, account, http01_responder,
                                                       tmp_path):
    batch = names(30)
    prefix = f"certops-acme/leader-{uuid.uuid4().hex[:6]}"
    controller = controllers(tmp_path, pebble_server, account, 1)[0]
    playbook = shared_playbook(controller, "run", batch, vault_options(bao_cluster, prefix))
    orders_before = pebble_server.new_orders()
    proc = controller.spawn(playbook)
    leader = bao_cluster.leader()
    # Kill it once the batch is under way: its locks are taken and the first certificates stored.
    deadline = time.monotonic() + 120
    while not bao_cluster.kv_list(f"{prefix}/certificates"):
        assert proc.poll() is None and time.monotonic() < deadline, "the batch ended before the leader was killed"
        time.sleep(0.05)
    bao_cluster.kill_node(leader)
    try:
        output = proc.communicate(timeout=300)[0]
        assert proc.returncode == 0, output[-4000:]
        assert bao_cluster.leader() is not leader
        assert sorted(bao_cluster.kv_list(f"{prefix}/certificates")) == sorted(batch)
        assert pebble_server.new_orders() - orders_before == 30
        rerun = controller.run(playbook, check=True)
        assert rerun.total("changed") == 0 and pebble_server.new_orders() - orders_before == 30
        assert {c["action"] for c in results(controller, "run")["issued"]["certificates"]} == {"keep"}
    finally:
        bao_cluster.restart_node(leader)


def test_a_store_that_cannot_be_written_orders_nothing(bao_cluster, pebble_server, account, http01_responder,
                                                       tmp_path):
    """A token without write permission, an unreachable cluster, a sealed server: each fails
    naming the store, and Pebble receives no order."""
    read_only_policy = openbao.POLICY_FILE.read_text().replace('["create", "read", "update"]', '["read"]')
    bao_cluster.api("PUT", "sys/policies/acl/certops-read-only", {"policy": read_only_policy}, node=bao_cluster.leader())
    controller = controllers(tmp_path, pebble_server, account, 1)[0]
    sealed = openbao.start_dev(tmp_path / "sealed", port=SEALED_PORT)
    try:
        sealed.api("PUT", "sys/seal")
        cases = {
            "read-only": (vault_options(bao_cluster, "certops-acme/ro",
                                        vault_token=bao_cluster.make_token(["certops-read-only"])),
                          r"permission denied to write certops-acme/ro/(owners|locks)/"),
            "unreachable": (vault_options(bao_cluster, "certops-acme/x", vault_url=["https://127.0.0.1:9"],
                                          vault_timeout=3), r"https://127\.0\.0\.1:9 is unreachable"),
            "sealed": ({"store": "vault", "vault_url": sealed.urls, "vault_token": sealed.root_token,
                        "vault_timeout": 3}, r"is sealed"),
        }
        for case, (store, message) in cases.items():
            orders_before = pebble_server.new_orders()
            run = controller.run(shared_playbook(controller, case, names(2), store))
            assert run.returncode != 0, case
            assert "store vault " in run.stdout and re.search(message, run.stdout), (case, run.stdout[-3000:])
            assert pebble_server.new_orders() == orders_before, f"{case}: ordered what could not be stored"
    finally:
        sealed.stop()


def test_the_store_options_come_from_the_vault_environment(bao_cluster, pebble_server, account, http01_responder,
                                                           tmp_path):
    """AWX's HashiCorp Vault credential (and a shell after `bao login`) set VAULT_ADDR and
    VAULT_TOKEN: with CERTOPS_ACME_STORE_BACKEND=vault nothing about the store is in the play."""
    controller = controllers(tmp_path, pebble_server, account, 1)[0]
    batch = names(2)
    playbook = shared_playbook(controller, "env", batch, {"vault_prefix": "certops-acme/env"})
    # Exactly what AWX injects for a credential of the shipped type (docs/awx/credential-types/).
    env = injected_environment("vault-store.yml", {
        "url": ",".join(bao_cluster.urls), "token": bao_cluster.token,
        "ca_cert": Path(bao_cluster.ca_cert).read_text()}, files_dir=tmp_path)
    assert env["CERTOPS_ACME_STORE_BACKEND"] == "vault"
    controller.run(playbook, env=env, check=True)
    assert sorted(bao_cluster.kv_list("certops-acme/env/certificates")) == sorted(batch)


def test_the_edge_role_keeps_its_certificates_in_the_shared_store(bao_cluster, pebble_server, account, controller,
                                                                  tmp_path):
    """certops_edge_store: the role orders into the cluster, serves what it stored, keeps nothing
    on the controller's disk, and a rerun orders nothing; the summary names the store."""
    prefix = f"certops-acme/edge-{uuid.uuid4().hex[:6]}"
    site_names = [f"{n}-{uuid.uuid4().hex[:4]}.vault.edge.test" for n in ("shop", "blog")]
    edge = EdgeLayout(controller, pebble_server, account, "haproxy", ["127.0.0.41"], site_names)
    try:
        edge.write(certops_edge_store=vault_options(bao_cluster, prefix))
        orders_before = pebble_server.new_orders()
        first = edge.run()
        assert pebble_server.new_orders() - orders_before == 2
        assert sorted(bao_cluster.kv_list(f"{prefix}/certificates")) == sorted(site_names)
        for name in site_names:
            stored = bao_cluster.kv_read(f"{prefix}/certificates/{name}")["data"]
            assert edge.serial("127.0.0.41", name) == stored["meta"]["serial"]
        assert not (controller.work / "store").exists(), "the file store was used beside the shared one"
        assert "store: vault " in first.stdout
        again = edge.run()
        assert again.total("changed") == 0 and pebble_server.new_orders() - orders_before == 2
    finally:
        edge.stop()


def test_a_controller_killed_holding_locks_is_taken_over_after_its_lease(bao_cluster, pebble_server, account,
                                                                         http01_responder, tmp_path):
    """SIGKILL a whole ansible-playbook (workers too) while it holds its batch's locks and its
    orders are open: another controller waits for the lease to run out, orders nothing before,
    then takes every certificate over and finishes the dead run's own orders (one order per
    certificate, issued for the taker's keys)."""
    lease = 9
    batch = names(12)
    prefix = f"certops-acme/killed-{uuid.uuid4().hex[:6]}"
    store = vault_options(bao_cluster, prefix, vault_lock_lease=lease)
    first, second = controllers(tmp_path, pebble_server, account, 2)
    # The doomed run answers dns-01 through a hook that never returns: it is certain to be
    # holding its locks, with nothing stored, when it dies, however loaded the machine is.
    stuck, reached = tmp_path / "stuck-hook", tmp_path / "hook-reached"
    stuck.write_text(f"#!/bin/sh\ntouch {reached}\nexec sleep 600\n")
    stuck.chmod(0o755)
    doomed_playbook = shared_playbook(first, "run", batch, store)
    plays = json.loads(doomed_playbook.read_text())
    plays[0]["tasks"][0]["certops.acme.certificate"].update(
        certificates=[{"name": n, "domains": [n], "challenge": "dns-01"} for n in batch],
        dns_provider="hook", dns_hook=str(stuck))
    doomed_playbook.write_text(json.dumps(plays))
    command, env = playbook_command(doomed_playbook, first.inventory, first.work)
    doomed = subprocess.Popen(command, env=env, cwd=first.work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not reached.exists():
        assert doomed.poll() is None and time.monotonic() < deadline, "the batch never reached its hook"
        time.sleep(0.05)
    assert len(bao_cluster.kv_list(f"{prefix}/locks")) == len(batch)
    # Orders are noted on their locks before any challenge is deployed. CI twice found one or
    # two of the 12 without a note (not reproduced here, also under load; an order whose opening
    # failed in the doomed run has none): those get a new order from the taker, counted below.
    noted = {name: (bao_cluster.kv_read(f"{prefix}/locks/{name}") or {}).get("data", {}).get("order", {}).get("url")
             for name in batch}
    noted = {name: url for name, url in noted.items() if url}
    assert noted and len(set(noted.values())) == len(noted), noted
    kill_tree(doomed.pid)
    doomed.wait()
    killed_at = time.monotonic()
    # newOrders the dead run had already sent still land in Pebble's log: count from when it is quiet.
    orders_at_kill = pebble_server.new_orders()
    while True:
        time.sleep(0.5)
        if pebble_server.new_orders() == orders_at_kill:
            break
        orders_at_kill = pebble_server.new_orders()

    taker = second.spawn(shared_playbook(second, "run", batch, store))
    # The dead run's lease was renewed a third of a lease before it died at the latest.
    time.sleep(max(0.0, killed_at + lease / 2 - time.monotonic()))
    assert pebble_server.new_orders() == orders_at_kill, "ordered before the dead controller's lease ran out"
    output = taker.communicate(timeout=300)[0]
    assert taker.returncode == 0, output[-3000:]
    assert time.monotonic() - killed_at >= lease / 2
    issued = results(second, "run")["issued"]["certificates"]
    assert {c["action"] for c in issued} == {"issue"} and len({c["serial"] for c in issued}) == len(batch)
    assert sorted(bao_cluster.kv_list(f"{prefix}/certificates")) == sorted(batch)
    assert bao_cluster.kv_list(f"{prefix}/locks") == [], "the taker left locks behind"
    # The taker opened an order only where none was noted: each other certificate comes from the
    # order the dead run had opened for it (the dead run answered nothing; the taker answered
    # http-01 on them).
    assert pebble_server.new_orders() - orders_at_kill == len(batch) - len(noted), \
        "the taker opened new orders instead of resuming"
    stored_from = {name: bao_cluster.kv_read(f"{prefix}/certificates/{name}")["data"]["meta"]["order_url"]
                   for name in noted}
    assert stored_from == noted


def test_the_account_key_can_live_in_the_shared_store(bao_cluster, pebble_server, account, http01_responder,
                                                      tmp_path):
    """A fresh controller with nothing but the Vault credential (as AWX injects it) creates the
    account key in the store once; a second fresh controller orders with the same account,
    and no key file is ever written on either."""
    prefix = f"certops-acme/key-{uuid.uuid4().hex[:6]}"
    env = injected_environment("vault-store.yml", {
        "url": ",".join(bao_cluster.urls), "token": bao_cluster.token, "prefix": prefix,
        "ca_cert": Path(bao_cluster.ca_cert).read_text(), "account_key_in_store": True}, files_dir=tmp_path)
    env["CHALLTESTSRV_URL"] = pebble_server.dns_management_url
    hook = tmp_path / "challtestsrv-hook"
    hook.write_text(f'#!/bin/sh\nexec {sys.executable} {openbao.REPO / "tests" / "harness" / "challtestsrv_hook.py"} "$@"\n')
    hook.chmod(0o755)
    outcomes = []
    for index, controller in enumerate(controllers(tmp_path, pebble_server, account, 2)):
        name = names(1)[0]
        play = [{"hosts": "localhost", "gather_facts": False,
                 "module_defaults": {"group/certops.acme.acme": {"acme_directory": pebble_server.directory_url,
                                                                 "ca_path": pebble_server.ca_cert}},
                 "tasks": [
                     {"certops.acme.account": {"account_key_create": True, "terms_agreed": True}, "register": "acct"},
                     # dns-01 through Pebble's DNS: the stateless http-01 responder answers for the
                     # session's account key, and this account key is a new one.
                     {"certops.acme.certificate": {
                         "certificates": [{"name": name, "domains": [name], "challenge": "dns-01"}],
                         "dns_provider": "hook", "dns_hook": str(hook),
                         "dns_check_servers": [f"127.0.0.1:{pebble_server.ports.dns}"]}, "register": "issued"},
                     {"ansible.builtin.copy": {"content": "{{ {'acct': acct, 'issued': issued} | to_json }}",
                                               "dest": str(controller.work / "out.json")}}]}]
        playbook = controller.work / f"key{index}.yml"
        playbook.write_text(json.dumps(play))
        run = controller.run(playbook, "-vvvv", env=env, check=True)
        assert "PRIVATE KEY" not in run.stdout + run.stderr
        outcomes.append(json.loads((controller.work / "out.json").read_text()))
        assert list(controller.work.rglob("*.key")) == [], "an account key was written on the controller"
    first, second = outcomes
    assert first["acct"]["changed"] is True and second["acct"]["changed"] is False
    assert first["acct"]["thumbprint"] == second["acct"]["thumbprint"]
    assert first["acct"]["account_url"] == second["acct"]["account_url"]
    assert [c["action"] for c in first["issued"]["certificates"] + second["issued"]["certificates"]] == ["issue"] * 2
    assert bao_cluster.kv_read(f"{prefix}/account-keys/default")["data"]["pem"].startswith("-----BEGIN")
