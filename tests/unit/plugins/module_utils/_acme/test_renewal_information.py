"""ARI: the certificate identifier, the cached window, and the decision across windows."""

from __future__ import annotations

import datetime
from types import SimpleNamespace

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.certops.acme.plugins.module_utils._acme.ari import cached_window, select_in_window
from ansible_collections.certops.acme.plugins.module_utils._acme.crypto import ari_cert_id
from ansible_collections.certops.acme.plugins.module_utils._acme.names import Identifier
from ansible_collections.certops.acme.plugins.module_utils._acme.renewal import (
    AriWindow, RenewalPolicy, renewal_decision)

NOW = datetime.datetime(2026, 11, 1, 12, 0, tzinfo=datetime.timezone.utc)
DAY = datetime.timedelta(days=1)
NAMES = [Identifier("dns", "a.example")]


def certificate(serial, aki=None):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "a.example")])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(serial).not_valid_before(NOW).not_valid_after(NOW + 90 * DAY))
    if aki is not None:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier(aki, None, None), critical=False)
    return builder.sign(key, hashes.SHA256())


def test_cert_id_matches_the_rfc_9773_example():
    aki = bytes.fromhex("69885B6B87464041E1B37B847BA0AE2CDE01C8D4")
    assert ari_cert_id(certificate(0x87654321, aki)) == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"


def test_cert_id_without_a_leading_zero_when_the_top_bit_is_clear_and_empty_without_aki():
    assert ari_cert_id(certificate(0x12345678, b"\x01\x02")).endswith(".EjRWeA")
    assert ari_cert_id(certificate(0x12345678)) == ""


def facts(days_left=80, lifetime=90):
    return SimpleNamespace(identifiers=NAMES, key_type="ec256", not_after=NOW + days_left * DAY,
                           lifetime=lifetime * DAY)


def decide(window, **kw):
    return renewal_decision(NAMES, "ec256", kw.pop("current", facts()), RenewalPolicy(), NOW, ari=window, **kw)


def test_a_window_in_the_future_keeps_even_inside_the_lifetime_rule():
    window = AriWindow(NOW + 5 * DAY, NOW + 7 * DAY, NOW + 6 * DAY)
    decision = decide(window, current=facts(days_left=20))  # 20 of 90 days left: the fallback would renew
    assert decision.action == "keep" and "renewing after 2026-11-07" in decision.reason


def test_the_selected_point_reached_renews():
    window = AriWindow(NOW - DAY, NOW + DAY, NOW - 60 * 60 * datetime.timedelta(seconds=1))
    assert decide(window).action == "renew"


def test_a_window_moved_into_the_past_renews_at_once():
    window = AriWindow(NOW - 10 * DAY, NOW - 9 * DAY, NOW - 9 * DAY)
    decision = decide(window)
    assert decision.action == "renew" and "has passed" in decision.reason


def test_expired_renews_whatever_the_window_says():
    window = AriWindow(NOW + 5 * DAY, NOW + 7 * DAY, NOW + 6 * DAY)
    assert decide(window, current=facts(days_left=-1)).reason == "expired"


def test_without_ari_the_lifetime_rule_decides():
    assert decide(None, current=facts(days_left=20)).action == "renew"
    assert decide(None, current=facts(days_left=40)).action == "keep"


def test_the_point_is_chosen_inside_the_window():
    start, end = NOW, NOW + 2 * DAY
    assert select_in_window(start, end, 0.0) == start and select_in_window(start, end, 1.0) == end
    assert select_in_window(start, end, 0.25) == NOW + 12 * datetime.timedelta(hours=1)
    assert select_in_window(start, end, 7.0) == end  # clamped


def test_cached_window_is_fresh_until_next_check():
    meta = {"ari": {"start": NOW.isoformat(), "end": (NOW + DAY).isoformat(), "selected": NOW.isoformat(),
                    "next_check": (NOW + DAY).isoformat()}}
    window, fresh = cached_window(meta, NOW)
    assert fresh and window.end == NOW + DAY
    assert cached_window(meta, NOW + 2 * DAY)[1] is False
    assert cached_window({"ari": {"unsupported": True, "next_check": (NOW + DAY).isoformat()}}, NOW) == (None, True)
    assert cached_window({}, NOW) == (None, False)
    assert cached_window({"ari": {"next_check": "garbage"}}, NOW) == (None, False)
