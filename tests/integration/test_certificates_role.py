"""The shared issue-once role on its own: many hosts, one certificate, one order."""

from __future__ import annotations

import json
import os

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


def test_an_idempotent_run_sends_no_bundle_and_a_tampered_host_gets_only_its_own_back(
        controller, pebble_server, http01_responder, account):
    """Fingerprints first: each host is inspected once; a host holding every bundle exactly (content,
    modes, owner) is not contacted by the install task at all, and a host where one file changed
    gets that one bundle back, in one call."""
    def wanted(index):
        return [{"name": "shared.prints.test", "domains": ["shared.prints.test"]},
                {"name": f"own{index}.prints.test", "domains": [f"own{index}.prints.test"]}]
    hosts = {f"f{i}": controller.local_host(certops_certificates_dest=str(controller.work / f"f{i}"),
                                            certops_certificates_list=wanted(i)) for i in range(2)}
    controller.write_inventory({"all": {"hosts": hosts, "vars": {
        "certops_certificates_acme_directory": pebble_server.directory_url,
        "certops_certificates_acme_ca_path": pebble_server.ca_cert,
        "certops_certificates_account_key_src": account["key_path"],
        "certops_certificates_store_path": str(controller.work / "store")}}})
    playbook = controller.role_playbook("prints", "certops_certificates_installed",
                                        str(controller.work / "{{ inventory_hostname }}.json"))

    def installed(host):
        return json.loads((controller.work / f"{host}.json").read_text())

    controller.run(playbook, check=True)
    assert installed("f0")["bundles_sent"] == 2 and installed("f1")["bundles_sent"] == 2
    controller.run(playbook, check=True)
    for host in hosts:
        assert (installed(host)["host_calls"], installed(host)["bundles_sent"], installed(host)["changed"]) == (
            0, 0, False), host

    f0, f1 = controller.work / "f0", controller.work / "f1"
    (f0 / "shared.prints.test" / "chain.pem").write_bytes(b"tampered\n")
    (f1 / "own1.prints.test" / "privkey.pem").chmod(0o644)
    untouched = sorted(os.listdir(f0 / ".versions" / "own0.prints.test"))
    third = controller.run(playbook, check=True)
    assert third.total("changed") == 2
    assert (installed("f0")["changed_certificates"], installed("f0")["bundles_sent"],
            installed("f0")["host_calls"]) == (["shared.prints.test"], 1, 1)
    assert (installed("f1")["changed_certificates"], installed("f1")["bundles_sent"],
            installed("f1")["host_calls"]) == (["own1.prints.test"], 1, 1)
    assert (f0 / "shared.prints.test" / "chain.pem").read_bytes() == (f1 / "shared.prints.test" / "chain.pem").read_bytes()
    assert (f1 / "own1.prints.test" / "privkey.pem").stat().st_mode & 0o777 == 0o600
    assert sorted(os.listdir(f0 / ".versions" / "own0.prints.test")) == untouched, "an unchanged bundle was rewritten"
    controller.run(playbook, check=True)
    assert installed("f0")["host_calls"] == 0 and installed("f1")["host_calls"] == 0


def test_each_host_gets_a_metrics_file_and_a_run_fails_below_the_days_threshold(
        controller, pebble_server, http01_responder, account):
    """Alerts without e-mail: node_exporter's textfile on each host, written even by a run that
    then fails because certificates have fewer days left than certops_certificates_fail_below_days."""
    from cryptography import x509
    from prometheus_client.parser import text_string_to_metric_families

    hosts = {f"m{i}": controller.local_host(
        certops_certificates_dest=str(controller.work / f"m{i}"),
        certops_certificates_metrics_file=str(controller.work / f"m{i}.prom"),
        certops_certificates_list=[{"name": f"alert{i}.metrics.test", "domains": [f"alert{i}.metrics.test"]}])
        for i in range(2)}

    def write(threshold):
        controller.write_inventory({"all": {"hosts": hosts, "vars": {
            "certops_certificates_acme_directory": pebble_server.directory_url,
            "certops_certificates_acme_ca_path": pebble_server.ca_cert,
            "certops_certificates_account_key_src": account["key_path"],
            "certops_certificates_fail_below_days": threshold,
            "certops_certificates_store_path": str(controller.work / "store")}}})
    playbook = controller.work / "metrics.yml"
    playbook.write_text(json.dumps([{"hosts": "all", "gather_facts": False,
                                     "roles": [{"role": "certops.acme.certificates"}]}]))
    write(100000)
    failing = controller.run(playbook)
    assert failing.returncode != 0
    assert "Fewer than 100000 days of validity left" in failing.stdout
    assert "alert0.metrics.test" in failing.stdout and "alert1.metrics.test" in failing.stdout
    for i in range(2):
        text = (controller.work / f"m{i}.prom").read_text()
        values = {(s.name, s.labels.get("certificate")): s.value
                  for family in text_string_to_metric_families(text) for s in family.samples}
        leaf = x509.load_pem_x509_certificate((controller.work / f"m{i}" / f"alert{i}.metrics.test" / "cert.pem").read_bytes())
        assert values[("certops_acme_certificate_expiry_timestamp_seconds", f"alert{i}.metrics.test")] == int(
            leaf.not_valid_after_utc.timestamp())
        assert values[("certops_acme_certificate_failed", f"alert{i}.metrics.test")] == 0
        assert ("certops_acme_certificate_days_left", f"alert{1 - i}.metrics.test") not in values, "the other host's"
    write(1)
    again = controller.run(playbook, check=True)
    assert again.total("changed") == 0
    # The schedule hint: the earliest renewal point (here the lifetime rule: a third left).
    leaves = [x509.load_pem_x509_certificate((controller.work / f"m{i}" / f"alert{i}.metrics.test" / "cert.pem")
                                             .read_bytes()) for i in range(2)]
    earliest = min(leaf.not_valid_after_utc - (leaf.not_valid_after_utc - leaf.not_valid_before_utc) / 3
                   for leaf in leaves)
    assert f"next run due by: {earliest:%Y-%m-%dT%H:%M} UTC" in again.stdout, again.stdout[-1500:]
