"""A host's services in the certificates role's list: what is ordered is split from what the
host does (serve, reload), and every value that reaches a command or a connection is checked."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.certops.acme.plugins.filter.services import (
    certificate_services, certificate_specs, command_error, reloads_for, with_formats)

MAIL = {"name": "mail", "domains": ["*.example.com", "mail.example.com"],
        "serve": [{"port": 25, "starttls": "smtp"}, {"port": 465, "address": "192.0.2.7"}],
        "reload": "systemctl reload postfix"}


def test_the_order_never_sees_the_hosts_own_keys():
    assert certificate_specs([MAIL, {"name": "plain", "domains": ["a.example"]}]) == [
        {"name": "mail", "domains": ["*.example.com", "mail.example.com"]}, {"name": "plain", "domains": ["a.example"]}]


def test_listeners_and_reloads_with_their_defaults():
    services = certificate_services([MAIL, {"name": "web", "domains": ["web.example"], "reload": ["kill", "-HUP", "7"]}])
    assert services["checks"] == [
        {"certificate": "mail", "server_name": "mail.example.com", "address": "127.0.0.1", "port": 25, "starttls": "smtp"},
        {"certificate": "mail", "server_name": "mail.example.com", "address": "192.0.2.7", "port": 465,
         "starttls": "none"}]
    assert services["reloads"] == {"mail": "systemctl reload postfix", "web": "kill -HUP 7"}


def test_each_reload_command_runs_once_for_the_certificates_given():
    reloads = {"a": "postfix reload", "b": "postfix reload", "c": "dovecot reload"}
    assert reloads_for(reloads, ["b", "a", "x"]) == ["postfix reload"]
    assert reloads_for(reloads, ["a", "c"]) == ["dovecot reload", "postfix reload"]
    assert reloads_for(reloads, []) == []


@pytest.mark.parametrize("change, field", [
    ({"reload": "systemctl reload postfix; rm -rf /"}, r"certops_certificates_list\[0\]\.reload"),
    ({"reload": "kill -HUP $(cat /run/x.pid)"}, r"\[0\]\.reload"),
    ({"reload": "a `b`"}, r"\[0\]\.reload"),
    ({"reload": ["ok", "two words"]}, r"\[0\]\.reload"),
    ({"reload": 5}, r"\[0\]\.reload"),
    ({"serve": [{"port": 0}]}, r"\[0\]\.serve\[0\]\.port"),
    ({"serve": [{"port": "25; x"}]}, r"\[0\]\.serve\[0\]\.port"),
    ({"serve": [{"port": True}]}, r"\[0\]\.serve\[0\]\.port"),
    ({"serve": [{"port": 25, "address": "mail.example.com"}]}, r"\[0\]\.serve\[0\]\.address"),
    ({"serve": [{"port": 25, "starttls": "ftp"}]}, r"\[0\]\.serve\[0\]\.starttls"),
    ({"serve": [{"port": 25, "server_name": "a b"}]}, r"\[0\]\.serve\[0\]\.server_name"),
    ({"serve": [{"port": 25, "tls": True}]}, r"\[0\]\.serve\[0\]"),
    ({"serve": "25"}, r"\[0\]\.serve"),
    ({"serve": [{"port": 25}] * 33}, r"\[0\]\.serve"),
])
def test_a_bad_value_fails_naming_its_field(change, field):
    with pytest.raises(AnsibleFilterError, match=field):
        certificate_services([{**MAIL, **change}])


def test_a_failed_command_is_one_line_naming_it():
    assert command_error({"cmd": ["postfix", "reload"], "rc": 1, "stderr": "x\npostfix: fatal: no"}) == \
        "postfix reload (rc 1): postfix: fatal: no"
    assert command_error({"item": "nosuch", "rc": 2, "msg": "[Errno 2] No such file"}) == \
        "nosuch (rc 2): [Errno 2] No such file"


def test_the_install_task_gets_each_certificates_formats_and_the_order_never_does():
    entries = [{"name": "app", "domains": ["app.example"], "formats": [{"type": "der"}]},
               {"name": "web", "domains": ["web.example"]}]
    assert certificate_specs(entries)[0] == {"name": "app", "domains": ["app.example"]}
    assert with_formats(["app", "web"], entries) == [{"name": "app", "formats": [{"type": "der"}]}, "web"]
    assert with_formats([{"name": "app", "domains": ["app.example"]}], entries) == [
        {"name": "app", "domains": ["app.example"], "formats": [{"type": "der"}]}]
