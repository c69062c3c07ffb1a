"""Which profile an order carries, decided from the CA's directory before anything is ordered."""

from __future__ import annotations

import pytest

from ansible_collections.certops.acme.plugins.module_utils._acme.names import normalize_names
from ansible_collections.certops.acme.plugins.module_utils._acme.errors import InputError, OrderError
from ansible_collections.certops.acme.plugins.module_utils._acme.orders import OrderRequest, order_profile
from ansible_collections.certops.acme.plugins.module_utils._acme.spec import parse_profile

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


def preferring(*names: str, profile: str) -> OrderRequest:
    return OrderRequest("cert", normalize_names(list(names)), b"", profile=profile, profile_preferred=True)


def test_a_preferred_profile_is_ordered_where_offered_and_the_cas_choice_elsewhere():
    assert order_profile(preferring("www.example.com", profile="tlsserver"), LETS_ENCRYPT) == "tlsserver"
    assert order_profile(preferring("www.example.com", profile="tlsserver"), NO_PROFILES) is None
    assert order_profile(preferring("www.example.com", profile="tlsserver"), {}) is None
    # An IP certificate whose preference is missing falls back to the IP rule, not to nothing.
    assert order_profile(preferring("192.0.2.10", profile="tlsserver"),
                         {"meta": {"profiles": {"shortlived": "6 days"}}}) == "shortlived"


@pytest.mark.parametrize("given, expected", [
    ("tlsserver", ("tlsserver", False)), ({"prefer": "tlsserver"}, ("tlsserver", True)), (None, (None, False)),
    ("", (None, False))])
def test_the_profile_option_is_a_name_or_a_preference(given, expected):
    assert parse_profile(given, "certificates[0].profile") == expected


@pytest.mark.parametrize("bad", [{"prefer": "x", "require": "y"}, {"want": "x"}, ["tlsserver"], 5,
                                 {"prefer": None}, "tls server", "../x", "x" * 65, {"prefer": "a\nb"}])
def test_a_bad_profile_names_the_field(bad):
    with pytest.raises(InputError, match=r"certificates\[0\]\.profile"):
        parse_profile(bad, "certificates[0].profile")
