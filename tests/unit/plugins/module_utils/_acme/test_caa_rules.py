"""CAA pre-flight rules (RFC 8659, RFC 8657) over a table of records standing in for DNS; the
lookups themselves run against BIND in tests/integration/test_caa.py (this file has its own name: pytest imports test files by basename)."""

from __future__ import annotations

import pytest

from ansible_collections.certops.acme.plugins.module_utils._acme.caa import (
    CaaForbidden, CaaPreflight, CaaRecord, LookupUndecided)
from ansible_collections.certops.acme.plugins.module_utils._acme.dns_lookup import parse_resolvers
from ansible_collections.certops.acme.plugins.module_utils._acme.errors import InputError
from ansible_collections.certops.acme.plugins.module_utils._acme.names import normalize_names

CA = ("letsencrypt.org",)
ACCOUNT = "https://acme.example/acct/1"


def zone(records: dict[str, list[str]], undecided: tuple[str, ...] = ()):
    asked: list[str] = []

    def query(name: str) -> list[CaaRecord]:
        asked.append(name)
        if name in undecided:
            raise LookupUndecided(name)
        out = []
        for text in records.get(name, []):
            flags, tag, value = text.split(" ", 2)
            out.append(CaaRecord(int(flags), tag, value.strip('"')))
        return out
    return CaaPreflight(query), asked


def check(preflight, *names, challenge="http-01", account=ACCOUNT, ca=CA):
    preflight.check("cert", normalize_names(list(names)), ca, challenge, account)


def test_the_nearest_record_set_walking_up_decides_and_each_name_is_asked_once():
    preflight, asked = zone({"example.com": ['0 issue "letsencrypt.org"'],
                             "other.example.com": ['0 issue "other-ca.example"']})
    check(preflight, "www.example.com", "a.b.example.com")
    with pytest.raises(CaaForbidden) as raised:
        check(preflight, "deep.other.example.com")
    message = str(raised.value)
    assert "CAA at other.example.com allows only '0 issue \"other-ca.example\"'" in message
    assert "deep.other.example.com" in message and "nothing was ordered" in message
    assert asked.count("example.com") == 1 and "com" not in asked, "stops at the first set found, cached"


def test_no_record_anywhere_or_only_iodef_allows_any_ca():
    preflight, asked = zone({"example.com": ['0 iodef "mailto:sec@example.com"']})
    check(preflight, "www.example.com")
    check(zone({})[0], "www.example.net")


def test_an_empty_issuer_grants_no_one():
    preflight, _unused = zone({"example.com": ['0 issue ";"']})
    with pytest.raises(CaaForbidden, match="allows only '0 issue \";\"'"):
        check(preflight, "example.com")


def test_issuewild_governs_wildcards_and_only_them():
    preflight, _unused = zone({"example.com": ['0 issue "letsencrypt.org"', '0 issuewild ";"']})
    check(preflight, "example.com", "www.example.com", challenge="dns-01")
    with pytest.raises(CaaForbidden, match=r"issuewild.*\*\.example\.com"):
        check(preflight, "*.example.com", challenge="dns-01")
    only_issue, _unused = zone({"example.com": ['0 issue "letsencrypt.org"']})
    check(only_issue, "*.example.com", challenge="dns-01")


def test_account_and_validation_method_parameters_must_fit():
    preflight, _unused = zone({"example.com": [f'0 issue "letsencrypt.org; accounturi={ACCOUNT}; validationmethods=dns-01"']})
    check(preflight, "example.com", challenge="dns-01")
    with pytest.raises(CaaForbidden):
        check(preflight, "example.com", challenge="http-01")
    with pytest.raises(CaaForbidden):
        check(preflight, "example.com", challenge="dns-01", account="https://acme.example/acct/2")


def test_issuer_domains_compare_without_case_or_trailing_dot_and_one_grant_suffices():
    preflight, _unused = zone({"example.com": ['0 issue "other-ca.example"', '0 issue "LetsEncrypt.org."']})
    check(preflight, "example.com")


def test_an_unknown_critical_tag_forbids_and_an_unknown_plain_one_does_not():
    with pytest.raises(CaaForbidden, match="flagged critical"):
        check(zone({"example.com": ['128 tbs "x"', '0 issue "letsencrypt.org"']})[0], "example.com")
    check(zone({"example.com": ['0 tbs "x"', '0 issue "letsencrypt.org"']})[0], "example.com")


def test_undecided_dns_ip_addresses_and_a_ca_without_identities_are_left_to_the_ca():
    preflight, asked = zone({"example.com": ['0 issue ";"']}, undecided=("www.example.com",))
    check(preflight, "www.example.com")
    assert asked == ["www.example.com"], "an undecided answer ends the walk"
    forbidding, asked = zone({"example.com": ['0 issue ";"']})
    check(forbidding, "example.com", ca=[])
    check(forbidding, "192.0.2.1")
    assert asked == []


@pytest.mark.parametrize("text,expected", [("192.0.2.53", ("192.0.2.53", 53)), ("127.0.0.1:5353", ("127.0.0.1", 5353)),
                                           ("2001:db8::53", ("2001:db8::53", 53)), ("[::1]:5353", ("::1", 5353))])
def test_resolvers_parse(text, expected):
    assert parse_resolvers([text], "caa_resolvers") == [expected]


@pytest.mark.parametrize("text", ["ns1.example.com", "192.0.2.53:99999", "192.0.2.53\nx", "[::1]x", "", 53])
def test_bad_resolvers_are_named(text):
    with pytest.raises(InputError, match=r"caa_resolvers\[1\]"):
        parse_resolvers(["192.0.2.1", text], "caa_resolvers")


def test_every_name_is_judged_a_name_without_caa_does_not_end_the_check():
    """The first name has no CAA set anywhere up its tree; the second name's forbids this CA:
    the certificate is refused for the second name."""
    preflight, asked = zone({"locked.example": ['0 issue "other-ca.example"']})
    with pytest.raises(CaaForbidden, match=r"shop\.locked\.example"):
        check(preflight, "www.open.example", "shop.locked.example")
    assert "shop.locked.example" in asked and "locked.example" in asked
