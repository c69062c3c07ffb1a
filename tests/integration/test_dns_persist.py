"""dns-persist-01 against tests/harness/persist_ca.py: a scripted loopback CA that validates the
way Let's Encrypt's Boulder does (plain accounturi, issuer names in the challenge), or, with
hashed=True, like the later draft candidate (hashed accounturi, issuer names in the directory).
It stands in because no test CA here supports the challenge (Debian's Pebble is 2.4), and it
reads the records from a real BIND."""

from __future__ import annotations

import datetime
import json

import dns.name
import dns.query
import dns.tsigkeyring
import dns.update
import pytest

from tests.harness.bind import start_bind
from tests.harness.persist_ca import PersistCa, b64, hashed_uri

pytestmark = pytest.mark.integration
BIND_PORT, CA_PORT = 15359, 14820


@pytest.fixture(params=[False], ids=["boulder"])
def world(tmp_path, request):
    bind = start_bind(tmp_path / "bind", "127.0.0.1", BIND_PORT, zone="persist.test")
    ca = PersistCa("127.0.0.1", CA_PORT, ("127.0.0.1", BIND_PORT), hashed=request.param)
    yield bind, ca
    ca.stop()
    bind.stop()


def publish(bind, name: str, value: str) -> None:
    """What the DNS owner does once, by hand or with their own tooling."""
    keyring = dns.tsigkeyring.from_text({bind.key_name: bind.key_secret})
    update = dns.update.UpdateMessage("persist.test.", keyring=keyring, keyname=dns.name.from_text(bind.key_name),
                                      keyalgorithm=dns.name.from_text("hmac-sha256"))
    # A TXT string holds 255 octets; a longer value is several strings, joined by whoever reads it.
    update.replace(name + ".", 60, "TXT", " ".join(f'"{value[i:i + 255]}"' for i in range(0, len(value), 255)))
    assert dns.query.tcp(update, bind.address, port=bind.port, timeout=5).rcode() == 0


def run(controller, ca, certificates, **options):
    acme = {"acme_directory": ca.directory_url, "account_key_src": str(controller.work / "persist-account.key")}
    playbook = controller.playbook("persist", [
        {"certops.acme.account": {**acme, "account_key_create": True, "terms_agreed": True}},
        {"certops.acme.certificate": {**acme, "store_path": str(controller.store), "certificates": certificates,
                                      "dns_persist_experimental": True, "dns_resolvers": [f"127.0.0.1:{BIND_PORT}"],
                                      **options}, "register": "issued", "ignore_errors": True},
        {"ansible.builtin.copy": {"content": "{{ issued | to_json }}", "dest": str(controller.work / "issued.json")},
         "changed_when": False}])
    outcome = controller.run(playbook)
    issued = json.loads((controller.work / "issued.json").read_text())
    return outcome, issued, {c["name"]: c for c in issued.get("certificates", [])}


def test_the_record_to_publish_is_printed_then_the_published_record_serves_every_order(controller, world):
    """As Boulder: the issuer names come with the challenge, so the record is checked once the
    authorizations are there, and no challenge is answered without it (no failed validation)."""
    bind, ca = world
    certificates = [{"name": "www", "domains": ["www.persist.test"], "challenge": "dns-persist-01"},
                    {"name": "wild", "domains": ["*.persist.test"], "challenge": "dns-persist-01"}]
    _outcome, _issued, results = run(controller, ca, certificates)
    assert ca.validations == [], "a challenge was answered without its record"
    [account_url] = ca.accounts
    records = {}
    for name, label in (("www", "_validation-persist.www.persist.test"), ("wild", "_validation-persist.persist.test")):
        error = results[name]["error"]
        assert results[name]["action"] == "failed" and results[name]["failures"] == 0, "not a CA failure"
        assert f'publish {label}. IN TXT "ca.persist.test; accounturi={account_url}' in error, error
        assert "no challenge was answered" in error
        records[label] = error.split(f"publish {label}. IN TXT \"", 1)[1].split('"', 1)[0]
    assert records["_validation-persist.persist.test"].endswith("; policy=wildcard")

    for label, value in records.items():
        publish(bind, label, value)
    _outcome, _issued, results = run(controller, ca, certificates)
    assert [results[n]["action"] for n in ("www", "wild")] == ["issue", "issue"], results
    assert sorted(ca.validations) == ["persist.test: valid", "www.persist.test: valid"]

    # The record stays: a forced renewal needs no DNS change at all.
    _outcome, _issued, results = run(controller, ca, [dict(certificates[0], force=True)])
    assert results["www"]["action"] == "renew" and len(ca.validations) == 3


def test_a_record_for_another_account_or_an_expired_one_does_not_count_and_one_ending_soon_warns(controller, world):
    bind, ca = world
    certificate = [{"name": "www", "domains": ["www.persist.test"], "challenge": "dns-persist-01"}]
    _outcome, _issued, results = run(controller, ca, certificate)
    wanted = results["www"]["error"].split('IN TXT "', 1)[1].split('"', 1)[0]
    label = "_validation-persist.www.persist.test"

    publish(bind, label, wanted + "0")  # another account's URL
    _outcome, _issued, results = run(controller, ca, certificate)
    assert "the record's accounturi is for another account or key" in results["www"]["error"]

    past = int(datetime.datetime.now().timestamp()) - 60
    publish(bind, label, f"{wanted}; persistUntil={past}")
    _outcome, _issued, results = run(controller, ca, certificate)
    assert "(persistUntil)" in results["www"]["error"] and ca.validations == []

    # Values a hostile or careless DNS owner may publish fail the name with a reason, not the task.
    for value, why in (("²", "persistuntil value holds spaces, controls or non-ASCII"),
                       ("1" + "0" * 20, "is not a UNIX time"), ("1" + "0" * 400, "is not a UNIX time")):
        publish(bind, label, f"{wanted}; persistUntil={value}")
        _outcome, _issued, results = run(controller, ca, certificate)
        assert why in results["www"]["error"], results["www"]["error"]
    assert ca.validations == []

    soon = int(datetime.datetime.now().timestamp()) + 3 * 86400
    publish(bind, label, f"{wanted}; persistUntil={soon}")
    _outcome, issued, results = run(controller, ca, certificate)
    assert results["www"]["action"] == "issue"
    assert any("stops being valid at" in w for w in issued.get("warnings", [])), issued.get("warnings")
    assert ca.validations == ["www.persist.test: valid"]


def test_without_the_flag_dns_persist_is_refused_naming_it(controller, world):
    _bind, ca = world
    _outcome, _issued, results = run(controller, ca, [{"name": "www", "domains": ["www.persist.test"],
                                                       "challenge": "dns-persist-01"}],
                                     dns_persist_experimental=False)
    assert "dns_persist_experimental" in results["www"]["error"] and ca.orders == {}


@pytest.mark.parametrize("world", [True], ids=["hashed"], indirect=True)
def test_a_ca_advertising_hashed_account_uris_is_checked_before_ordering_and_takes_the_any_name_opt_out(
        controller, world):
    """A CA whose directory names its issuers and an accountHashPrefix (the later draft
    candidate): the record is checked before any order, and one hashed URI computed over "*"
    serves every name."""
    bind, ca = world
    _outcome, _issued, results = run(controller, ca, [{"name": "www", "domains": ["www.persist.test"],
                                                       "challenge": "dns-persist-01"}])
    assert ca.orders == {}, "nothing is ordered without the record"
    assert f"accounturi={ca.hash_prefix}sha-256/" in results["www"]["error"]
    [(account_url, key)] = ca.accounts.items()
    value = f"ca.persist.test; accounturi={hashed_uri(ca.hash_prefix, '*', b64(key.thumbprint()), account_url)}"
    publish(bind, "_validation-persist.api.persist.test", value)
    _outcome, _issued, results = run(controller, ca, [{"name": "api", "domains": ["api.persist.test"],
                                                       "challenge": "dns-persist-01"}])
    assert results["api"]["action"] == "issue", results["api"]["error"]
    assert ca.validations == ["api.persist.test: valid"]
