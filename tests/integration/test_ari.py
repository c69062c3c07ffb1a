"""ARI (RFC 9773) and profiles end to end against acme2certifier, a real ACME server that
implements both (Pebble 2.4 implements neither): see tests/harness/a2c.py."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
from cryptography import x509

from tests.harness import a2c

from ansible_collections.certops.acme.plugins.module_utils._acme.crypto import ari_cert_id

pytestmark = pytest.mark.integration
PORT = 14810


@pytest.fixture
def server(tmp_path):
    started = [a2c.start(tmp_path / "a2c", PORT)]
    yield started
    started[-1].stop()


def restart(started, **options):
    """The same CA (database, keys) with another configuration, as an operator would change it."""
    started[-1].stop()
    started.append(a2c.start(started[-1].state, PORT, **options))
    return started[-1]


def run(controller, server, certificates, name="ari"):
    key = controller.work / "a2c-account.key"
    acme = {"acme_directory": server[-1].directory_url, "account_key_src": str(key)}
    play = controller.playbook(name, [
        {"certops.acme.account": {**acme, "account_key_create": True, "terms_agreed": True,
                                  "contact": ["mailto:ops@example.test"]}},  # this CA requires one
        {"certops.acme.certificate": {**acme, "store_path": str(controller.work / "store"),
                                      "certificates": certificates}, "register": "issued",
         "ignore_errors": True},  # failures are asserted from the result
        {"ansible.builtin.copy": {"content": "{{ issued | to_json }}", "dest": str(controller.work / "issued.json")},
         "changed_when": False}])
    outcome = controller.run(play)
    assert (controller.work / "issued.json").exists(), outcome.stdout[-3000:]
    results = json.loads((controller.work / "issued.json").read_text())
    return outcome, {c["name"]: c for c in results["certificates"]}, results


def current(controller, name) -> Path:
    return controller.work / "store" / "certificates" / name / "current"


def a_day_passes(controller, name, forget_window=False):
    """The CA is first asked a day after issuance and then as its Retry-After says; move the
    stored 'next check' into the past instead of waiting. ``forget_window``: the point chosen
    in the last window is dropped too, so that the next answer is drawn in afresh."""
    meta_path = current(controller, name) / "meta.json"
    meta = json.loads(meta_path.read_text())
    if forget_window:
        meta["ari"] = {"next_check": meta["ari"]["next_check"]}
    meta["ari"]["next_check"] = (datetime.datetime.now(datetime.timezone.utc)
                                 - datetime.timedelta(minutes=1)).isoformat()
    meta_path.write_text(json.dumps(meta))


def test_ari_window_in_the_future_keeps_and_an_open_window_renews_with_replaces(controller, server):
    name = "ari.example.test"
    spec = [{"name": name, "domains": [name]}]
    outcome, results, _raw = run(controller, server, spec)
    assert outcome.returncode == 0, outcome.stdout[-3000:]
    assert results[name]["action"] == "issue"
    leaf = x509.load_pem_x509_certificate((current(controller, name) / "cert.pem").read_bytes())
    cert_id = ari_cert_id(leaf)
    assert cert_id

    # A day later: the window (from 85 % of the lifetime on) lies ahead: kept, as the CA says.
    a_day_passes(controller, name)
    outcome, results, raw = run(controller, server, spec, "ari-keep")
    assert outcome.returncode == 0
    assert results[name]["action"] == "keep" and "renewal window (ARI)" in results[name]["reason"]
    assert raw["acme_requests"].get("GET renewalInfo") == 1
    meta = json.loads((current(controller, name) / "meta.json").read_text())["ari"]
    assert meta["start"] <= meta["selected"] <= meta["end"]  # a point inside the window was chosen
    assert results[name]["renewal_window"]["selected"] == meta["selected"]  # reported as stored

    # Asked again within the CA's Retry-After: the store answers, the CA is not asked.
    outcome, results, raw = run(controller, server, spec, "ari-cached")
    assert results[name]["action"] == "keep" and "GET renewalInfo" not in raw["acme_requests"]

    # The CA moves every window into the past (early renewal, e.g. ahead of a mass revocation).
    # acme2certifier's forced window is [now + 1 day - 365 days, now + 1 day]: the point drawn
    # in it (RFC 9773 §4.2) lies in the future once in 365 draws, and then keeping is right. Such
    # a draw is checked to be that case and drawn again (three keeps in a row: 1 in 5e7).
    restart(server, renewal_force=True)
    for attempt in range(3):
        a_day_passes(controller, name, forget_window=True)
        outcome, results, raw = run(controller, server, spec, f"ari-renew-{attempt}")
        assert outcome.returncode == 0, outcome.stdout[-3000:]
        if results[name]["action"] != "keep":
            break
        window = results[name]["renewal_window"]
        now = datetime.datetime.now(datetime.timezone.utc)
        assert now < datetime.datetime.fromisoformat(window["selected"]) <= now + datetime.timedelta(days=1), window
    assert results[name]["action"] == "renew" and "renewal window (ARI) is open" in results[name]["reason"]
    # The order said which certificate it replaces (RFC 9773 §5), as the server logged it.
    assert server[-1].new_orders()[-1].get("replaces") == cert_id
    assert "replaces" not in server[-1].new_orders()[0], "the first order replaced nothing"
    assert ari_cert_id(x509.load_pem_x509_certificate((current(controller, name) / "cert.pem").read_bytes())) != cert_id


def test_a_profile_the_ca_offers_is_ordered_and_an_unknown_one_fails_listing_the_offered(controller, server):
    outcome, results, raw = run(controller, server, [
        {"name": "short.example.test", "domains": ["short.example.test"], "profile": "shortlived"},
        {"name": "typo.example.test", "domains": ["typo.example.test"], "profile": "shortlivd"},
        # Preferences: one the CA offers is ordered; one it lacks gives way to its default.
        {"name": "likes-short.example.test", "domains": ["likes-short.example.test"],
         "profile": {"prefer": "shortlived"}},
        {"name": "likes-tls.example.test", "domains": ["likes-tls.example.test"], "profile": {"prefer": "tlsserver"}}])
    assert raw["failed"] and "typo.example.test" in raw["msg"] and "likes" not in raw["msg"]
    assert results["short.example.test"]["action"] == "issue"
    ordered = {o["identifiers"][0]["value"]: o.get("profile") for o in server[-1].new_orders()}
    # the typo was never ordered
    assert ordered == {"short.example.test": "shortlived", "likes-short.example.test": "shortlived",
                       "likes-tls.example.test": None}
    assert results["likes-short.example.test"]["profile_note"] is None
    assert results["likes-tls.example.test"]["profile"] is None
    assert results["likes-tls.example.test"]["profile_note"] == (
        "preferred profile 'tlsserver' is not offered by the CA that issued it; ordered under the CA's default profile")
    error = results["typo.example.test"]["error"]
    assert "profile 'shortlivd' is not offered by this CA (it offers: classic, shortlived)" in error


def test_ip_addresses_without_a_profile_are_ordered_as_shortlived_and_names_alone_get_none(controller, server):
    outcome, results, raw = run(controller, server, [
        {"name": "addresses", "domains": ["192.0.2.10", "2001:db8::10"]},
        {"name": "plain.example.test", "domains": ["plain.example.test"]}], name="ip-profile")
    assert not raw["failed"], outcome.stdout[-3000:]
    orders = server[-1].new_orders()
    by_value = {tuple(sorted(i["value"] for i in o["identifiers"])): o.get("profile") for o in orders}
    assert by_value == {("192.0.2.10", "2001:db8::10"): "shortlived", ("plain.example.test",): None}
    assert results["addresses"]["profile"] == "shortlived" and results["plain.example.test"]["profile"] is None
    cert = x509.load_pem_x509_certificate((current(controller, "addresses") / "cert.pem").read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(str(a) for a in sans.get_values_for_type(x509.IPAddress)) == ["192.0.2.10", "2001:db8::10"]
