import multiprocessing
import os
import stat
import time

import pytest

from ansible_collections.certops.acme.plugins.module_utils._acme.errors import InputError, StoreError
from ansible_collections.certops.acme.plugins.module_utils._acme.store.files import FileStore

from tests.harness.certs import make_chain


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_save_then_load_round_trips_key_cert_and_chain(tmp_path):
    store = FileStore(str(tmp_path / "store"))
    key_pem, leaf, chain = make_chain()
    saved = store.save("www", key_pem, leaf, chain, {"order_url": "https://ca/order/1"})
    loaded = store.load("www")
    assert loaded.key_pem == key_pem
    assert loaded.facts.serial == saved.facts.serial == format(leaf.serial_number, "x")
    assert loaded.fullchain_pem.count("BEGIN CERTIFICATE") == 2
    assert loaded.meta["order_url"] == "https://ca/order/1"
    assert loaded.files()["haproxy.pem"].endswith(key_pem)


def test_everything_is_private_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        store = FileStore(str(tmp_path / "store"))
        key_pem, leaf, chain = make_chain()
        store.save("www", key_pem, leaf, chain, {})
    finally:
        os.umask(old)
    current = tmp_path / "store" / "certificates" / "www" / "current"
    assert mode(tmp_path / "store") == 0o700
    for name in ("privkey.pem", "cert.pem", "meta.json"):
        assert mode(current / name) == 0o600


def test_a_new_version_replaces_current_and_old_versions_are_pruned(tmp_path):
    store = FileStore(str(tmp_path))
    serials = []
    for _ignored in range(4):
        key_pem, leaf, chain = make_chain()
        serials.append(store.save("www", key_pem, leaf, chain, {}).facts.serial)
    assert store.load("www").facts.serial == serials[-1]
    assert len(os.listdir(tmp_path / "certificates" / "www" / "versions")) == 2


def test_missing_certificate_loads_as_none(tmp_path):
    assert FileStore(str(tmp_path)).load("nothing") is None


@pytest.mark.parametrize("bad", ["../etc", "a/b", ".hidden", "", "*.example.com"])
def test_unsafe_certificate_names_are_refused(tmp_path, bad):
    with pytest.raises(InputError, match="certificate name"):
        FileStore(str(tmp_path)).load(bad)


def _hold_lock(root, ready, release):
    store = FileStore(root)
    with store.lock("www"):
        ready.set()
        release.wait(10)


def test_lock_excludes_another_process_and_times_out_clearly(tmp_path):
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(tmp_path), ready, release))
    holder.start()
    try:
        assert ready.wait(10)
        store = FileStore(str(tmp_path))
        started = time.monotonic()
        with pytest.raises(StoreError, match="locked by another run"):
            with store.lock("www", timeout=0.3):
                pass
        assert time.monotonic() - started >= 0.3
        with store.lock("other", timeout=0.3):  # other certificates are not blocked
            pass
    finally:
        release.set()
        holder.join(10)
    with FileStore(str(tmp_path)).lock("www", timeout=2):
        pass  # released when the holder's descriptor closed
