"""Lifecycle against a Pebble with alternate roots and a longer chain: preferred chains,
revocation then renewal, and a profile the CA does not offer."""

from __future__ import annotations

import json
import ssl
import urllib.request

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from tests.harness import pebble

from ansible_collections.certops.acme.plugins.module_utils._acme.crypto import chain_problems, issued_by

pytestmark = pytest.mark.integration
CHAIN_LENGTH = 3  # Pebble's PEBBLE_CHAIN_LENGTH: more intermediates than its default


@pytest.fixture(scope="module")
def chains_pebble(pebble_server, http01_responder, account, tmp_path_factory):
    """A second Pebble: two root CAs (each order has one alternate chain) and longer chains."""
    info = pebble.start(tmp_path_factory.mktemp("pebble-chains"), base_port=14700,
                        env={"PEBBLE_ALTERNATE_ROOTS": "1", "PEBBLE_CHAIN_LENGTH": str(CHAIN_LENGTH)},
                        pebble_config={"httpPort": pebble_server.ports.http01})  # the shared responder
    yield info
    pebble.stop(info)


def root(info, index: int) -> x509.Certificate:
    """Pebble's management API hands out its roots (they are generated at start)."""
    context = ssl.create_default_context(cafile=info.ca_cert)
    url = f"https://127.0.0.1:{info.ports.management}/roots/{index}"
    with urllib.request.urlopen(url, context=context, timeout=10) as response:
        return x509.load_pem_x509_certificate(response.read())


def common_name(name: x509.Name) -> str:
    return name.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def run(controller, info, tasks, name="lifecycle"):
    acme = {"acme_directory": info.directory_url, "ca_path": info.ca_cert,
            "account_key_src": controller.account["key_path"]}
    play = [{"certops.acme.account": {**acme, "terms_agreed": True}}]
    for task in tasks:
        module, args = next((k, v) for k, v in task.items() if k.startswith("certops.acme."))
        connection = acme if module != "certops.acme.install" else {}
        play.append({**task, module: {**connection, "store_path": str(controller.work / "store"), **args},
                     "register": "out"})
        play.append({"ansible.builtin.copy": {"content": "{{ out | to_json }}",
                                              "dest": str(controller.work / f"{module.split('.')[-1]}.json")},
                     "changed_when": False})
    return controller.run(controller.playbook(name, play))


def stored_chain(controller, name):
    base = controller.work / "store" / "certificates" / name / "current"
    return x509.load_pem_x509_certificates((base / "fullchain.pem").read_bytes())


def test_the_preferred_alternate_chain_is_stored_and_installed(controller, chains_pebble):
    default_root, alternate_root = root(chains_pebble, 0), root(chains_pebble, 1)
    wanted = common_name(alternate_root.subject)
    certificates = [{"name": "alt.chains.test", "domains": ["alt.chains.test"], "preferred_chain": wanted},
                    {"name": "default.chains.test", "domains": ["default.chains.test"]},
                    {"name": "nomatch.chains.test", "domains": ["nomatch.chains.test"],
                     "preferred_chain": "No Such Root CA"}]
    result = run(controller, chains_pebble, [
        {"certops.acme.certificate": {"certificates": certificates}},
        {"certops.acme.install": {"certificates": [c["name"] for c in certificates],
                                  "dest": str(controller.work / "host")}}])
    assert result.returncode == 0, result.stdout[-3000:]
    for name, expected_root in (("alt.chains.test", alternate_root), ("default.chains.test", default_root),
                                ("nomatch.chains.test", default_root)):
        installed = x509.load_pem_x509_certificates((controller.work / "host" / name / "fullchain.pem").read_bytes())
        assert installed == stored_chain(controller, name)
        leaf, chain = installed[0], installed[1:]
        assert chain_problems(leaf, chain) is None
        assert issued_by(chain[-1], expected_root), f"{name}: chain does not lead to {common_name(expected_root.subject)}"
        # Pebble sends PEBBLE_CHAIN_LENGTH CA certificates above the leaf; the root is not sent.
        assert len(installed) == 1 + CHAIN_LENGTH


def test_revoke_then_the_next_run_renews(controller, chains_pebble):
    name = "revoked.chains.test"
    spec = {"certificates": [{"name": name, "domains": [name]}]}
    assert run(controller, chains_pebble, [{"certops.acme.certificate": spec}]).returncode == 0
    first_serial = stored_chain(controller, name)[0].serial_number

    revoke = {"certops.acme.revoke": {"certificates": [name], "reason": "keyCompromise"}}
    revoked = run(controller, chains_pebble, [revoke])
    assert revoked.returncode == 0, revoked.stdout[-3000:]
    answer = json.loads((controller.work / "revoke.json").read_text())
    assert answer["changed"] and answer["certificates"][0]["serial"] == format(first_serial, "x")
    assert chains_pebble.count_log("POST /revoke-cert") >= 1
    again = run(controller, chains_pebble, [{"certops.acme.revoke": {"certificates": [name]}}])
    assert again.returncode == 0 and json.loads((controller.work / "revoke.json").read_text())["changed"] is False

    renewed = run(controller, chains_pebble, [{"certops.acme.certificate": spec}])
    assert renewed.returncode == 0
    result = json.loads((controller.work / "certificate.json").read_text())["certificates"][0]
    assert result["action"] == "renew" and "revoked" in result["reason"]
    assert stored_chain(controller, name)[0].serial_number != first_serial


def test_revoke_with_the_certificate_key(controller, chains_pebble):
    name = "certkey.chains.test"
    assert run(controller, chains_pebble, [{"certops.acme.certificate": {
        "certificates": [{"name": name, "domains": [name]}]}}]).returncode == 0
    revoke = {"certops.acme.revoke": {"certificates": [name], "revoke_with": "certificate_key"}}
    out = run(controller, chains_pebble, [revoke])
    assert out.returncode == 0, out.stdout[-3000:]
    assert json.loads((controller.work / "revoke.json").read_text())["certificates"][0]["changed"] is True


def test_a_profile_the_ca_does_not_offer_fails_before_ordering(controller, chains_pebble):
    orders = chains_pebble.new_orders()
    out = run(controller, chains_pebble, [{"certops.acme.certificate": {"certificates": [
        {"name": "profile.chains.test", "domains": ["profile.chains.test"], "profile": "tlsserver"}]}}])
    assert out.returncode != 0
    assert "profile 'tlsserver' is not offered by this CA" in out.stdout
    assert chains_pebble.new_orders() == orders
