"""SIGKILL a process while it writes bundles, many times at random moments: the live paths
must always hold a complete key and the certificate that belongs with it (real processes,
real signals, real files)."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time

from cryptography import x509

from ansible_collections.certops.acme.plugins.module_utils._acme.crypto import load_private_key, public_key_matches
from ansible_collections.certops.acme.plugins.module_utils._acme.store.files import FileStore
from ansible_collections.certops.acme.plugins.module_utils import _host_files

from tests.harness.certs import make_chain

KILLS = 25


def bundles():
    out = []
    for _ignored in range(2):
        key_pem, leaf, chain = make_chain()
        from cryptography.hazmat.primitives import serialization
        cert = leaf.public_bytes(serialization.Encoding.PEM)
        chain_pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
        out.append({"cert.pem": (cert, 0o644), "chain.pem": (chain_pem, 0o644),
                    "fullchain.pem": (cert + chain_pem, 0o644), "privkey.pem": (key_pem, 0o600),
                    "haproxy.pem": (cert + chain_pem + key_pem, 0o600)})
    return out


def _install_forever(dest, material):
    i = 0
    while True:
        _host_files.swap_in_bundle(dest, "www", material[i % 2], None, None, 0o700)
        i += 1


def _store_forever(root, material):
    store = FileStore(root)
    i = 0
    while True:
        key_pem, leaf, chain = material[i % 2]
        store.save("www", key_pem, leaf, chain, {})
        i += 1


def kill_repeatedly(target, args, check):
    """Kill ``target`` KILLS times at random moments; ``check()`` returns whether it found
    something installed. Most kills must land after a first complete write, or the test
    would prove nothing about writes cut in half."""
    ctx = multiprocessing.get_context("fork")
    rng = random.Random(1234)
    found = 0
    for _ignored in range(KILLS):
        proc = ctx.Process(target=target, args=args)
        proc.start()
        time.sleep(rng.uniform(0.01, 0.08))
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        found += bool(check())
    assert found >= KILLS // 2, f"only {found} of {KILLS} kills came after a complete write"


def test_install_never_leaves_a_mismatched_bundle_in_the_live_path(tmp_path):
    material = bundles()
    live = tmp_path / "www"

    def check():
        if not os.path.lexists(live):
            return False  # killed before the first swap: nothing installed, which is fine
        assert os.path.exists(live), "the live link dangles"
        key = load_private_key((live / "privkey.pem").read_bytes())
        assert public_key_matches(key, x509.load_pem_x509_certificate((live / "cert.pem").read_bytes()))
        combined = (live / "haproxy.pem").read_bytes()
        assert public_key_matches(load_private_key(combined[combined.index(b"-----BEGIN PRIVATE KEY"):]),
                                  x509.load_pem_x509_certificates(combined)[0])
        assert (live / "fullchain.pem").read_bytes().startswith((live / "cert.pem").read_bytes())
        return True
    kill_repeatedly(_install_forever, (str(tmp_path), material), check)
    assert os.path.islink(live)


def test_the_store_never_leaves_a_mismatched_current_version(tmp_path):
    material = [make_chain(), make_chain()]
    store = FileStore(str(tmp_path))

    current = tmp_path / "certificates" / "www" / "current"

    def check():
        if not os.path.lexists(current):
            return False  # killed before the first version was made current
        stored = store.load("www")
        assert stored is not None, "current points at a version that is not complete"
        key = load_private_key(stored.key_pem)
        assert public_key_matches(key, x509.load_pem_x509_certificate(stored.cert_pem.encode()))
        return True
    kill_repeatedly(_store_forever, (str(tmp_path), material), check)
    assert store.load("www") is not None
