"""Which profile an order carries, decided from the CA's directory before anything is ordered."""

from __future__ import annotations

import pytest

from ansible_collections.certops.acme.plugins.module_utils._acme.names import normalize_names
from ansible_collections.certops.acme.plugins.module_utils._acme.errors import OrderError
from ansible_collections.certops.acme.plugins.module_utils._acme.orders import OrderRequest, order_profile

LETS_ENCRYPT = {"meta": {"profiles": {"classic": "90 days", "shortlived": "6 days", "tlsserver": "45 days"}}}
NO_SHORTLIVED = {"meta": {"profiles": {"classic": "90 days", "tlsserver": "45 days"}}}
NO_PROFILES = {"meta": {"termsOfService": "https://ca.example/tos"}}


def request(*names: str, profile: str | None = None) -> OrderRequest:
    return OrderRequest("cert", normalize_names(list(names)), b"", profile=profile)


@pytest.mark.parametrize("address", ["192.0.2.10", "2001:db8::10"])
def test_an_ip_certificate_without_a_profile_takes_shortlived_when_offered(address):
    assert order_profile(request(address), LETS_ENCRYPT) == "shortlived"
    assert order_profile(request("www.example.com", address), LETS_ENCRYPT) == "shortlived"


def test_a_dns_only_certificate_gets_no_profile_it_did_not_ask_for():
    assert order_profile(request("www.example.com"), LETS_ENCRYPT) is None


def test_an_ip_certificate_fails_before_ordering_when_the_ca_lists_profiles_without_shortlived():
    with pytest.raises(OrderError) as raised:
        order_profile(request("2001:db8::10", "192.0.2.10"), NO_SHORTLIVED)
    message = str(raised.value)
    assert "IP addresses (2001:db8::10, 192.0.2.10)" in message
    assert "it offers: classic, tlsserver" in message
    assert "set profile" in message


def test_a_ca_without_profiles_decides_itself():
    assert order_profile(request("192.0.2.10"), NO_PROFILES) is None
    assert order_profile(request("192.0.2.10"), {}) is None


def test_a_named_profile_wins_and_must_be_offered():
    assert order_profile(request("192.0.2.10", profile="classic"), NO_SHORTLIVED) == "classic"
    with pytest.raises(OrderError, match=r"profile 'shortlived' is not offered by this CA \(it offers: classic, tlsserver\)"):
        order_profile(request("www.example.com", profile="shortlived"), NO_SHORTLIVED)
    with pytest.raises(OrderError, match="its directory lists no profiles"):
        order_profile(request("www.example.com", profile="shortlived"), NO_PROFILES)
