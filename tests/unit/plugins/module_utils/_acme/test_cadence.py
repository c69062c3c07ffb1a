"""A schedule that fits 6-day certificates: each certificate's renewal point, the "next run due
by" of a batch, and a twice-daily cadence reaching a 6-day certificate's renewal point in time."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.certops.acme.plugins.module_utils._acme.results import CertificateResult, next_run_due_by, renewal_point
from ansible_collections.certops.acme.plugins.module_utils._acme.crypto import CertificateFacts
from ansible_collections.certops.acme.plugins.module_utils._acme.names import Identifier
from ansible_collections.certops.acme.plugins.module_utils._acme.renewal import (
    Action, AriWindow, RenewalPolicy, renewal_decision)
from ansible_collections.certops.acme.plugins.module_utils._acme.store import StoredCertificate

ISSUED = datetime.datetime(2027, 3, 1, 8, 0, tzinfo=datetime.timezone.utc)
WWW = Identifier("dns", "www.example.com")
HOUR = datetime.timedelta(hours=1)


def stored(days_total: float, issued: datetime.datetime = ISSUED) -> StoredCertificate:
    facts = CertificateFacts(serial="1", sha256="x", not_before=issued,
                             not_after=issued + datetime.timedelta(days=days_total), identifiers=(WWW,),
                             issuer="CN=test", key_type="ec256")
    return StoredCertificate(name="www", key_pem=b"", cert_pem="", chain_pem="", meta={}, facts=facts, version="v")


@pytest.mark.parametrize("first_run_after_issue", [0.5 * HOUR, 5 * HOUR, 11.9 * HOUR])
def test_a_twice_daily_cadence_renews_a_six_day_certificate_with_days_to_spare(first_run_after_issue):
    current = stored(6)
    due = renewal_point(CertificateResult("www", Action.KEEP, stored=current), RenewalPolicy())
    assert due == current.facts.not_after - datetime.timedelta(days=3), "half the lifetime under 10 days"
    run, renewed_at = ISSUED + first_run_after_issue, None
    while run < current.facts.not_after:
        decision = renewal_decision([WWW], "ec256", current.facts, RenewalPolicy(), run)
        if decision.action == Action.RENEW:
            renewed_at = run
            break
        run += 12 * HOUR
    assert renewed_at is not None and due <= renewed_at < due + 12 * HOUR
    # The first try leaves about 2.5 days: five more twice-daily tries before expiry if it fails.
    assert current.facts.not_after - renewed_at > datetime.timedelta(days=2.5)


def test_the_renewal_point_is_the_point_chosen_in_the_cas_window_when_there_is_one():
    window = AriWindow(start=ISSUED + datetime.timedelta(days=3), end=ISSUED + datetime.timedelta(days=4),
                       selected=ISSUED + datetime.timedelta(days=3, hours=7))
    kept = CertificateResult("www", Action.KEEP, stored=stored(6), ari=window)
    assert renewal_point(kept, RenewalPolicy()) == window.selected
    assert renewal_point(CertificateResult("www", Action.FAILED), RenewalPolicy()) is None


def test_the_next_run_is_due_by_the_earliest_renewal_point_or_now_after_a_failure():
    now = ISSUED + HOUR
    soon = CertificateResult("a", Action.KEEP, stored=stored(6))
    later = CertificateResult("b", Action.KEEP, stored=stored(90))
    for result in (soon, later):
        result.renew_at = renewal_point(result, RenewalPolicy())
    assert next_run_due_by([later, soon], now) == soon.renew_at
    assert next_run_due_by([later, soon, CertificateResult("c", Action.FAILED)], now) == now
    assert next_run_due_by([], now) is None
    overdue = CertificateResult("d", Action.KEEP, stored=stored(6, issued=ISSUED - datetime.timedelta(days=5)))
    overdue.renew_at = renewal_point(overdue, RenewalPolicy())
    assert next_run_due_by([overdue], now) == now, "a point already passed means: now"
