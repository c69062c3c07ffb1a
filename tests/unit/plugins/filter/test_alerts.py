"""Expiry alerts without e-mail: the metrics text (parsed by Prometheus' own client parser) and
the at-risk list that makes a run fail."""

from __future__ import annotations

import datetime

from prometheus_client.parser import text_string_to_metric_families

from ansible_collections.certops.acme.plugins.filter.certificates import at_risk, openmetrics

EXPIRY = datetime.datetime(2027, 2, 1, 12, 0, tzinfo=datetime.timezone.utc)
STATUS = [
    {"name": "kept.example", "action": "keep", "not_after": EXPIRY.isoformat(), "days_left": 40.5,
     "hosts": ["web1", "web2"]},
    {"name": "short.example", "action": "renew", "not_after": "2026-12-03T00:00:00+00:00", "days_left": 1.5,
     "hosts": ["web1"]},
    {"name": "broken.example", "action": "failed", "not_after": None, "days_left": None, "hosts": ["web1"],
     "error": "rate limited", "failures": 3},
    {"name": "other.example", "action": "keep", "not_after": EXPIRY.isoformat(), "days_left": 40.5,
     "hosts": ["web2"]},
]


def samples(text):
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_a_hosts_metrics_parse_as_prometheus_reads_them_and_cover_only_its_certificates():
    served = [{"certificate": "kept.example", "state": "match"}, {"certificate": "short.example", "state": "match"},
              {"certificate": "short.example", "state": "differs"}]
    text = openmetrics(STATUS, "web1", served, now=1_800_000_000)
    assert text.endswith("# EOF\n")
    found = samples(text)
    kept = (("certificate", "kept.example"),)
    assert found[("certops_acme_certificate_expiry_timestamp_seconds", kept)] == EXPIRY.timestamp()
    assert found[("certops_acme_certificate_days_left", kept)] == 40.5
    assert found[("certops_acme_certificate_failed", kept)] == 0
    assert found[("certops_acme_certificate_failed", (("certificate", "broken.example"),))] == 1
    assert found[("certops_acme_certificate_failures", (("certificate", "broken.example"),))] == 3
    assert found[("certops_acme_certificate_failures", kept)] == 0
    assert found[("certops_acme_certificate_served", kept)] == 1
    assert found[("certops_acme_certificate_served", (("certificate", "short.example"),))] == 0, "one listener differs"
    assert ("certops_acme_certificate_served", (("certificate", "broken.example"),)) not in found, "never checked"
    assert found[("certops_acme_certificate_run_action", (("action", "renew"), ("certificate", "short.example")))] == 1
    assert found[("certops_acme_run_timestamp_seconds", ())] == 1_800_000_000
    assert not any(dict(labels).get("certificate") == "other.example" for _name, labels in found), "web2's only"


def test_label_values_are_escaped():
    text = openmetrics([{"name": 'a"b\\c\nd', "action": "keep", "hosts": ["h"], "days_left": 1}], "h")
    assert ("certops_acme_certificate_days_left", (("certificate", 'a"b\\c\nd'),)) in samples(text)


def test_at_risk_names_short_and_missing_certificates_and_is_off_at_zero():
    lines = at_risk(STATUS, 2)
    assert lines == ["short.example: 1.5 days left, expires 2026-12-03T00:00:00+00:00",
                     "broken.example: no certificate (rate limited)"]
    assert at_risk(STATUS, 0) == [] and at_risk(STATUS, "0") == []
    assert len(at_risk(STATUS, 41)) == 4
