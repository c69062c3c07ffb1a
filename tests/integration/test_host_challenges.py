"""Challenges answered on hosts: webroot http-01 behind a web server we do not manage."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.harness.hosts import nginx_service
from tests.harness.processes import stop_pidfile, wait_port

pytestmark = pytest.mark.integration


def prepare_complete_playbook(controller, certificates, challenge_args=None):
    common = {"store_path": str(controller.work / "store"), "certificates": certificates}
    return controller.playbook("two-stage", [
        {"name": "Prepare", "certops.acme.certificate": {**common, "stage": "prepare"},
         "run_once": True, "register": "prepared"},
        {"ansible.builtin.copy": {"content": "{{ prepared | to_json }}", "dest": str(controller.work / "prepared.json")},
         "changed_when": False},
        {"block": [
            {"name": "Deploy", "certops.acme.challenge": {"challenges": "{{ prepared.challenges }}",
                                                          **(challenge_args or {})}, "register": "deployed"},
            {"ansible.builtin.copy": {"content": "{{ deployed | to_json }}",
                                      "dest": str(controller.work / "deployed.json")}, "changed_when": False},
            {"name": "Complete", "certops.acme.certificate": {**common, "stage": "complete"},
             "run_once": True, "register": "completed"},
            {"ansible.builtin.copy": {"content": "{{ completed | to_json }}",
                                      "dest": str(controller.work / "completed.json")}, "changed_when": False}],
         "always": [
            {"name": "Clean up", "certops.acme.challenge": {"challenges": "{{ prepared.challenges }}", "state": "absent",
                                                            **(challenge_args or {})}}]}])


@pytest.fixture
def web_server(controller, pebble_server):
    """nginx on 127.0.0.70 serving a plain webroot on the port Pebble validates http-01 on."""
    address = "127.0.0.70"
    webroot = controller.work / "www"
    webroot.mkdir()
    service = nginx_service(controller.work / "web", "web")
    Path(service["web_config_path"]).write_text(
        f"server {{ listen {address}:{pebble_server.ports.http01}; root {webroot}; }}\n")
    subprocess.run(service["web_start_command"].split(), check=True)
    wait_port(address, pebble_server.ports.http01, pidfile=controller.work / "web" / "nginx" / "nginx.pid")
    yield address, webroot
    stop_pidfile(controller.work / "web" / "nginx" / "nginx.pid")


def test_a_name_via_webroot_leaves_no_token_file(controller, pebble_server, web_server):
    address, webroot = web_server
    name = "webroot.host.test"
    pebble_server.set_address(name, address)
    playbook = prepare_complete_playbook(controller, [{"name": name, "domains": [name], "webroot": str(webroot)}])
    orders_before = pebble_server.new_orders()
    controller.run(playbook, check=True)
    prepared = json.loads((controller.work / "prepared.json").read_text())
    assert prepared["certificates"][0]["action"] == "pending"
    # A name of its own, never validated before: Pebble cannot reuse an authorization for it.
    assert [c["type"] for c in prepared["challenges"]] == ["http-01"]
    token = prepared["challenges"][0]["token"]
    deployed = json.loads((controller.work / "deployed.json").read_text())
    assert deployed["files"] == [str(webroot / ".well-known" / "acme-challenge" / token)], "no token was deployed"
    completed = json.loads((controller.work / "completed.json").read_text())
    assert completed["certificates"][0]["action"] == "issue"
    assert pebble_server.new_orders() - orders_before == 1  # prepare and complete share one order
    assert not list((webroot / ".well-known" / "acme-challenge").glob("*")), "token file left behind"
    assert not list((controller.work / "store" / "pending").glob("*")), "pending order left in the store"


def test_a_failed_webroot_validation_still_removes_the_token(controller, pebble_server, web_server):
    address, webroot = web_server
    name = "webroot-fail.host.test"
    pebble_server.set_address(name, address)
    elsewhere = controller.work / "not-served"
    playbook = prepare_complete_playbook(controller, [{"name": name, "domains": [name], "webroot": str(elsewhere)}])
    run = controller.run(playbook)
    assert run.returncode != 0 and "validation of webroot-fail.host.test by http-01 failed" in run.stdout
    deployed = json.loads((controller.work / "deployed.json").read_text())
    assert len(deployed["files"]) == 1 and deployed["files"][0].startswith(str(elsewhere)), "no token was deployed"
    assert not list((elsewhere / ".well-known" / "acme-challenge").glob("*")), "token file left behind"


def test_a_token_that_is_not_base64url_is_refused_before_any_path_is_built(controller, tmp_path):
    playbook = controller.playbook("hostile", [{"certops.acme.challenge": {"webroot": str(tmp_path), "challenges": [
        {"certificate": "x", "identifier": "x.test", "type": "http-01", "token": "../../etc/passwd",
         "key_authorization": "../../etc/passwd.thumb"}]}}])
    run = controller.run(playbook)
    assert run.returncode != 0 and "is not base64url" in run.stdout
    assert not (tmp_path / ".well-known").exists()
