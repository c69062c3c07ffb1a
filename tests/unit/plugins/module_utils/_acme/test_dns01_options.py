"""build_dns01: the certificate task's dns_* options and dns_providers to one router."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.certops.acme.plugins.module_utils._acme.challenges import PendingChallenge, dns01
from ansible_collections.certops.acme.plugins.module_utils._acme.challenges.dns01 import Rfc2136Provider
from ansible_collections.certops.acme.plugins.module_utils._acme.challenges.dns01_options import build_dns01
from ansible_collections.certops.acme.plugins.module_utils._acme.errors import InputError
from ansible_collections.certops.acme.plugins.module_utils._acme.names import Identifier
from ansible_collections.certops.acme.plugins.module_utils._acme.spec import parse_specs
from ansible_collections.certops.acme.plugins.module_utils._acme.waiting import Deadline

TASK_DEFAULTS = {"dns_follow_cname": True, "dns_propagation_timeout": 120, "dns_resolvers": None,
                 "dns_propagation": "check", "dns_propagation_wait": 60}
RFC2136 = {"server": "192.0.2.53", "port": 5353, "key_name": "certops", "key_secret": "c2VjcmV0",
           "key_algorithm": "hmac-sha256"}


class Hook:
    """Stands in for plugin_utils' HookProvider (which starts a process): records its path."""

    def __init__(self, path: str) -> None:
        self.path = path

    def add_txt(self, record_name: str, value: str) -> None:
        raise AssertionError("not called while building")

    def delete_txt(self, record_name: str, value: str) -> None:
        raise AssertionError("not called while building")


def specs(*entries: dict[str, Any]):
    parsed, failures = parse_specs(list(entries))
    assert not failures
    return parsed


def build(args: dict[str, Any], *entries: dict[str, Any]):
    return build_dns01({**TASK_DEFAULTS, **args}, specs(*entries), hook=Hook)


@pytest.fixture(autouse=True)
def no_rfc2136_environment(monkeypatch):
    for variable in ("SERVER", "PORT", "KEY_NAME", "KEY_SECRET", "KEY_ALGORITHM", "ZONE"):
        monkeypatch.delenv(f"CERTOPS_DNS_RFC2136_{variable}", raising=False)


def test_no_dns01_and_no_provider_builds_nothing():
    assert build({}, {"name": "www", "domains": ["www.example.test"]}) is None


def test_a_wildcard_without_a_provider_names_dns_provider():
    with pytest.raises(InputError, match=r"^dns_provider: certificates use dns-01"):
        build({}, {"name": "wild", "domains": ["*.example.test"]})


def test_rfc2136_follows_cnames_at_its_own_server_unless_resolvers_are_given():
    router = build({"dns_provider": "rfc2136", "dns_rfc2136": RFC2136}, {"name": "wild", "domains": ["*.example.test"]})
    responder = router.responders[""]
    assert isinstance(responder.provider, Rfc2136Provider) and responder.provider.server == "192.0.2.53"
    assert list(responder.cnames.servers) == [("192.0.2.53", 5353)]
    router = build({"dns_provider": "rfc2136", "dns_rfc2136": RFC2136, "dns_resolvers": ["198.51.100.1"]},
                   {"name": "wild", "domains": ["*.example.test"]})
    assert list(router.responders[""].cnames.servers) == [("198.51.100.1", 53)]
    router = build({"dns_provider": "rfc2136", "dns_rfc2136": RFC2136, "dns_follow_cname": False},
                   {"name": "wild", "domains": ["*.example.test"]})
    assert router.responders[""].cnames is None


def test_rfc2136_without_its_key_names_the_missing_field():
    with pytest.raises(InputError, match=r"^dns_rfc2136.key_secret: is required"):
        build({"dns_provider": "rfc2136", "dns_rfc2136": {k: v for k, v in RFC2136.items() if k != "key_secret"}},
              {"name": "wild", "domains": ["*.example.test"]})


def test_named_providers_route_each_certificate_and_inherit_the_task_settings():
    router = build({"dns_provider": "hook", "dns_hook": "/usr/local/bin/task-hook", "dns_propagation_timeout": 30,
                    "dns_providers": {"inside": {"provider": "hook", "hook": "/usr/local/bin/inside-hook"}}},
                   {"name": "public", "domains": ["*.example.test"]},
                   {"name": "private", "domains": ["*.corp.example.test"], "dns": "inside"})
    assert router.choice == {"public": "", "private": "inside"}
    assert router.responders[""].provider.path == "/usr/local/bin/task-hook"
    assert router.responders["inside"].provider.path == "/usr/local/bin/inside-hook"
    assert router.responders["inside"].propagation_timeout == 30.0


def test_a_certificate_naming_an_undefined_provider_lists_the_defined_ones():
    with pytest.raises(InputError, match=r"^certificates\[\].dns: names the DNS provider 'other'.*defined: inside"):
        build({"dns_providers": {"inside": {"provider": "hook", "hook": "/x"}}},
              {"name": "wild", "domains": ["*.example.test"], "dns": "other"})


def test_a_named_providers_mistakes_carry_its_name():
    with pytest.raises(InputError, match=r"^dns_providers.inside: unknown key\(s\) hookk"):
        build({"dns_providers": {"inside": {"provider": "hook", "hookk": "/x"}}},
              {"name": "wild", "domains": ["*.example.test"], "dns": "inside"})
    with pytest.raises(InputError, match=r"^dns_providers.inside: dns_hook: is required"):
        build({"dns_providers": {"inside": {"provider": "hook"}}},
              {"name": "wild", "domains": ["*.example.test"], "dns": "inside"})


def test_the_wait_mode_is_chosen_per_task_or_per_named_provider_and_bounded():
    router = build({"dns_provider": "hook", "dns_hook": "/t", "dns_propagation": "wait", "dns_propagation_wait": 5,
                    "dns_providers": {"inside": {"provider": "hook", "hook": "/i", "propagation": "check"},
                                      "same": {"provider": "hook", "hook": "/s"}}},
                   {"name": "public", "domains": ["*.example.test"]},
                   {"name": "private", "domains": ["*.corp.example.test"], "dns": "inside"},
                   {"name": "other", "domains": ["*.other.example.test"], "dns": "same"})
    assert router.responders[""].propagation_wait == 5.0
    assert router.responders["inside"].propagation_wait is None  # its own check
    assert router.responders["same"].propagation_wait == 5.0  # the task's
    for wait in (-1, 3601, "soon"):
        with pytest.raises(InputError, match=r"^dns_propagation_wait: .* is not whole seconds from 0 to 3600"):
            build({"dns_provider": "hook", "dns_hook": "/t", "dns_propagation": "wait", "dns_propagation_wait": wait},
                  {"name": "public", "domains": ["*.example.test"]})


class Recording:
    """A provider that records what it is asked to publish."""

    def __init__(self) -> None:
        self.added: list[tuple[str, str]] = []

    def add_txt(self, record_name: str, value: str) -> None:
        self.added.append((record_name, value))

    def delete_txt(self, record_name: str, value: str) -> None:
        self.added.remove((record_name, value))


def test_the_wait_mode_waits_its_seconds_and_asks_no_dns_server(monkeypatch):
    def no_query(*args):
        raise AssertionError("a DNS server was asked in wait mode")
    monkeypatch.setattr(dns01, "visible_at", no_query)
    slept: list[float] = []
    monkeypatch.setattr(dns01.time, "sleep", slept.append)
    provider = Recording()
    responder = dns01.Dns01Responder(provider, [("192.0.2.53", 53)], propagation_wait=7.0)
    challenge = PendingChallenge("www", Identifier("dns", "www.example.test"), "dns-01", "https://ca/c", "tok",
                                 "tok.thumb", "https://ca/a")
    assert responder.deploy([challenge], Deadline(600, "test")) == {}
    assert slept == [7.0] and provider.added == [("_acme-challenge.www.example.test", challenge.dns_record_value)]
    slept.clear()  # a deadline closer than the wait bounds it
    assert responder.deploy([challenge], Deadline(3, "test")) == {} and 1.5 < slept[0] <= 2.0
