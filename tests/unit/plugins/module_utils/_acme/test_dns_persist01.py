"""dns-persist-01 records as Boulder reads them (va/dns_persist.go): parsing, bounds, which
accounturi binds the account, and that no challenge is answered before its record is there.
The DNS is a dictionary here (the real BIND is in integration/test_dns_persist.py)."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.certops.acme.plugins.module_utils._acme.challenges import PendingChallenge
from ansible_collections.certops.acme.plugins.module_utils._acme.challenges.dns_persist01 import (
    PersistAccount, PersistCheck, PersistResponder, hashed_account_uri, parse_record, persist_until)
from ansible_collections.certops.acme.plugins.module_utils._acme.errors import CertopsError, PersistRecordMissing
from ansible_collections.certops.acme.plugins.module_utils._acme.names import Identifier
from ansible_collections.certops.acme.plugins.module_utils._acme.waiting import Deadline

ACCOUNT = "https://ca.example/acme/acct/42"
NOW = datetime.datetime(2026, 12, 7, tzinfo=datetime.timezone.utc)
PLAIN = PersistAccount({"meta": {}}, "thumb", ACCOUNT)


class Txt:
    """The TXT records of a zone, as Lookup.txt answers them."""

    def __init__(self, records: dict[str, list[str]]) -> None:
        self.records = records

    def txt(self, name: str) -> list[str]:
        return self.records.get(name, [])


@pytest.mark.parametrize("text,issuer,params", [
    (f"ca.example; accounturi={ACCOUNT}", "ca.example", {"accounturi": ACCOUNT}),
    (f" CA.Example. ;\tAccountURI={ACCOUNT} ; Policy=Wildcard;persistUntil=1700000000;other=x",
     "ca.example", {"accounturi": ACCOUNT, "policy": "Wildcard", "persistuntil": "1700000000"}),
])
def test_a_well_formed_record_parses_with_case_insensitive_tags_and_unknown_ones_ignored(text, issuer, params):
    assert parse_record(text) == (issuer, params, "")


@pytest.mark.parametrize("text,why", [
    ("ca.example", "no accounturi"),
    ("ca.example; accounturi=", "no accounturi"),
    (f"ca.example; accounturi={ACCOUNT};", "not tag=value"),
    (f"ca.example; accounturi={ACCOUNT}; policy", "not tag=value"),
    (f"ca.example; accounturi={ACCOUNT}; accounturi={ACCOUNT}", "names accounturi twice"),
    (f"ca.example; accounturi={ACCOUNT}; persistUntil=²", "non-ASCII"),
    ("ca.example; accounturi=https://ca.example/a b", "spaces"),
    ("ca.example; accounturi=" + "a" * 2000, "longer than"),
])
def test_a_malformed_record_says_why(text, why):
    assert why in parse_record(text)[2]


@pytest.mark.parametrize("value,ends", [
    ("1700000000", datetime.datetime(2023, 11, 14, 22, 13, 20, tzinfo=datetime.timezone.utc)),
    ("9" * 18, datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.timezone.utc)),  # never ends
    ("9" * 19, None), ("1" + "0" * 400, None), ("-5", None), ("²", None), ("", None),
])
def test_persist_until_is_bounded_and_never_raises(value, ends):
    assert persist_until(value) == ends


def test_a_ca_without_an_account_hash_prefix_is_given_the_plain_account_url():
    check = PersistCheck(Txt({"_validation-persist.www.example": [f"ca.example; accounturi={ACCOUNT}"]}))
    assert check.missing([Identifier("dns", "www.example")], ["ca.example"], PLAIN, NOW) == []
    [missing] = check.missing([Identifier("dns", "api.example")], ["ca.example"], PLAIN, NOW)
    assert missing.endswith(f'publish _validation-persist.api.example. IN TXT "ca.example; accounturi={ACCOUNT}"')


def test_a_hashed_record_does_not_bind_where_the_ca_wants_the_plain_url_and_the_other_way_round():
    hashed = PersistAccount({"meta": {"accountHashPrefix": "https://ca.example/h/"}}, "thumb", ACCOUNT)
    uri = hashed_account_uri("https://ca.example/h/", "www.example", "thumb", ACCOUNT)
    check = PersistCheck(Txt({"_validation-persist.www.example": [f"ca.example; accounturi={uri}"]}))
    assert check.missing([Identifier("dns", "www.example")], ["ca.example"], hashed, NOW) == []
    [missing] = check.missing([Identifier("dns", "www.example")], ["ca.example"], PLAIN, NOW)
    assert "accounturi is for another account" in missing


def test_without_issuer_names_in_the_directory_the_check_waits_for_the_challenge():
    check = PersistCheck(Txt({}))
    check.check("www", [Identifier("dns", "www.example")], PLAIN, NOW)  # nothing to judge yet
    named = PersistAccount({"meta": {"issuerDomainNames": ["ca.example"]}}, "thumb", ACCOUNT)
    with pytest.raises(PersistRecordMissing, match="nothing was ordered"):
        check.check("www", [Identifier("dns", "www.example")], named, NOW)
    with pytest.raises(CertopsError, match="needs the account URL"):
        check.check("www", [Identifier("dns", "www.example")], PersistAccount({}, "thumb", None), NOW)


class FakeCa:
    """What the responder asks of the batch's CaClient."""

    thumbprint = "thumb"
    account_url = ACCOUNT

    def connected(self, deadline):
        return self

    def directory(self, deadline):
        return {"meta": {}}


def challenge(certificate: str, name: str, issuers=("ca.example",)) -> PendingChallenge:
    return PendingChallenge(certificate, Identifier("dns", name), "dns-persist-01", f"https://ca.example/c/{name}",
                            "", "", f"https://ca.example/a/{name}", issuers=tuple(issuers))


def test_the_responder_fails_only_the_certificates_whose_records_are_missing_against_the_challenge_issuers():
    records = Txt({"_validation-persist.www.example": [f"ca.example; accounturi={ACCOUNT}"],
                   "_validation-persist.api.example": [f"other-ca.example; accounturi={ACCOUNT}"]})
    responder = PersistResponder(PersistCheck(records), FakeCa(), lambda: NOW)  # type: ignore[arg-type]
    failed = responder.deploy([challenge("www", "www.example"), challenge("api", "api.example"),
                               challenge("other", "api.example", issuers=("other-ca.example",))],
                              Deadline(10, "test"))
    assert list(failed) == ["api"]
    assert "no record names this CA" in failed["api"] and "no challenge was answered" in failed["api"]


def test_a_pending_challenge_keeps_its_issuers_through_a_pending_record():
    original = challenge("www", "www.example")
    assert PendingChallenge.from_dict(original.to_dict()) == original
