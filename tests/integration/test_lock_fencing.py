"""Fencing for the shared store: a run that lost its lock never finalizes, never stores.

Real OpenBao (a ``-dev`` server) and a real Pebble. The run that loses its lock is an engine
object inside this test process, so it reaches the store through a relay the test cuts
(tests/harness/relay.py: bytes are held until the cut heals, as a partition that drops packets
does, and then delivered late). A whole ansible-playbook controller cut off from a Raft
cluster by a real network partition is in test_partition.py.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Iterator

import pytest

from tests.harness import openbao
from tests.harness.relay import Relay, wait_until

from ansible_collections.certops.acme.plugins.module_utils._acme.ca.account import load_account_key
from ansible_collections.certops.acme.plugins.module_utils._acme.batch import BatchSettings, CertificateBatch
from ansible_collections.certops.acme.plugins.module_utils._acme.errors import LockLost
from ansible_collections.certops.acme.plugins.module_utils._acme.spec import parse_specs
from ansible_collections.certops.acme.plugins.module_utils._acme.ca.transport import AcmeTransport
from ansible_collections.certops.acme.plugins.module_utils._acme.store.vault import VaultStore

pytestmark = pytest.mark.integration


@pytest.fixture
def relay(bao_dev: openbao.BaoCluster) -> Iterator[Relay]:
    node = bao_dev.nodes[0]
    opened = Relay((node.address, node.port))
    yield opened
    opened.close()


@pytest.fixture
def stores(bao_dev: openbao.BaoCluster) -> Iterator[Any]:
    """A factory of Vault stores under one fresh prefix, closed after the test."""
    prefix = f"certops-acme/fence-{uuid.uuid4().hex[:8]}"
    opened: list[VaultStore] = []

    def make(url: str, **extra: Any) -> VaultStore:
        store = VaultStore([url], token=bao_dev.token, mount=bao_dev.mount, prefix=prefix, **extra)
        opened.append(store)
        return store
    make.prefix = prefix  # type: ignore[attr-defined]
    yield make
    for store in opened:
        store.close()


def take_over(store: VaultStore, name: str, within: float) -> Any:
    """Try the lock until the holder's lease has run out and it is ours."""
    deadline = time.monotonic() + within
    while True:
        lock = store.try_acquire(name)
        if lock is not None:
            return lock
        assert time.monotonic() < deadline, f"{name}: not taken over within {within:.0f} s"
        time.sleep(0.1)


def test_a_lock_taken_over_during_a_cut_is_lost_and_its_release_leaves_the_taker_alone(bao_dev, relay, stores):
    lease = 2.0
    cut_off, taker = stores(relay.url, lock_lease=lease), stores(bao_dev.urls[0], lock_lease=lease)
    lock = cut_off.acquire("www")
    lock.confirm("finalizing its order")  # held, and provably so

    relay.cut()
    taken = take_over(taker, "www", within=4 * lease)
    relay.heal()  # the cut-off run's late renewal now reaches the store: it must not count
    wait_until(lambda: lock.lost, 3 * lease, "the cut-off run noticing that its lease lapsed")
    with pytest.raises(LockLost, match="lapsed"):
        lock.confirm("finalizing its order")
    with pytest.raises(LockLost, match="lapsed"):
        lock.confirm_lease("storing its certificate")

    lock.release()
    record = bao_dev.kv_read(f"{stores.prefix}/locks/www")
    assert record is not None and record["data"]["owner"] == taker.owner, "the lost lock's release deleted the taker's"
    taken.confirm("finalizing its order")
    taken.release()
    assert bao_dev.kv_read(f"{stores.prefix}/locks/www") is None


def test_a_renewal_slower_than_the_lease_marks_the_lease_lapsed(bao_dev, relay, stores):
    """A store that still answers, but only after the lease is over: the renewal that finally
    lands proves nothing about the time between, so the lease is lapsed for good."""
    lease = 2.0
    store = stores(relay.url, lock_lease=lease, timeout=30)
    lock = store.acquire("www")
    relay.delay = 1.5 * lease
    wait_until(lambda: lock.lost, 4 * lease, "the lease marked lapsed")
    relay.delay = 0.0
    time.sleep(lease)  # answers are quick again: the lease stays lapsed
    assert lock.lost
    with pytest.raises(LockLost, match="lapsed"):
        lock.confirm("finalizing its order")


def test_a_malformed_owner_record_counts_as_expired(bao_dev, stores):
    """A lock whose owner record another writer damaged is taken over, not an error that stops
    every batch touching it."""
    store = stores(bao_dev.urls[0])
    for expires in ("tomorrow", [1, 2], None):
        name = f"damaged-{uuid.uuid4().hex[:6]}"
        bao_dev.api("POST", f"{bao_dev.mount}/data/{stores.prefix}/owners/ghost-{name}",
                    {"data": {"expires": expires}})
        bao_dev.api("POST", f"{bao_dev.mount}/data/{stores.prefix}/locks/{name}", {"data": {"owner": f"ghost-{name}"}})
        lock = store.try_acquire(name)
        assert lock is not None, f"expires={expires!r} blocked the lock"
        lock.release()


def test_a_run_whose_lease_lapsed_while_cut_off_neither_finalizes_nor_overwrites(
        bao_dev, relay, stores, pebble_server, account, http01_responder):
    """The case from the field: orders open, the run is cut off from the store for longer than
    its lease, another run takes the locks over, orders and stores; the cut heals. The cut-off
    run must not finalize (the CA would issue twice) nor store over the taker's certificates."""
    lease = 3.0
    cut_off = stores(relay.url, lock_lease=lease, timeout=10)
    taker = stores(bao_dev.urls[0], lock_lease=lease, timeout=10)
    run = uuid.uuid4().hex[:6]
    names = [f"f{i}-{run}.fence.test" for i in range(3)]
    specs, failures = parse_specs([{"name": n, "domains": [n]} for n in names])
    assert not failures
    key, _ignored = load_account_key(account["key_path"], None, None)

    def transport() -> AcmeTransport:
        return AcmeTransport(pebble_server.directory_url, verify=pebble_server.ca_cert)
    taken: dict[str, Any] = {}

    def cut_once_every_order_is_open(phase: str, done: int, total: int) -> None:
        if phase != "ordering" or done != total:
            return
        relay.cut()
        # The taker waits for the cut-off run's lease to run out, then orders and stores all.
        taken["results"] = CertificateBatch(taker, BatchSettings(deadline_seconds=120, lock_timeout=60),
                                            transport, key).run(specs)
        relay.heal()

    issued_before = len(pebble_server.issued_serials())
    # Every order opened before any is finalized (one_by_one off), as a dns-01 batch runs: the
    # cut comes between the two phases.
    results = CertificateBatch(cut_off, BatchSettings(deadline_seconds=120, progress=cut_once_every_order_is_open,
                                                      one_by_one=False), transport, key).run(specs)

    assert [r.action for r in taken["results"]] == ["issue"] * 3
    assert [(r.action, r.lock_lost) for r in results] == [("failed", True)] * 3, [r.error for r in results]
    assert all("lease" in (r.error or "") for r in results), [r.error for r in results]
    issued = {int(serial, 16) for serial in pebble_server.issued_serials()[issued_before:]}
    assert issued == {int(r.stored.facts.serial, 16) for r in taken["results"]}, "the cut-off run had one issued too"
    for result in taken["results"]:
        stored = bao_dev.kv_read(f"{stores.prefix}/certificates/{result.name}")
        assert stored["data"]["meta"]["serial"] == result.stored.facts.serial
        assert stored["metadata"]["version"] == 1, "the certificate was written again after the taker stored it"


def test_controllers_taking_over_one_expired_lock_at_once_exactly_one_wins(bao_dev, stores):
    """The dead owner's lease has run out; four controllers try the lock in the same instant: KV's
    check-and-set lets exactly one take it over, the others find it held."""
    import threading
    # A dead controller's records: its lock on www, and its lease, which ran out a minute ago.
    bao_dev.api("POST", f"{bao_dev.mount}/data/{stores.prefix}/owners/dead-one", {"data": {"expires": time.time() - 60}})
    bao_dev.api("POST", f"{bao_dev.mount}/data/{stores.prefix}/locks/www", {"data": {"owner": "dead-one"}})
    contenders = [stores(bao_dev.urls[0], lock_lease=10.0) for _contender in range(4)]
    start = threading.Barrier(len(contenders))
    won: list[Any] = [None] * len(contenders)

    def contend(index: int) -> None:
        start.wait()
        won[index] = contenders[index].try_acquire("www")
    threads = [threading.Thread(target=contend, args=(i,)) for i in range(len(contenders))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(lock is not None for lock in won) == 1, won
    [winner] = [c for c, lock in zip(contenders, won) if lock is not None]
    assert bao_dev.kv_read(f"{stores.prefix}/locks/www")["data"]["owner"] == winner.owner
