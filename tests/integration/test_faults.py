"""Faults against real processes: a CA that rejects many nonces, a CA killed mid-batch, and a
proxy whose reload fails."""

from __future__ import annotations

import json
import time

import pytest

from tests.harness import pebble

from ansible_collections.certops.acme.plugins.module_utils._acme.crypto import public_key_matches, load_private_key
from ansible_collections.certops.acme.plugins.module_utils._acme.store.files import FileStore

pytestmark = pytest.mark.integration


def batch(count, tag):
    return [{"name": f"f{i}.{tag}.test", "domains": [f"f{i}.{tag}.test"]} for i in range(count)]


def playbook(controller, info, certificates, **options):
    acme = {"acme_directory": info.directory_url, "ca_path": info.ca_cert,
            "account_key_src": controller.account["key_path"]}
    return controller.playbook("faults", [
        {"certops.acme.account": {**acme, "terms_agreed": True}},
        {"certops.acme.certificate": {**acme, "store_path": str(controller.work / "store"),
                                      "certificates": certificates, **options}, "register": "issued"},
        {"ansible.builtin.copy": {"content": "{{ issued | to_json }}", "dest": str(controller.work / "issued.json")},
         "changed_when": False}])


def assert_store_is_consistent(store_path):
    """Every stored certificate is complete and belongs with its key."""
    store = FileStore(str(store_path))
    for name in store.names():
        stored = store.load(name)
        assert public_key_matches(load_private_key(stored.key_pem), _leaf(stored.cert_pem)), name
    return store.names()


def _leaf(pem):
    from cryptography import x509
    return x509.load_pem_x509_certificate(pem.encode())


def test_fifty_certificates_complete_with_30_percent_bad_nonces(controller, pebble_server, http01_responder,
                                                                tmp_path_factory):
    info = pebble.start(tmp_path_factory.mktemp("pebble-nonce"), base_port=14400,
                        env={"PEBBLE_WFE_NONCEREJECT": "30"},
                        pebble_config={"httpPort": pebble_server.ports.http01})  # the shared responder
    try:
        run = controller.run(playbook(controller, info, batch(50, "nonce")))
        issued = json.loads((controller.work / "issued.json").read_text())
        assert run.returncode == 0, run.stdout[-2000:]
        assert {c["action"] for c in issued["certificates"]} == {"issue"}
        # Proof from the server's side: Pebble logs every newOrder POST it handles and every
        # order it adds; the difference is the newOrder requests it refused (badNonce).
        refused = info.count_log("POST /order-plz -> calling handler()") - info.new_orders()
        assert refused > 0, "Pebble refused no newOrder: the test proved nothing"
    finally:
        pebble.stop(info)


def test_a_ca_killed_mid_batch_fails_clearly_and_the_next_run_completes(controller, pebble_server,
                                                                        http01_responder, tmp_path_factory):
    state = tmp_path_factory.mktemp("pebble-killed")
    slow = {"PEBBLE_VA_NOSLEEP": "0", "PEBBLE_VA_SLEEPTIME": "4"}  # validations take up to 4 s
    config = {"httpPort": pebble_server.ports.http01}
    info = pebble.start(state, base_port=14500, env=slow, pebble_config=config)
    certificates = batch(8, "killed")
    proc = controller.spawn(playbook(controller, info, certificates, timeout=8, workers=4))
    deadline = time.monotonic() + 30
    while info.new_orders() < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    started = info.new_orders()
    pebble.stop(info)  # the CA goes away while orders are in flight
    assert started >= 4, "the CA was killed before the batch had started ordering"
    output = proc.communicate(timeout=120)[0]
    assert proc.returncode != 0
    assert "cannot reach the ACME server" in output or "did not finish within" in output, output[-3000:]
    assert not list((controller.work / "store" / "pending").glob("*"))
    finished_before = assert_store_is_consistent(controller.work / "store")
    assert len(finished_before) < len(certificates)

    info = pebble.start(state, base_port=14500, pebble_config=config)  # back, with a fresh state
    try:
        run = controller.run(playbook(controller, info, certificates))
        assert run.returncode == 0, run.stdout[-3000:]
        assert sorted(assert_store_is_consistent(controller.work / "store")) == sorted(c["name"] for c in certificates)
    finally:
        pebble.stop(info)
