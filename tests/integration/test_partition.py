"""Partitions of the shared store: a controller cut off from it, and a store node cut off from
the others. Neither issues twice, loses a write or overwrites a record.

The three OpenBao nodes run in a network namespace this test makes, reached over two veth
pairs (tests/harness/netns.py): one for the controller that will be cut off, one for the
controller that takes over. Taking the first pair's far end down drops that controller's
packets, and only its: a real partition, healed later. Each controller is its own
ansible-playbook process; Pebble's log judges how many orders were finalized.

In the second test each OpenBao node runs in a namespace of its own, all of them and the test's
own namespace plugged into one bridge (netns.Switch); the Raft leader's port is taken down in
the middle of a batch and brought back after it.

The tests change network interfaces, so it runs only in a network namespace made for the test
run (netns.in_private_namespace: scripts/test.sh's Python 3.13 leg); elsewhere it skips.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest

from tests.harness import openbao
from tests.harness.netns import PRIVATE_NETNS_ENV, Namespace, Switch, VethLink, in_private_namespace
from tests.harness.relay import wait_until
from tests.harness.controller import Controller

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not in_private_namespace(), reason=f"makes network namespaces and veth pairs: runs only in "
                       f"a network namespace made for the test run ({PRIVATE_NETNS_ENV}=1, as scripts/test.sh's "
                       "Python 3.13 leg), never in the machine's own"),
]
PORT = int(os.environ.get("CERTOPS_TEST_BAO_PARTITION_PORT", "14500"))
HOOK = openbao.REPO / "tests" / "harness" / "challtestsrv_hook.py"


@pytest.fixture(scope="module")
def partitioned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[openbao.BaoCluster, VethLink, VethLink]]:
    """The cluster, the path of the controller that stays connected, the path to be cut."""
    namespace = Namespace()
    links: list[VethLink] = []
    cluster: Optional[openbao.BaoCluster] = None
    try:
        links = [VethLink(namespace, "198.18.1", (11, 12, 13)), VethLink(namespace, "198.18.2", (11, 12, 13))]
        cluster = openbao.start_cluster(tmp_path_factory.mktemp("bao-partition"), port=PORT,
                                        addresses=links[0].far_addresses, also_on=links[1].far_addresses,
                                        command_prefix=namespace.enter)
        yield cluster, links[0], links[1]
    finally:
        if cluster is not None:
            cluster.stop()
        for link in links:
            link.close()
        namespace.close()


def store_options(cluster: openbao.BaoCluster, path: Optional[VethLink], prefix: str, lease: Optional[int],
                  timeout: Optional[int]) -> dict[str, Any]:
    """The store options of a controller that reaches the nodes over ``path`` (None: their own addresses)."""
    urls = [node.url_on(a) for node, a in zip(cluster.nodes, path.far_addresses)] if path else cluster.urls
    options: dict[str, Any] = {
        "store": "vault", "vault_url": urls,
        "vault_token": cluster.token, "vault_ca_cert": cluster.ca_cert, "vault_prefix": prefix}
    if lease is not None:
        options["vault_lock_lease"] = lease
    if timeout is not None:
        options["vault_timeout"] = timeout
    return options


def certificate_play(controller: Controller, name: str, certificate: dict[str, Any], store: dict[str, Any]) -> Path:
    """One certificate task over the whole batch; its result is written even when it fails."""
    playbook = controller.playbook(name, [
        {"name": "Certificates", "certops.acme.certificate": certificate, "register": "issued",
         "ignore_errors": True},
        {"ansible.builtin.copy": {"content": "{{ issued | to_json }}", "dest": str(controller.work / f"{name}.json")},
         "changed_when": False},
        {"ansible.builtin.fail": {"msg": "the certificate task failed"}, "when": "issued is failed"},
    ])
    plays = json.loads(playbook.read_text())
    plays[0]["module_defaults"]["group/certops.acme.store"] = store
    playbook.write_text(json.dumps(plays))
    return playbook


@pytest.mark.parametrize("lease,timeout", [(8, 5), (None, None)], ids=["short-lease", "default-lease-and-timeout"])
def test_a_controller_cut_off_past_its_lease_finalizes_nothing_and_overwrites_nothing(
        partitioned, pebble_server, account, http01_responder, tmp_path, lease, timeout):
    cluster, connected, cut_path = partitioned
    prefix = f"certops-acme/partition-{uuid.uuid4().hex[:6]}"
    run = uuid.uuid4().hex[:6]
    names = [f"p{i}-{run}.partition.test" for i in range(20)]
    for work in ("cut-off", "taker"):
        (tmp_path / work).mkdir()
    cut_off = Controller(tmp_path / "cut-off", pebble_server, account)
    taker = Controller(tmp_path / "taker", pebble_server, account)

    # The controller to be cut off answers dns-01 through a hook that waits for the test: it is
    # certain to hold its 20 locks with its 20 orders open when the cut comes.
    reached, go = tmp_path / "hook-reached", tmp_path / "hook-go"
    hook = tmp_path / "held-hook"
    hook.write_text(f"#!/bin/sh\ntouch {reached}\nwhile [ ! -e {go} ]; do sleep 0.1; done\n"
                    f"CHALLTESTSRV_URL={pebble_server.dns_management_url} exec {sys.executable} {HOOK} \"$@\"\n")
    hook.chmod(0o755)
    cut_off_play = certificate_play(cut_off, "run", {
        "certificates": [{"name": n, "domains": [n], "challenge": "dns-01"} for n in names],
        "dns_provider": "hook", "dns_hook": str(hook),
        "dns_check_servers": [f"127.0.0.1:{pebble_server.ports.dns}"],
        "dns_resolvers": [f"127.0.0.1:{pebble_server.ports.dns}"]},
        store_options(cluster, cut_path, prefix, lease, timeout))
    taker_play = certificate_play(taker, "run", {"certificates": [{"name": n, "domains": [n]} for n in names]},
                                  store_options(cluster, connected, prefix, lease, timeout))

    orders_before, issued_before = pebble_server.new_orders(), len(pebble_server.issued_serials())
    first = cut_off.spawn(cut_off_play)
    second: Optional["subprocess.Popen[str]"] = None
    try:
        wait_until(lambda: reached.exists() or first.poll() is not None, 120, "the first controller's hook")
        assert first.poll() is None, first.communicate()[0][-3000:]
        assert len(cluster.kv_list(f"{prefix}/locks")) == 20
        cut_path.cut()
        cut_at = time.monotonic()
        second = taker.spawn(taker_play)
        taker_output = second.communicate(timeout=400)[0]
        assert second.returncode == 0, taker_output[-4000:]
        assert time.monotonic() - cut_at >= (lease or 60) / 2, "the taker did not wait for the lease"
    finally:
        cut_path.heal()
        go.touch()
    cut_off_output = first.communicate(timeout=400)[0]

    taken = json.loads((taker.work / "run.json").read_text())["certificates"]
    lost = json.loads((cut_off.work / "run.json").read_text())["certificates"]
    assert {c["action"] for c in taken} == {"issue"} and len(taken) == 20
    # The cut-off run reports the truth: every certificate failed because its lock was lost,
    # and the run fails.
    assert first.returncode != 0, cut_off_output[-3000:]
    assert [(c["action"], c["lock_lost"]) for c in lost] == [("failed", True)] * 20, [c["error"] for c in lost]
    assert "lost their store lock" in cut_off_output
    # The CA: 20 orders, each opened by the cut-off run and finished by the taker (the orders
    # were noted on their locks: order_resume.py); 20 certificates issued, each the taker's.
    assert pebble_server.new_orders() - orders_before == 20
    issued = {int(serial, 16) for serial in pebble_server.issued_serials()[issued_before:]}
    assert issued == {int(c["serial"], 16) for c in taken}, "the CA issued certificates the taker did not store"
    # The store: each name written once, by the taker, and no lock left behind.
    for certificate in taken:
        record = cluster.kv_read(f"{prefix}/certificates/{certificate['name']}")
        assert record["data"]["meta"]["serial"] == certificate["serial"]
        assert record["metadata"]["version"] == 1, f"{certificate['name']} was written again after the taker stored it"
    assert cluster.kv_list(f"{prefix}/locks") == []


SWITCHED_PORT = int(os.environ.get("CERTOPS_TEST_BAO_SWITCHED_PORT", "14520"))


@pytest.fixture(scope="module")
def switched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[openbao.BaoCluster, Switch]]:
    """Three nodes, each in a namespace of its own, and this test's namespace, on one bridge."""
    switch = Switch("198.18.3")
    namespaces: list[Namespace] = []
    cluster: Optional[openbao.BaoCluster] = None
    try:
        switch.plug(None, 1)
        namespaces = [Namespace() for _ignored in range(3)]
        addresses = tuple(switch.plug(namespace, 11 + i) for i, namespace in enumerate(namespaces))
        switch.pin_neighbours()
        cluster = openbao.start_cluster(tmp_path_factory.mktemp("bao-switched"), port=SWITCHED_PORT,
                                        addresses=addresses, node_prefixes=tuple(n.enter for n in namespaces))
        yield cluster, switch
    finally:
        if cluster is not None:
            cluster.stop()
        for namespace in namespaces:
            namespace.close()
        switch.close()


def test_a_store_node_cut_off_mid_batch_loses_no_write_and_orders_each_name_once(
        switched, pebble_server, account, http01_responder, tmp_path):
    """The Raft leader is partitioned from the other nodes and from the controller while a batch
    of 30 stores its certificates: the two others elect a leader, the controller's requests to the
    silent node time out and go to the next, and the batch completes within vault_timeout: 30
    orders, 30 certificates, each stored once, no lock left."""
    cluster, switch = switched
    timeout = 30
    prefix = f"certops-acme/node-cut-{uuid.uuid4().hex[:6]}"
    run = uuid.uuid4().hex[:6]
    names = [f"n{i}-{run}.node-cut.test" for i in range(30)]
    controller = Controller(tmp_path, pebble_server, account)
    leader = cluster.leader()
    store = store_options(cluster, None, prefix, None, timeout)
    play = certificate_play(controller, "run", {"certificates": [{"name": n, "domains": [n]} for n in names],
                                                "workers": 2}, store)
    orders_before, issued_before = pebble_server.new_orders(), len(pebble_server.issued_serials())
    batch = controller.spawn(play)
    try:
        wait_until(lambda: len(cluster.kv_list(f"{prefix}/certificates")) >= 5 or batch.poll() is not None, 180,
                   "the first certificates stored")
        assert batch.poll() is None, "the batch ended before the cut"
        switch.cut(leader.address)
        cut_at = time.monotonic()
        output = batch.communicate(timeout=400)[0]
        finished_after = time.monotonic() - cut_at
    finally:
        switch.heal(leader.address)
    assert batch.returncode == 0, output[-4000:]
    stored = json.loads((controller.work / "run.json").read_text())["certificates"]
    assert sorted(c["name"] for c in stored) == sorted(names) and {c["action"] for c in stored} == {"issue"}
    # The CA: one order and one certificate per name, and each certificate is the one stored.
    assert pebble_server.new_orders() - orders_before == len(names)
    issued = {int(serial, 16) for serial in pebble_server.issued_serials()[issued_before:]}
    assert issued == {int(c["serial"], 16) for c in stored}
    # The store, read once the cut node is back as a follower: every name once, no lock left.
    wait_until(lambda: cluster.leader().node_id != leader.node_id, 60, "a leader other than the cut node")
    for certificate in stored:
        record = cluster.kv_read(f"{prefix}/certificates/{certificate['name']}")
        assert record["data"]["meta"]["serial"] == certificate["serial"]
        assert record["metadata"]["version"] == 1, f"{certificate['name']} was written twice"
    assert cluster.kv_list(f"{prefix}/locks") == []
    print(f"batch finished {finished_after:.1f} s after the leader was cut off")
