"""Every module's EXAMPLES, run as written against the local Pebble and real HAProxy.

Only what must change to run here is rewritten, by plain text substitution before parsing:
the CA's URL (Pebble), controller and host paths (this test's directory), and the system
reload command. Names like www.example.com stay: Pebble's DNS points every name at
127.0.0.1, where the session's stateless http-01 responder answers."""

from __future__ import annotations

import ast
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.harness.ansible import REPO
from tests.harness.processes import stop_pidfile, wait_port

pytestmark = pytest.mark.integration
RUNTIME_PORT = 14643


def examples(module: str) -> str:
    tree = ast.parse((REPO / "plugins" / "modules" / f"{module}.py").read_text())
    [text] = [node.value.value for node in tree.body if isinstance(node, ast.Assign)
              and getattr(node.targets[0], "id", "") == "EXAMPLES"]
    return text


class ExampleRunner:
    def __init__(self, controller, pebble_server, tmp_path: Path):
        self.controller, self.tmp = controller, tmp_path
        self.rewrites = {
            "https://acme-v02.api.letsencrypt.org/directory": pebble_server.directory_url,
            "/etc/certops/account.key": controller.account["key_path"],
            "/etc/certops/old-account.key": str(tmp_path / "old-account.key"),
            "/etc/certops/team-account.key": str(tmp_path / "team-account.key"),
            "/etc/certops/team-account-2027.key": str(tmp_path / "team-account-2027.key"),
            "/var/www/html": str(tmp_path / "webroot"),
            "/etc/haproxy/certs": str(tmp_path / "haproxy-certs"),
            "/run/haproxy/admin.sock": str(tmp_path / "admin.sock"),
            "systemctl reload haproxy": "/bin/true",
            "address: 127.0.0.1, port: 443": f"address: 127.0.0.72, port: {RUNTIME_PORT}",
        }
        self.env = {"CERTOPS_ACME_STORE": str(tmp_path / "store")}

    def tasks(self, module: str) -> list[dict]:
        text = examples(module)
        for old, new in self.rewrites.items():
            text = text.replace(old, new)
        return yaml.safe_load(text)

    def run(self, name: str, tasks: list[dict], dump: str) -> dict:
        tasks = tasks + [{"name": "Keep what the examples registered", "ansible.builtin.copy": {
            "content": "{{ {'" + dump + "': " + dump + "} | to_json }}", "dest": str(self.tmp / f"{name}.json")}}]
        playbook = self.controller.playbook(name, tasks)
        play = json.loads(playbook.read_text())
        # Only the CA's certificate, which no example can know, comes from module_defaults.
        play[0]["module_defaults"] = {"group/certops.acme.acme": {
            "ca_path": self.controller.pebble.ca_cert, "acme_directory": self.controller.pebble.directory_url,
            "account_key_src": self.controller.account["key_path"]}}
        play[0]["handlers"] = [{"name": "reload haproxy", "ansible.builtin.debug": {"msg": "reload"}}]
        playbook.write_text(json.dumps(play))
        self.controller.run(playbook, check=True, env=self.env)
        return json.loads((self.tmp / f"{name}.json").read_text())[dump]


@pytest.fixture
def runner(controller, pebble_server, http01_responder, tmp_path):
    return ExampleRunner(controller, pebble_server, tmp_path)


def test_account_examples_create_deactivate_and_roll_over(runner, controller):
    # The examples deactivate and roll over accounts that must exist first.
    existing = [{"certops.acme.account": {"account_key_src": runner.rewrites[path], "account_key_create": True,
                                          "terms_agreed": True}, "register": "before"}
                for path in ("/etc/certops/old-account.key", "/etc/certops/team-account.key")]
    tasks = existing + runner.tasks("account")
    account = runner.run("account-examples", tasks, "acme_account")
    assert account["account_url"].startswith("https://127.0.0.1")
    rolled = runner.run("account-examples-again", runner.tasks("account")[-1:], "rolled")
    assert rolled["changed"] is False, "the rollover example is not idempotent"


def test_certificate_examples_issue_both_certificates(runner):
    issued = runner.run("certificate-examples", runner.tasks("certificate"), "issued")
    assert {c["name"]: c["action"] for c in issued["certificates"]} == {
        "www.example.com": "issue", "api.example.com": "issue"}
    assert {c["name"]: c["key_type"] for c in issued["certificates"]}["api.example.com"] == "rsa2048"


def test_challenge_examples_answer_webroot_challenges_and_clean_up(runner, tmp_path):
    (tmp_path / "webroot").mkdir()
    prepared = runner.run("challenge-examples", runner.tasks("challenge"), "prepared")
    assert [c["type"] for c in prepared["challenges"]] == ["http-01"]
    assert (tmp_path / "store" / "certificates" / "intranet.example.com" / "current").exists()
    tokens = tmp_path / "webroot" / ".well-known" / "acme-challenge"
    assert tokens.is_dir() and not list(tokens.iterdir()), "challenge files left in the webroot"


def test_install_and_haproxy_runtime_examples_on_a_running_haproxy(runner, tmp_path):
    names = ["app.example.com", "api.example.com"]
    runner.run("issue-for-install", [{"certops.acme.certificate": {
        "certificates": [{"name": n, "domains": [n]} for n in names]}, "register": "issued"}], "issued")
    runner.run("install-examples", runner.tasks("install"), "inventory_hostname")
    pem = tmp_path / "haproxy-certs" / "app.example.com" / "haproxy.pem"
    assert pem.exists()
    config = tmp_path / "haproxy.cfg"
    config.write_text(f"""global
    stats socket {tmp_path / 'admin.sock'} level admin
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend tls
    bind 127.0.0.72:{RUNTIME_PORT} ssl crt {pem}
    http-request return status 200
""")
    pidfile = tmp_path / "haproxy.pid"
    subprocess.run(["haproxy", "-W", "-D", "-f", str(config), "-p", str(pidfile)], check=True)
    try:
        wait_port("127.0.0.72", RUNTIME_PORT, pidfile=pidfile)
        swap = runner.run("runtime-examples", runner.tasks("haproxy_runtime_cert"), "swap")
        assert swap["updated"] == [str(pem)] and swap["needs_reload"] == []
        served = runner.run("served-examples", runner.tasks("served"), "served")
        assert [(s["certificate"], s["state"]) for s in served["served"]] == [("app.example.com", "match")]
        assert served["differing"] == []
    finally:
        stop_pidfile(pidfile)


def test_revoke_examples_revoke_and_replace(runner):
    runner.run("issue-for-revoke", [{"certops.acme.certificate": {
        "certificates": [{"name": "www.example.com", "domains": ["www.example.com"]}]}, "register": "issued"}],
        "issued")
    replaced = runner.run("revoke-examples", runner.tasks("revoke"), "replaced")
    [entry] = replaced["certificates"]
    assert entry["action"] == "renew" and "revoked" in entry["reason"]
