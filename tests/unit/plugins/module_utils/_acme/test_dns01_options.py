"""build_dns01: the certificate task's dns_* options and dns_providers to one router."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.certops.acme.plugins.module_utils._acme.challenges.dns01 import Rfc2136Provider
from ansible_collections.certops.acme.plugins.module_utils._acme.challenges.dns01_options import build_dns01
from ansible_collections.certops.acme.plugins.module_utils._acme.errors import InputError
from ansible_collections.certops.acme.plugins.module_utils._acme.spec import parse_specs

TASK_DEFAULTS = {"dns_follow_cname": True, "dns_propagation_timeout": 120, "dns_resolvers": None}
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
