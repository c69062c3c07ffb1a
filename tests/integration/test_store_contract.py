"""One contract, two backends: the file store and the Vault store (a real OpenBao ``-dev`` server).

Every test here runs against both; what the engine relies on (the docstring of _acme/store/__init__.py) must
hold for each. The Raft cluster tests (test_shared_store.py) cover what only a cluster can.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.harness import openbao
from tests.harness.certs import make_ca, make_chain, make_leaf

from ansible_collections.certops.acme.plugins.module_utils._acme.errors import DamagedCertificate, LockLost, StoreError
from ansible_collections.certops.acme.plugins.module_utils._acme.orders import order_from_record
from ansible_collections.certops.acme.plugins.module_utils._acme.store import CertificateStore, Fence, VersionData
from ansible_collections.certops.acme.plugins.module_utils._acme.store.files import FileStore
from ansible_collections.certops.acme.plugins.module_utils._acme.store.record_checks import MAX_FIELD_BYTES
from ansible_collections.certops.acme.plugins.module_utils._acme.store.vault import VaultStore


ROOT = make_ca("Contract Root")

pytestmark = pytest.mark.integration


def vault_store(server: openbao.BaoCluster, prefix: str, **extra: Any) -> VaultStore:
    return VaultStore(server.urls, token=server.token, mount=server.mount, prefix=prefix, **extra)


@pytest.fixture(params=["file", "vault"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A factory: every call opens the same store again (another controller, or a later run)."""
    opened: list[CertificateStore] = []
    prefix = f"certops-acme/contract-{uuid.uuid4().hex[:8]}"

    def make(**extra: Any) -> CertificateStore:
        if request.param == "file":
            store: CertificateStore = FileStore(str(tmp_path / "store"))
        else:
            store = vault_store(request.getfixturevalue("bao_dev"), prefix, **extra)
        opened.append(store)
        return store
    yield make
    for store in opened:
        store.close()


def test_a_saved_certificate_loads_whole_and_a_new_version_replaces_it(make_store):
    store = make_store()
    key_pem, leaf, chain = make_chain(root=ROOT)
    first = store.save("www", key_pem, leaf, chain, {"order_url": "https://ca/order/1"})
    loaded = make_store().load("www")
    assert loaded is not None and loaded.version == first.version
    assert (loaded.key_pem, loaded.cert_pem, loaded.chain_pem) == (first.key_pem, first.cert_pem, first.chain_pem)
    assert loaded.meta["serial"] == first.facts.serial and loaded.meta["order_url"] == "https://ca/order/1"
    assert store.names() == ["www"] and store.load("api") is None

    key2, leaf2, chain2 = make_chain(root=ROOT, days_left=80)
    second = store.save("www", key2, leaf2, chain2, {})
    again = store.load("www")
    assert again is not None and again.version == second.version != first.version
    assert again.key_pem == key2 and again.facts.serial == second.facts.serial


def test_a_fenced_save_never_replaces_what_another_writer_stored_after_the_fence(make_store):
    """The save of a run that lost its lock carries the version it read when it took the lock:
    if another run stored one since, nothing is written and LockLost says why."""
    mine, theirs = make_store(), make_store()
    key_pem, leaf, chain = make_chain(root=ROOT)
    their_version = theirs.save("www", key_pem, leaf, chain, {"order_url": "https://ca/order/theirs"})
    key2, leaf2, chain2 = make_chain(root=ROOT)
    with pytest.raises(LockLost, match=r"'www' was stored by another run after this run took its lock \(no "):
        mine.save("www", key2, leaf2, chain2, {"order_url": "https://ca/order/mine"}, fence=Fence(None))
    current = make_store().load("www")
    assert current is not None and current.version == their_version.version
    assert current.meta["order_url"] == "https://ca/order/theirs"

    # Fenced on the version that is current, it lands; then the old fence is stale in turn.
    newer = mine.save("www", key2, leaf2, chain2, {}, fence=Fence(their_version.version))
    assert make_store().load("www").version == newer.version
    with pytest.raises(LockLost, match=f"version {their_version.version} then, version {newer.version} now"):
        theirs.save("www", key_pem, leaf, chain, {}, fence=Fence(their_version.version))
    assert make_store().load("www").version == newer.version


def pem_of(cert) -> str:
    from cryptography.hazmat.primitives import serialization
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


DAMAGES = {
    "a key that does not fit": ("its key does not fit its certificate",
                                lambda v, other: VersionData(other[0], v.cert_pem, v.chain_pem, v.meta, "damaged")),
    "a chain from another CA": ("its chain does not link",
                                lambda v, other: VersionData(v.key_pem, v.cert_pem, "".join(pem_of(c) for c in other[2]),
                                                             v.meta, "damaged")),
    "non-ASCII bytes in the certificate": (
        "(is not ASCII text|does not decode)",
        lambda v, other: VersionData(v.key_pem, v.cert_pem.replace("MII", "MIé", 1), v.chain_pem, v.meta, "damaged")),
    "a huge chain": (f"more than {MAX_FIELD_BYTES}",
                     lambda v, other: VersionData(v.key_pem, v.cert_pem, v.chain_pem + "A" * MAX_FIELD_BYTES, v.meta,
                                                  "damaged")),
    "two leaves in the certificate field": (
        "holds 2 certificates, not one",
        lambda v, other: VersionData(v.key_pem, v.cert_pem + pem_of(other[1]), v.chain_pem, v.meta, "damaged")),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_record_is_never_used_never_fails_its_neighbours_and_a_fenced_save_replaces_it(make_store, damage):
    """Another writer (an older controller, a hand edit during an incident, a mixed restore)
    leaves a current version that does not verify."""
    store = make_store()
    key_pem, leaf, chain = make_chain(root=ROOT)
    store.save("www", key_pem, leaf, chain, {"order_url": "https://ca/order/1"})
    store.save("api", *make_chain(names=("api.example.com",), root=ROOT), {})
    reason, damaged_version = DAMAGES[damage]
    store.import_version("www", damaged_version(store.export_version("www"), make_chain(root=make_ca("Other Root"))))

    with pytest.raises(DamagedCertificate, match=r"certificate 'www' \(version damaged\) is damaged: .*" + reason):
        make_store().load("www")
    readings = make_store().read_many(["www", "api"])
    assert readings["www"].stored is None and readings["www"].fence == Fence("damaged")
    assert readings["api"].stored is not None, "one damaged record failed its neighbour"

    key2, leaf2, chain2 = make_chain(root=ROOT)
    new = store.save("www", key2, leaf2, chain2, {}, fence=readings["www"].fence)
    assert make_store().load("www").version == new.version


def test_metadata_updates_land_only_on_the_current_version(make_store):
    store = make_store()
    key_pem, leaf, chain = make_chain(root=ROOT)
    first = store.save("www", key_pem, leaf, chain, {})
    assert store.update_meta("www", first.version, ari={"next_check": "x"}) is True
    assert store.load("www").meta["ari"] == {"next_check": "x"}
    key2, leaf2, chain2 = make_chain(root=ROOT, days_left=80)
    second = store.save("www", key2, leaf2, chain2, {})
    # What was learnt about the replaced certificate must not land on its successor.
    assert store.update_meta("www", first.version, revoked_at="now") is False
    current = store.load("www")
    assert current.version == second.version and "revoked_at" not in current.meta


def test_remove_takes_every_version_and_the_pending_order(make_store):
    store = make_store()
    key_pem, leaf, chain = make_chain(root=ROOT)
    store.save("www", key_pem, leaf, chain, {})
    store.put_pending("www", {"created": "t"})
    store.remove("www")
    assert store.load("www") is None and store.names() == [] and store.get_pending("www") is None


def test_accounts_anchors_and_pending_orders_are_kept(make_store):
    store = make_store()
    assert store.known_account("https://ca/dir", "thumb") is None
    store.remember_account("https://ca/dir", "thumb", "https://ca/acct/1", ["mailto:b@x", "mailto:a@x"])
    known = make_store().known_account("https://ca/dir", "thumb")
    assert known["url"] == "https://ca/acct/1" and known["contact"] == ["mailto:a@x", "mailto:b@x"]
    assert store.known_account("https://other/dir", "thumb") is None
    store.remember_account("https://ca/dir", "thumb", None, [])
    assert store.known_account("https://ca/dir", "thumb") is None

    key_pem, leaf, chain = make_chain(root=ROOT)
    store.save("www", key_pem, leaf, chain, {"order_url": "https://ca/order/1"})
    assert [a.subject for a in make_store().anchors()] == [chain[-1].subject]

    record = {"created": "2026-12-01T00:00:00+00:00", "name": "www", "alpn": {"www.test": ["c", "k"]}}
    store.put_pending("www", record)
    assert make_store().get_pending("www") == record
    assert order_from_record(record, [], datetime.datetime.now(datetime.timezone.utc)) is None  # not an order
    store.drop_pending("www")
    store.drop_pending("www")  # twice is fine
    assert store.get_pending("www") is None


def test_a_lock_excludes_other_holders_until_released(make_store):
    store, other = make_store(), make_store()
    held = store.acquire("www", timeout=5)
    started = time.monotonic()
    with pytest.raises(StoreError, match="'www' is locked by another run"):
        other.acquire("www", timeout=0.5)
    assert time.monotonic() - started >= 0.4
    with other.lock("api", timeout=1):  # another name is free
        pass
    held.release()
    held.release()  # idempotent
    again = other.acquire("www", timeout=2)
    again.release()


#: A separate Python process (not a fork of this multi-threaded one) that takes the lock and
#: says so on stdout, then sleeps until it is killed.
HOLDER = """
import sys, time
sys.path.insert(0, sys.argv[1])
from ansible_collections.certops.acme.plugins.module_utils._acme.store.files import FileStore
from ansible_collections.certops.acme.plugins.module_utils._acme.store.vault import VaultStore
kind, where, prefix, token = sys.argv[2:6]
store = FileStore(where) if kind == "file" else VaultStore([where], token=token, prefix=prefix, lock_lease=2)
store.acquire("www", timeout=5).note_order({"url": "https://ca.example/order/9"})
print("held", flush=True)
time.sleep(3600)
"""


def test_a_holder_killed_with_sigkill_gives_the_lock_up(make_store, request, tmp_path):
    """The file lock dies with its process; a Vault lease runs out and is taken over. Either way
    the taker finds the order the dead holder noted (order_resume.py), and passes it on no
    further once it releases the lock."""
    store = make_store(lock_lease=2) if request.node.callspec.params["make_store"] == "vault" else make_store()
    kind = request.node.callspec.params["make_store"]
    if kind == "file":
        where, prefix, token = str(tmp_path / "store"), "", ""
    else:
        server = request.getfixturevalue("bao_dev")
        where, prefix, token = server.urls[0], store.prefix, server.token
    collections = str(Path(sys.modules["ansible_collections"].__path__[0]).parent)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, collections, kind, where, prefix, token],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held", "the holder never got the lock"
        with pytest.raises(StoreError):
            store.acquire("www", timeout=0.3)  # held and renewed while the holder lives
        holder.kill()
        holder.wait(5)
        started = time.monotonic()
        taken = store.acquire("www", timeout=15)
        waited = time.monotonic() - started
        assert taken.inherited_order == {"url": "https://ca.example/order/9"}
        taken.release()
        after = store.acquire("www", timeout=2)
        after.release()
        assert after.inherited_order is None
        if kind == "vault":
            assert waited > 0.2, "a lease was taken over before it ran out"
        assert waited < 10
    finally:
        holder.kill()
        holder.wait(5)


def test_a_held_vault_lease_is_renewed_past_its_length(bao_dev):
    holder = vault_store(bao_dev, f"certops-acme/lease-{uuid.uuid4().hex[:8]}", lock_lease=2)
    other = vault_store(bao_dev, holder.prefix, lock_lease=2)
    try:
        held = holder.acquire("www", timeout=5)
        time.sleep(4.5)  # two lease lengths: only the heartbeat keeps it
        with pytest.raises(StoreError, match="locked by another run"):
            other.acquire("www", timeout=0.5)
        held.release()
        other.acquire("www", timeout=2).release()
    finally:
        holder.close()
        other.close()


def test_a_fresh_certificate_costs_the_vault_store_six_requests_under_its_lock(bao_dev):
    """What a batch does per certificate after its first read, counted: take the lock, read
    under it, note the order, confirm before finalizing, save on the revision read, release
    (no read first: the confirmation proved the lock ours). The chain top is recorded once per
    store object, not once per certificate. 10 requests per certificate before (bench/store.py)."""
    store = vault_store(bao_dev, f"certops-acme/cost-{uuid.uuid4().hex[:8]}")
    try:
        counts = []
        intermediate = make_ca("Cost Intermediate", issuer=ROOT)
        for name in ("www", "api", "mail"):
            key_pem, leaf = make_leaf(intermediate, (f"{name}.example",))
            chain = [intermediate[1]]
            before = store.requests
            lock = store.acquire(name, timeout=5)
            reading = store.read(name)
            lock.note_order({"url": f"https://ca.example/order/{name}"})
            lock.confirm("finalizing its order")
            store.save(name, key_pem, leaf, chain, {"order_url": f"https://ca.example/order/{name}"},
                       fence=reading.fence)
            lock.release()
            counts.append(store.requests - before)
        # The first also starts the run's lease (one write) and records the chain top (a read and a write).
        assert counts == [9, 6, 6]
        assert store.names() == ["api", "mail", "www"] and store._list("locks") == []
    finally:
        store.close()


def test_the_vault_store_describes_itself_without_the_token(bao_dev):
    store = vault_store(bao_dev, "certops-acme/describe")
    try:
        assert bao_dev.token not in store.describe() and bao_dev.urls[0] in store.describe()
    finally:
        store.close()


def test_a_token_without_write_permission_fails_naming_the_store(bao_dev):
    bao_dev.api("PUT", "sys/policies/acl/certops-read-only", {"policy": openbao.POLICY_FILE.read_text().replace(
        '["create", "read", "update"]', '["read"]').replace('["read", "list", "update", "delete"]', '["read", "list"]')})
    reader = VaultStore(bao_dev.urls, token=bao_dev.make_token(["certops-read-only"]), prefix="certops-acme/read-only", timeout=5)
    try:
        assert reader.load("www") is None  # reading is allowed
        with pytest.raises(StoreError, match=r"store vault http://127\.0\.0\.1:\d+ .*permission denied"):
            reader.acquire("www", timeout=2)
    finally:
        reader.close()


def test_an_unreachable_vault_fails_within_its_timeout(tmp_path):
    store = VaultStore(["http://127.0.0.1:9"], token="t", timeout=2)
    started = time.monotonic()
    with pytest.raises(StoreError, match=r"cannot read .* within 2 s: http://127\.0\.0\.1:9 is unreachable"):
        store.load("www")
    assert time.monotonic() - started < 6
    store.close()


def test_store_copy_moves_a_file_store_into_vault_and_back_idempotently(bao_dev, controller, tmp_path):
    files = FileStore(str(tmp_path / "files"))
    for name in ("www", "api"):
        key_pem, leaf, chain = make_chain(root=ROOT)
        files.save(name, key_pem, leaf, chain, {"order_url": f"https://ca/order/{name}"})
    files.remember_account("https://ca/dir", "thumb", "https://ca/acct/1", [])
    files.keep_account_key(make_chain(root=ROOT)[0])  # account_key_in_store
    prefix = f"certops-acme/copy-{uuid.uuid4().hex[:8]}"
    vault = {"store": "vault", "vault_url": bao_dev.urls, "vault_token": bao_dev.token, "vault_prefix": prefix}

    def copy(name: str, source: dict[str, Any], target: dict[str, Any], *args: str) -> dict[str, Any]:
        playbook = controller.playbook(name, [
            {"certops.acme.store_copy": {"source": source, **target}, "register": "copied"},
            {"ansible.builtin.copy": {"content": "{{ copied | to_json }}", "dest": str(tmp_path / f"{name}.json")},
             "check_mode": False}])
        controller.run(playbook, *args, check=True)
        return json.loads((tmp_path / f"{name}.json").read_text())

    into_vault = {"store": "file", "store_path": str(tmp_path / "files")}
    preview = copy("preview", into_vault, vault, "--check")
    assert preview["copied"] == ["api", "www"] and bao_dev.kv_list(f"{prefix}/certificates") == []
    first = copy("first", into_vault, vault)
    assert first["changed"] and first["copied"] == ["api", "www"] and first["records_copied"] == 4
    again = copy("again", into_vault, vault)
    assert not again["changed"] and again["unchanged"] == ["api", "www"] and again["records_copied"] == 0

    back = copy("back", vault, {"store": "file", "store_path": str(tmp_path / "restored")})
    assert back["copied"] == ["api", "www"]
    restored = FileStore(str(tmp_path / "restored"))
    for name in ("www", "api"):
        original, copied = files.load(name), restored.load(name)
        assert (copied.key_pem, copied.cert_pem, copied.chain_pem, copied.version) == \
            (original.key_pem, original.cert_pem, original.chain_pem, original.version)
    assert restored.known_account("https://ca/dir", "thumb")["url"] == "https://ca/acct/1"
    assert files.account_key_pem() is not None
    assert restored.account_key_pem() == files.account_key_pem()


def test_a_write_whose_answer_was_lost_counts_as_written(bao_dev, monkeypatch):
    """A node that commits a write and dies before answering makes the client send it again to
    the next node, where it conflicts with itself. The real server commits the first attempt;
    only the lost answer is simulated (a ConnectionError after the write), which a dying node
    cannot be made to produce on cue here."""
    import requests
    store = vault_store(bao_dev, f"certops-acme/lost-{uuid.uuid4().hex[:8]}", timeout=10)
    kv = store._kv  # pylint: disable=protected-access
    real = kv.write
    lost: list[str] = []

    def commit_then_lose_the_answer(client: Any, path: str, data: Any, cas: Any) -> Any:
        answer = real(client, path, data, cas)
        if len(lost) < 3:
            lost.append(path)
            raise requests.exceptions.ConnectionError("connection reset after the commit")
        return answer
    monkeypatch.setattr(kv, "write", commit_then_lose_the_answer)
    try:
        held = store.acquire("www", timeout=5)  # the answers for the lease record and the lock are lost
        key_pem, leaf, chain = make_chain(root=ROOT)
        saved = store.save("www", key_pem, leaf, chain, {})
        assert len(lost) == 3 and store.load("www").version == saved.version
        held.release()
        assert bao_dev.kv_list(f"{store.prefix}/locks") == []
    finally:
        store.close()


def test_an_approle_logs_in_and_works_with_the_shipped_policy(bao_dev):
    """AppRole instead of a token: the store logs in once, and the token it gets carries only
    the collection's policy."""
    bao_dev.api("POST", "sys/auth/approle", {"type": "approle"})
    bao_dev.api("POST", "auth/approle/role/certops-acme", {"token_policies": ["certops-acme"], "token_ttl": "1h"})
    role_id = bao_dev.api("GET", "auth/approle/role/certops-acme/role-id")["data"]["role_id"]
    secret_id = bao_dev.api("POST", "auth/approle/role/certops-acme/secret-id")["data"]["secret_id"]
    store = VaultStore(bao_dev.urls, role_id=role_id, secret_id=secret_id, prefix="certops-acme/approle")
    outside = VaultStore(bao_dev.urls, role_id=role_id, secret_id=secret_id, prefix="elsewhere", timeout=3)
    try:
        key_pem, leaf, chain = make_chain(root=ROOT)
        store.save("www", key_pem, leaf, chain, {})
        assert store.load("www").key_pem == key_pem
        with pytest.raises(StoreError, match="permission denied"):
            outside.load("www")  # the policy grants certops-acme/ only
    finally:
        store.close()
        outside.close()
    with pytest.raises(StoreError, match="needs a token .* or an AppRole"):
        VaultStore(bao_dev.urls, role_id=role_id)
