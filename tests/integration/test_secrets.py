"""No private key, EAB MAC key, TSIG secret or account key content in any output (-vvvv,
--diff), in returned values, or in the store's metadata; keys and directories stay private
whatever the umask."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from tests.harness import pebble


pytestmark = pytest.mark.integration


def pem_body_lines(pem: str) -> list[str]:
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


@pytest.fixture(scope="module")
def eab_pebble(tmp_path_factory, pebble_server):
    mac = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    info = pebble.start(tmp_path_factory.mktemp("pebble-eab"), base_port=14600, pebble_config={
        "externalAccountBindingRequired": True, "externalAccountMACKeys": {"kid-1": mac},
        "httpPort": pebble_server.ports.http01})
    yield info, mac
    pebble.stop(info)


def test_secrets_never_reach_output_results_or_metadata(controller, eab_pebble, http01_responder, account):
    info, mac = eab_pebble
    controller.acme_defaults = lambda: {}  # everything is given per task here
    # Same key as the shared responder's thumbprint, but given as content, as AWX injects it.
    account_key = open(account["key_path"]).read()
    acme = {"acme_directory": info.directory_url, "ca_path": info.ca_cert, "account_key_content": account_key}
    store, host = controller.work / "store", controller.work / "host"
    name = "secret.audit.test"
    no_eab = controller.playbook("no-eab", [{"certops.acme.account": {**acme, "terms_agreed": True}}])
    refused = controller.run(no_eab)
    assert refused.returncode != 0 and "requires External Account Binding" in refused.stdout

    old_umask = os.umask(0)  # permissions must not depend on the caller's umask
    try:
        playbook = controller.playbook("audit", [
            {"certops.acme.account": {**acme, "terms_agreed": True, "eab_kid": "kid-1", "eab_hmac_key": mac},
             "register": "acct"},
            {"certops.acme.certificate": {**acme, "store_path": str(store),
                                          "certificates": [{"name": name, "domains": [name]}]}, "register": "issued"},
            {"certops.acme.install": {"store_path": str(store), "dest": str(host), "certificates": [name]},
             "register": "installed"},
            {"certops.acme.install": {"state": "inspect", "store_path": str(controller.work / "fresh-store"),
                                      "dest": str(host), "certificates": [name]}, "register": "held"},
            {"ansible.builtin.copy": {"content": "{{ [acct, issued, installed, held] | to_json }}",
                                      "dest": str(controller.work / "results.json")}, "changed_when": False}])
        run = controller.run(playbook, "-vvvv", "--diff", check=True)
    finally:
        os.umask(old_umask)

    stored_key = (store / "certificates" / name / "current" / "privkey.pem").read_text()
    everything = run.stdout + run.stderr + (controller.work / "results.json").read_text()
    for meta in store.rglob("meta.json"):
        everything += meta.read_text()
    secrets = {"EAB MAC key": [mac], "account key": pem_body_lines(account_key),
               "certificate key": pem_body_lines(stored_key)}
    for what, values in secrets.items():
        for value in values:
            assert value not in everything, f"the {what} appeared in output, results or metadata"
    assert "PRIVATE KEY" not in everything

    assert stat.S_IMODE(os.stat(store).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(store / "certificates" / name / "current" / "privkey.pem").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(host / name / "privkey.pem").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.realpath(host / name)).st_mode) == 0o700
    results = json.loads((controller.work / "results.json").read_text())
    assert results[0]["account_url"] and results[1]["certificates"][0]["action"] == "issue"


def test_secrets_by_every_route_are_masked_in_a_failing_task(controller, account):
    """A password in the CA's URL (echoed by the error naming the CA), the EAB MAC key and a
    dns-lexicon token from the environment (AWX's credential routes), the account key as
    content: none reaches the output at -vvvv --diff or the returned result."""
    url_password, env_mac, lexicon_token = "Url-Pa55word-9f3k", "env-mac-key-7d2h", "lexicon-token-3k9s"
    controller.acme_defaults = lambda: {}
    account_key = open(account["key_path"]).read()
    playbook = controller.playbook("routes", [
        {"certops.acme.account": {"acme_directory": f"https://certops:{url_password}@127.0.0.1:9/dir",
                                  "account_key_content": account_key, "terms_agreed": True,
                                  "request_timeout": 3}, "register": "acct", "ignore_errors": True},
        {"ansible.builtin.copy": {"content": "{{ acct | to_json }}", "dest": str(controller.work / "result.json")},
         "changed_when": False}])
    environment = {"CERTOPS_ACME_EAB_KID": "kid-1", "CERTOPS_ACME_EAB_HMAC_KEY": env_mac,
                   "LEXICON_CLOUDFLARE_AUTH_TOKEN": lexicon_token}
    run = controller.run(playbook, "-vvvv", "--diff", env=environment)
    result = json.loads((controller.work / "result.json").read_text())
    assert result["failed"] is True and "127.0.0.1:9" in result["msg"], result  # the error names the CA
    assert "certops:********@127.0.0.1:9" in result["msg"]
    everything = run.stdout + run.stderr + json.dumps(result)
    for secret in (url_password, env_mac, lexicon_token, *pem_body_lines(account_key)):
        assert secret not in everything
