"""The shared issue-once role on its own: many hosts, one certificate, one order."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration


def test_twenty_hosts_sharing_a_name_make_exactly_one_order(controller, pebble_server, http01_responder, account):
    name = "shared.twenty.test"
    hosts = {f"h{i:02d}": controller.local_host(certops_certificates_dest=str(controller.work / f"h{i:02d}"))
             for i in range(20)}
    controller.write_inventory({"all": {"hosts": hosts, "vars": {
        "certops_certificates_list": [{"name": name, "domains": [name]}],
        "certops_certificates_acme_directory": pebble_server.directory_url,
        "certops_certificates_acme_ca_path": pebble_server.ca_cert,
        "certops_certificates_account_key_src": account["key_path"],
        "certops_certificates_store_path": str(controller.work / "store")}}})
    playbook = controller.work / "twenty.yml"
    playbook.write_text(json.dumps([{"hosts": "all", "gather_facts": False,
                                     "roles": [{"role": "certops.acme.certificates"}]}]))
    orders_before = pebble_server.new_orders()
    first = controller.run(playbook, "--forks", "10", check=True)
    assert pebble_server.new_orders() - orders_before == 1
    installed = {(controller.work / h / name / "cert.pem").read_bytes() for h in hosts}
    assert len(installed) == 1, "hosts received different certificates"
    second = controller.run(playbook, "--forks", "10", check=True)
    assert second.total("changed") == 0 and pebble_server.new_orders() - orders_before == 1
    print(f"\n20 hosts, one shared certificate: first run {first.seconds:.1f} s, re-run {second.seconds:.1f} s")
