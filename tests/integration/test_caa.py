"""CAA pre-flight against real DNS and a real CA: BIND serves the CAA records, acme2certifier
lists its caaIdentities in its directory (Pebble 2.4 lists none, so it is never checked)."""

from __future__ import annotations

import json

import pytest

from tests.harness import a2c
from tests.harness.bind import start_bind

pytestmark = pytest.mark.integration
BIND_PORT = 15354
A2C_PORT = 14811
RECORDS = """
@        IN CAA 0 issue "certops-ca.test"
@        IN CAA 0 iodef "mailto:security@caa.test"
forbidden IN CAA 0 issue "other-ca.example"
deny     IN CAA 0 issue ";"
methods  IN CAA 0 issue "certops-ca.test; validationmethods=dns-01"
"""


@pytest.fixture
def caa_world(tmp_path):
    bind = start_bind(tmp_path / "bind", "127.0.0.1", BIND_PORT, zone="caa.test", records=RECORDS)
    server = a2c.start(tmp_path / "a2c", A2C_PORT, caa_identities=("certops-ca.test",))
    yield server
    server.stop()
    bind.stop()


def run(controller, server, certificates, **options):
    key = controller.work / "a2c-account.key"
    acme = {"acme_directory": server.directory_url, "account_key_src": str(key)}
    play = controller.playbook("caa", [
        {"certops.acme.account": {**acme, "account_key_create": True, "terms_agreed": True,
                                  "contact": ["mailto:ops@example.test"]}},
        {"certops.acme.certificate": {**acme, "store_path": str(controller.work / "store"),
                                      "caa_resolvers": [f"127.0.0.1:{BIND_PORT}"], "certificates": certificates,
                                      **options},
         "register": "issued", "ignore_errors": True},
        {"ansible.builtin.copy": {"content": "{{ issued | to_json }}", "dest": str(controller.work / "issued.json")},
         "changed_when": False}])
    outcome = controller.run(play)
    assert (controller.work / "issued.json").exists(), outcome.stdout[-3000:]
    return {c["name"]: c for c in json.loads((controller.work / "issued.json").read_text())["certificates"]}


def ordered_names(server) -> list[str]:
    return sorted(i["value"] for o in server.new_orders() for i in o["identifiers"])


def test_names_caa_forbids_fail_before_ordering_quoting_the_record(controller, caa_world):
    results = run(controller, caa_world, [
        {"name": "allowed", "domains": ["allowed.caa.test"]},          # the apex record grants this CA
        {"name": "forbidden", "domains": ["forbidden.caa.test"]},
        {"name": "deny", "domains": ["www.deny.caa.test"]},            # found walking up to deny.caa.test
        {"name": "methods", "domains": ["methods.caa.test"]},          # granted for dns-01 only
        {"name": "elsewhere", "domains": ["www.example.test"]}])       # BIND refuses: left to the CA
    assert ordered_names(caa_world) == ["allowed.caa.test", "www.example.test"]
    assert results["allowed"]["action"] == "issue" and results["elsewhere"]["action"] == "issue"
    assert ("CAA at forbidden.caa.test allows only '0 issue \"other-ca.example\"', which does not grant this CA "
            "(certops-ca.test) http-01 issuance for forbidden.caa.test") in results["forbidden"]["error"]
    assert "CAA at deny.caa.test allows only '0 issue \";\"'" in results["deny"]["error"]
    assert "validationmethods=dns-01" in results["methods"]["error"]
    assert all(results[n]["action"] == "failed" and results[n]["failures"] == 1 for n in ("forbidden", "deny"))


def test_the_check_can_be_switched_off(controller, caa_world):
    results = run(controller, caa_world, [{"name": "forbidden", "domains": ["forbidden.caa.test"]}], caa_check=False)
    assert results["forbidden"]["action"] == "issue"
    assert ordered_names(caa_world) == ["forbidden.caa.test"]


def test_a_name_caa_closes_to_the_first_ca_is_ordered_from_the_next(controller, caa_world, pebble_server,
                                                                    http01_responder):
    """acme2certifier first, Pebble second (which lists no caaIdentities, so is not checked):
    CAA forbids the first for forbidden.caa.test, so Pebble issues it in the same run."""
    cas = [caa_world.directory_url, pebble_server.directory_url]
    play = controller.playbook("caa-fallback", [
        {"certops.acme.account": {"acme_directory": cas, "terms_agreed": True,
                                  "contact": ["mailto:ops@example.test"]}},
        {"certops.acme.certificate": {"acme_directory": cas, "store_path": str(controller.work / "store"),
                                      "caa_resolvers": [f"127.0.0.1:{BIND_PORT}"],
                                      "certificates": [{"name": "forbidden", "domains": ["forbidden.caa.test"]}]},
         "register": "issued"},
        {"ansible.builtin.copy": {"content": "{{ issued | to_json }}", "dest": str(controller.work / "issued.json")},
         "changed_when": False}])
    pebble_before = pebble_server.new_orders()
    controller.run(play, check=True)
    [result] = json.loads((controller.work / "issued.json").read_text())["certificates"]
    assert result["action"] == "issue" and result["directory"] == pebble_server.directory_url
    assert "CAA at forbidden.caa.test allows only" in result["tried"][0]
    assert ordered_names(caa_world) == [] and pebble_server.new_orders() - pebble_before == 1
