import datetime

import pytest

from ansible_collections.certops.acme.plugins.module_utils._acme.crypto import CertificateFacts
from ansible_collections.certops.acme.plugins.module_utils._acme.errors import InputError
from ansible_collections.certops.acme.plugins.module_utils._acme.names import Identifier
from ansible_collections.certops.acme.plugins.module_utils._acme.renewal import RenewalPolicy, renewal_decision

NOW = datetime.datetime(2026, 11, 22, 12, 0, tzinfo=datetime.timezone.utc)
WWW = Identifier("dns", "www.example.com")
API = Identifier("dns", "api.example.com")


def facts(days_total=90, days_left=60, names=(WWW,), key_type="ec256"):
    not_after = NOW + datetime.timedelta(days=days_left)
    return CertificateFacts(serial="1", sha256="x", not_before=not_after - datetime.timedelta(days=days_total),
                            not_after=not_after, identifiers=tuple(names), issuer="CN=test", key_type=key_type)


def decide(current, wanted=(WWW,), key_type="ec256", policy=None, force=False):
    return renewal_decision(list(wanted), key_type, current, policy or RenewalPolicy(), NOW, force)


def test_missing_certificate_is_issued():
    assert decide(None).action == "issue"


def test_fresh_certificate_is_kept():
    assert decide(facts(days_left=60)).action == "keep"


def test_default_window_is_one_third_of_the_lifetime():
    assert decide(facts(days_total=90, days_left=30.5)).action == "keep"
    assert decide(facts(days_total=90, days_left=29.5)).action == "renew"


def test_short_lived_certificates_renew_at_half_their_lifetime():
    assert decide(facts(days_total=6, days_left=3.1)).action == "keep"
    assert decide(facts(days_total=6, days_left=2.9)).action == "renew"


def test_remaining_days_policy_overrides_the_fraction():
    policy = RenewalPolicy(remaining_days=45)
    assert decide(facts(days_total=90, days_left=44), policy=policy).action == "renew"
    assert decide(facts(days_total=90, days_left=46), policy=policy).action == "keep"


def test_remaining_fraction_policy():
    policy = RenewalPolicy(remaining_fraction=0.5)
    assert decide(facts(days_total=90, days_left=44), policy=policy).action == "renew"


def test_changed_names_renew_and_say_which():
    decision = decide(facts(names=(WWW,)), wanted=(WWW, API))
    assert decision.action == "renew" and "added api.example.com" in decision.reason


def test_reordered_names_are_the_same_certificate():
    assert decide(facts(names=(API, WWW)), wanted=(WWW, API)).action == "keep"


def test_changed_key_type_renews():
    decision = decide(facts(key_type="ec256"), key_type="rsa2048")
    assert decision.action == "renew" and "ec256 -> rsa2048" in decision.reason


def test_expired_certificate_renews():
    assert decide(facts(days_left=-1)).reason == "expired"


def test_force_renews_a_fresh_certificate():
    assert decide(facts(days_left=80), force=True).action == "renew"


@pytest.mark.parametrize("kwargs", [{"remaining_days": 1, "remaining_fraction": 0.3},
                                    {"remaining_fraction": 1.5}, {"remaining_days": -2}])
def test_invalid_policies_are_refused(kwargs):
    with pytest.raises(InputError):
        RenewalPolicy(**kwargs)


def test_a_revoked_certificate_is_renewed_even_with_most_of_its_life_left():
    from ansible_collections.certops.acme.plugins.module_utils._acme.renewal import RenewalPolicy, renewal_decision
    from ansible_collections.certops.acme.plugins.module_utils._acme.names import Identifier
    import datetime
    from types import SimpleNamespace
    now = datetime.datetime(2026, 11, 1, tzinfo=datetime.timezone.utc)
    facts = SimpleNamespace(identifiers=[Identifier("dns", "a.example")], key_type="ec256",
                            not_after=now + datetime.timedelta(days=80), lifetime=datetime.timedelta(days=90))
    kept = renewal_decision([Identifier("dns", "a.example")], "ec256", facts, RenewalPolicy(), now)
    revoked = renewal_decision([Identifier("dns", "a.example")], "ec256", facts, RenewalPolicy(), now, revoked=True)
    assert kept.action == "keep" and revoked.action == "renew" and "revoked" in revoked.reason
