"""CNAME following and zone discovery over a table of records standing in for DNS (the same
lookups run against BIND and PowerDNS in tests/integration/test_dns_providers.py), and the
lexicon provider's masking of credentials."""

from __future__ import annotations

import types

import pytest

from ansible_collections.certops.acme.plugins.module_utils._acme.challenges.dns01 import Dns01Responder
from ansible_collections.certops.acme.plugins.module_utils._acme.challenges.lexicon import LexiconProvider, provider_options
from ansible_collections.certops.acme.plugins.module_utils._acme.dns_lookup import MAX_CNAME_DEPTH, Lookup
from ansible_collections.certops.acme.plugins.module_utils._acme.errors import CertopsError, InputError


def table_lookup(cnames: dict[str, str], fail: bool = False) -> Lookup:
    lookup = Lookup()
    asked = []

    def answer(name, rdtype):
        asked.append(name)
        if fail:
            raise CertopsError(f"dns-01: cannot look up {name} {rdtype}: timed out")
        target = cnames.get(name.rstrip("."))
        if target is None:
            return None
        rdata = types.SimpleNamespace(target=types.SimpleNamespace(to_text=lambda t=target: t + "."))
        return types.SimpleNamespace(rrset=[rdata])
    lookup.answer = answer  # type: ignore[method-assign]
    lookup.asked = asked  # type: ignore[attr-defined]
    return lookup


def test_a_chain_is_followed_to_its_end_and_a_name_without_one_stays():
    lookup = table_lookup({"_acme-challenge.www.example.com": "hop.example.com", "hop.example.com": "www.acme.example.net"})
    assert lookup.cname_target("_acme-challenge.www.example.com") == "www.acme.example.net"
    assert lookup.cname_target("_acme-challenge.api.example.com") == "_acme-challenge.api.example.com"


def test_a_loop_and_a_chain_too_long_are_refused_naming_the_start():
    looping = table_lookup({"_acme-challenge.a.example": "b.example", "b.example": "_acme-challenge.a.example"})
    with pytest.raises(CertopsError, match=r"from _acme-challenge\.a\.example loops \(_acme-challenge\.a\.example -> "
                                           r"b\.example -> _acme-challenge\.a\.example\)"):
        looping.cname_target("_acme-challenge.a.example")
    chain = {f"n{i}.example": f"n{i + 1}.example" for i in range(MAX_CNAME_DEPTH + 5)}
    with pytest.raises(CertopsError, match="longer than 10"):
        table_lookup(chain).cname_target("n0.example")


def test_an_unanswerable_lookup_writes_at_the_name_and_stops_asking_for_the_batch():
    lookup = table_lookup({}, fail=True)
    responder = Dns01Responder(provider=None, cnames=lookup)  # type: ignore[arg-type]
    assert responder.record_target("_acme-challenge.a.example") == "_acme-challenge.a.example"
    assert responder.record_target("_acme-challenge.b.example") == "_acme-challenge.b.example"
    assert lookup.asked == ["_acme-challenge.a.example."], "asked once, then not again"
    assert "timed out" in responder.warnings[0] and len(responder.warnings) == 1


def test_lexicon_errors_never_carry_the_options_values():
    provider = LexiconProvider("powerdns", {"auth_token": "s3cr3t-token", "pdns_server": "http://pdns:8081"},
                               zone="example.com")
    assert provider._masked("401 for http://pdns:8081/api?key=s3cr3t-token") == "401 for ********/api?key=********"
    assert "pdns_server" in provider_options("powerdns")


def test_lexicon_errors_never_carry_credentials_given_through_the_environment(monkeypatch):
    """AWX's lexicon credential types pass credentials as LEXICON_<PROVIDER>_<OPTION>, which
    lexicon reads itself: they are masked like the task's options."""
    monkeypatch.setenv("LEXICON_POWERDNS_AUTH_TOKEN", "env-s3cr3t")
    monkeypatch.setenv("LEXICON_POWERDNS_PDNS_SERVER", "http://admin:env-pass@pdns:8081")
    provider = LexiconProvider("powerdns", {}, zone="example.com")
    masked = provider._masked("401 for http://admin:env-pass@pdns:8081/api with X-API-Key env-s3cr3t")
    assert "env-s3cr3t" not in masked and "env-pass" not in masked, masked


@pytest.mark.parametrize("name", ["NoSuch", "../etc", "nosuchdns"])
def test_a_provider_lexicon_lacks_or_a_bad_name_is_an_input_error(name):
    with pytest.raises(InputError, match=r"^dns_lexicon\.provider: "):
        LexiconProvider(name, {})


def test_without_dns_lexicon_the_error_gives_the_pip_command(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_lexicon(name, *args, **kwargs):
        if name == "lexicon" or name.startswith("lexicon."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_lexicon)
    import importlib
    monkeypatch.setattr(importlib, "import_module", lambda name, *a: no_lexicon(name))
    with pytest.raises(InputError, match=r"dns_provider: lexicon needs the Python package dns-lexicon .*-m pip install "
                                         r"dns-lexicon"):
        LexiconProvider("powerdns", {})
