"""dns-01 end to end: RFC 2136 + TSIG against a real BIND 9 that Pebble resolves through, and
the executable-hook provider against Pebble's challenge DNS server."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype
import pytest

from tests.harness import pebble
from tests.harness.bind import start_bind

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
BIND_PORT = 15353


@pytest.fixture(scope="module")
def bind_server(tmp_path_factory):
    server = start_bind(tmp_path_factory.mktemp("bind"), "127.0.0.1", BIND_PORT)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pebble_on_bind(tmp_path_factory, bind_server):
    """A second Pebble that resolves names (and _acme-challenge TXT records) through BIND."""
    info = pebble.start(tmp_path_factory.mktemp("pebble-bind"), base_port=14200,
                        dns_server=f"{bind_server.address}:{bind_server.port}")
    yield info
    pebble.stop(info)


def txt_records(server, name: str) -> set[str]:
    response = dns.query.udp(dns.message.make_query(name, dns.rdatatype.TXT), server.address,
                             port=server.port, timeout=3)
    return {b"".join(r.strings).decode() for rr in response.answer for r in rr}


def rfc2136_task(controller, pebble_info, bind_server, certificates, **extra):
    return {"certops.acme.certificate": {
        "acme_directory": pebble_info.directory_url, "ca_path": pebble_info.ca_cert,
        "store_path": str(controller.work / "store"), "certificates": certificates,
        "dns_provider": "rfc2136",
        "dns_rfc2136": {"server": bind_server.address, "port": bind_server.port,
                        "key_name": bind_server.key_name, "key_secret": bind_server.key_secret},
        **extra},
        "register": "issued"}


def dump(controller, name="issued"):
    return {"ansible.builtin.copy": {"content": "{{ %s | to_json }}" % name,
                                     "dest": str(controller.work / f"{name}.json")}, "changed_when": False}


def account_task(pebble_info, key):
    return {"certops.acme.account": {"acme_directory": pebble_info.directory_url, "ca_path": pebble_info.ca_cert,
                                     "account_key_src": key, "account_key_create": True, "terms_agreed": True}}


def test_wildcard_and_base_name_via_rfc2136_leave_no_record_behind(controller, pebble_on_bind, bind_server):
    key = str(controller.work / "dns-account.key")
    controller.acme_defaults = lambda: {"account_key_src": key}  # this Pebble has its own accounts
    certificates = [{"name": "wild.dns.test", "domains": ["*.wild.dns.test", "wild.dns.test"]},
                    {"name": "www.dns.test", "domains": ["www.dns.test"], "challenge": "dns-01"}]
    playbook = controller.playbook("dns01", [account_task(pebble_on_bind, key),
                                             rfc2136_task(controller, pebble_on_bind, bind_server, certificates),
                                             dump(controller)])
    run = controller.run(playbook, "-vvvv", check=True)
    issued = json.loads((controller.work / "issued.json").read_text())
    assert [c["action"] for c in issued["certificates"]] == ["issue", "issue"]
    assert sorted(issued["certificates"][0]["domains"]) == ["*.wild.dns.test", "wild.dns.test"]
    for record in ("_acme-challenge.wild.dns.test", "_acme-challenge.www.dns.test"):
        assert txt_records(bind_server, record) == set(), f"{record} left behind"
    assert bind_server.key_secret not in run.stdout + run.stderr, "the TSIG secret was shown"


def test_a_failed_validation_still_removes_every_record(controller, pebble_on_bind, bind_server):
    key = str(controller.work / "dns-account.key")
    controller.acme_defaults = lambda: {"account_key_src": key}
    certificates = [{"name": "fail.dns.test", "domains": ["*.fail.dns.test", "fail.dns.test"]}]
    task = rfc2136_task(controller, pebble_on_bind, bind_server, certificates)
    settings = task["certops.acme.certificate"].pop("dns_rfc2136")
    task["certops.acme.certificate"].update(
        dns_provider="tests.harness.dns_providers:CorruptingRfc2136",
        dns_provider_options={"server": settings["server"], "port": settings["port"],
                              "key_name": settings["key_name"], "key_secret": settings["key_secret"]})
    playbook = controller.playbook("dns01-fail", [account_task(pebble_on_bind, key), task])
    run = controller.run(playbook, env={"PYTHONPATH": str(REPO)})
    assert run.returncode != 0
    assert "validation of" in run.stdout and "dns-01 failed" in run.stdout
    assert txt_records(bind_server, "_acme-challenge.fail.dns.test") == set()
    assert not (controller.work / "store" / "certificates" / "fail.dns.test").exists()


def test_a_name_via_the_hook_provider(controller, pebble_server, account):
    # A user's hook is any executable; this one is a shell wrapper around the harness's Python hook.
    hook = controller.work / "challtestsrv-hook"
    hook.write_text(f'#!/bin/sh\nexec {sys.executable} {REPO / "tests" / "harness" / "challtestsrv_hook.py"} "$@"\n')
    hook.chmod(0o755)
    playbook = controller.playbook("hook", [{"certops.acme.certificate": {
        "store_path": str(controller.work / "store"), "dns_provider": "hook", "dns_hook": str(hook),
        "dns_check_servers": [f"127.0.0.1:{pebble_server.ports.dns}"],
        "certificates": [{"name": "hooked.hook.test", "domains": ["*.hook.test", "hooked.hook.test"],
                          "challenge": "dns-01"}]}, "register": "issued"}, dump(controller)])
    controller.run(playbook, check=True, env={"CHALLTESTSRV_URL": pebble_server.dns_management_url})
    issued = json.loads((controller.work / "issued.json").read_text())
    assert issued["certificates"][0]["action"] == "issue"
    response = dns.query.udp(dns.message.make_query("_acme-challenge.hook.test", dns.rdatatype.TXT),
                             "127.0.0.1", port=pebble_server.ports.dns, timeout=3)
    assert not response.answer, "the hook's TXT record was left behind"


def test_records_that_never_propagate_fail_clearly_within_the_timeout(
        controller, pebble_on_bind, bind_server, pebble_server):
    key = str(controller.work / "dns-account.key")
    controller.acme_defaults = lambda: {"account_key_src": key}
    certificates = [{"name": "slow.dns.test", "domains": ["slow.dns.test"], "challenge": "dns-01"}]
    # Wait for a server that never gets the record (Pebble's challenge DNS, not BIND).
    task = rfc2136_task(controller, pebble_on_bind, bind_server, certificates,
                        dns_check_servers=[f"127.0.0.1:{pebble_server.ports.dns}"], dns_propagation_timeout=1)
    run = controller.run(controller.playbook("dns01-slow", [account_task(pebble_on_bind, key), task]))
    assert run.returncode != 0
    assert f"_acme-challenge.slow.dns.test TXT was not served by 127.0.0.1:{pebble_server.ports.dns} within 1 s" in run.stdout
    assert txt_records(bind_server, "_acme-challenge.slow.dns.test") == set()


def test_the_wait_mode_issues_where_the_controller_cannot_query_the_dns(controller, pebble_on_bind, bind_server):
    """Split horizon: the servers the CA asks are out of the controller's reach (here nothing
    answers at the checked address). dns_propagation: wait asks no DNS server and waits."""
    key = str(controller.work / "dns-wait-account.key")
    controller.acme_defaults = lambda: {"account_key_src": key}
    certificates = [{"name": "wait.dns.test", "domains": ["wait.dns.test"], "challenge": "dns-01"}]
    unreachable = {"dns_check_servers": ["127.0.0.1:9"], "dns_propagation_timeout": 2}
    refused = controller.run(controller.playbook("dns01-check", [
        account_task(pebble_on_bind, key),
        rfc2136_task(controller, pebble_on_bind, bind_server, certificates, **unreachable)]))
    assert refused.returncode != 0 and "TXT was not served by 127.0.0.1:9" in refused.stdout
    controller.run(controller.playbook("dns01-wait", [
        rfc2136_task(controller, pebble_on_bind, bind_server, certificates, dns_propagation="wait",
                     dns_propagation_wait=1, **unreachable), dump(controller)]), check=True)
    issued = json.loads((controller.work / "issued.json").read_text())
    assert [c["action"] for c in issued["certificates"]] == ["issue"], issued["certificates"]
    assert txt_records(bind_server, "_acme-challenge.wait.dns.test") == set()
