import pytest

from ansible_collections.certops.acme.plugins.module_utils._acme.errors import InputError
from ansible_collections.certops.acme.plugins.module_utils._acme.names import (
    Identifier, check_challenge_fits, normalize_name, normalize_names)


def test_idn_is_converted_to_punycode_and_lowercased():
    assert normalize_name("Bücher.Example.COM") == Identifier("dns", "xn--bcher-kva.example.com")


def test_trailing_dot_is_dropped():
    assert normalize_name("www.example.com.").value == "www.example.com"


def test_wildcard_is_kept_as_left_most_label():
    ident = normalize_name("*.Example.com")
    assert ident.value == "*.example.com" and ident.is_wildcard


@pytest.mark.parametrize("bad", ["www.*.example.com", "*example.com", "a*.example.com", "*.*.example.com"])
def test_wildcard_anywhere_else_is_refused(bad):
    with pytest.raises(InputError, match="wildcard"):
        normalize_name(bad)


def test_wildcard_over_a_tld_is_refused():
    with pytest.raises(InputError, match="top-level"):
        normalize_name("*.com")


def test_ipv4_and_ipv6_become_ip_identifiers_in_canonical_form():
    assert normalize_name("192.0.2.10") == Identifier("ip", "192.0.2.10")
    assert normalize_name("2001:DB8:0:0::1") == Identifier("ip", "2001:db8::1")


@pytest.mark.parametrize("bad,needle", [
    ("", "empty"),
    ("   ", "empty"),
    ("under_score.example.com", "not a valid domain"),
    ("spa ce.example.com", "not a valid domain"),
    ("-lead.example.com", "example.com"),
    ("localhost", "single label"),
    ("a" * 64 + ".example.com", "63"),
])
def test_invalid_names_are_refused_with_the_reason(bad, needle):
    with pytest.raises(InputError) as caught:
        normalize_name(bad, "certificates[0].domains")
    assert needle in str(caught.value)
    assert str(caught.value).startswith("certificates[0].domains:")


def test_name_longer_than_253_is_refused():
    name = ".".join(["a" * 60] * 5) + ".com"  # 309 characters, every label valid
    with pytest.raises(InputError, match="253"):
        normalize_name(name)


def test_duplicates_after_normalisation_are_refused_naming_both():
    with pytest.raises(InputError, match="repeats"):
        normalize_names(["www.example.com", "WWW.example.com."])


def test_more_than_100_names_are_refused():
    with pytest.raises(InputError, match="at most 100"):
        normalize_names([f"n{i}.example.com" for i in range(101)])


def test_order_is_kept_so_the_first_name_becomes_the_cn():
    values = [i.value for i in normalize_names(["b.example.com", "a.example.com"])]
    assert values == ["b.example.com", "a.example.com"]


def test_wildcard_with_http01_is_a_clear_error():
    with pytest.raises(InputError, match="dns-01"):
        check_challenge_fits(normalize_names(["*.example.com"]), "http-01")


def test_ip_with_dns01_is_a_clear_error():
    with pytest.raises(InputError, match="IP"):
        check_challenge_fits(normalize_names(["192.0.2.1"]), "dns-01")
