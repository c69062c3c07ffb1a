"""Pull delivery's settings (filter/pull_delivery.py): each value that reaches the agent's
configuration, a unit file or a command line is checked and named."""

from __future__ import annotations

import pytest

from ansible_collections.certops.acme.plugins.filter.pull_delivery import pull_apply_config, pull_problems

GOOD = {"agent_binary": "/usr/bin/bao", "admin_token": "s.x", "dir": "/etc/certops-pull/edge", "refresh": "5m",
        "vault_address": "https://bao1.example.net:8200", "approle_mount": "approle",
        "unit_path": "/etc/systemd/system/certops-pull-edge.service", "status_command": "systemctl is-active x",
        "restart_command": "systemctl restart x", "rotate_secret_id": False, "first_apply_timeout": 60}
VAULT = {"store": "vault", "vault_url": ["https://bao1.example.net:8200"]}


def test_good_settings_have_no_problems():
    assert pull_problems(GOOD, "edge", VAULT) == []
    assert pull_problems({**GOOD, "unit_path": ""}, "edge", VAULT) == []


@pytest.mark.parametrize("change, named", [
    ({"dir": "etc/pull"}, "certops_edge_pull.dir"),
    ({"dir": "/etc/pull\n}"}, "certops_edge_pull.dir"),
    ({"refresh": "5 minutes"}, "certops_edge_pull.refresh"),
    ({"vault_address": "https://bao\"}"}, "certops_edge_pull.vault_address"),
    ({"vault_address": ""}, "certops_edge_pull.vault_address"),
    ({"approle_mount": "app role"}, "certops_edge_pull.approle_mount"),
    ({"unit_path": "/etc/systemd/x y.service"}, "certops_edge_pull.unit_path"),
    ({"admin_token": ""}, "certops_edge_pull.admin_token"),
    ({"restart_command": ""}, "certops_edge_pull.restart_command"),
    ({"first_apply_timeout": "soon"}, "certops_edge_pull.first_apply_timeout"),
    ({"refesh": "1m"}, "unknown setting(s) refesh"),
])
def test_each_bad_setting_is_named(change, named):
    problems = pull_problems({**GOOD, **change}, "edge", VAULT)
    assert len(problems) == 1 and named in problems[0], problems


def test_pull_needs_the_shared_store():
    problems = pull_problems(GOOD, "passthrough", {})
    assert problems == ["certops_passthrough_delivery: pull needs the shared store (store: vault in "
                        "certops_passthrough_store); deliver by push with the file store"]


def test_the_apply_configuration_names_each_installed_certificates_domains():
    wanted = [{"name": "www", "domains": ["www.example.com", "example.com"]}, {"name": "old", "domains": ["o.example"]}]
    config = pull_apply_config(GOOD, {"dest": "/etc/haproxy/certops", "proxy": "haproxy"}, wanted, ["www"])
    assert config["certificates"] == {"www": {"domains": ["www.example.com", "example.com"]}}
    assert config["rendered"] == "/etc/certops-pull/edge/rendered/bundles.json" and config["proxy"] == "haproxy"
