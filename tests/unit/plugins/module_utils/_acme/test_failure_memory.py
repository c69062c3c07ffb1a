"""Failure memory between runs: backoff with jitter, the CA's Retry-After, a settings change that
retries at once, and a batch that does not send a failing certificate's order again before its
next try. The CA here is a stand-in that refuses every request (a rate limit with Retry-After):
what is tested is what the batch does with failures, not the protocol."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.certops.acme.plugins.module_utils._acme.ca.account import load_account_key
from ansible_collections.certops.acme.plugins.module_utils._acme.batch import BatchSettings, CertificateBatch
from ansible_collections.certops.acme.plugins.module_utils._acme.errors import AcmeProblem
from ansible_collections.certops.acme.plugins.module_utils._acme.results import next_run_due_by
from ansible_collections.certops.acme.plugins.module_utils._acme.spec import parse_specs
from ansible_collections.certops.acme.plugins.module_utils._acme.failures import (
    MAX_BACKOFF, FailureRecord, after_failure, backoff)
from ansible_collections.certops.acme.plugins.module_utils._acme.store.files import FileStore

HOUR = datetime.timedelta(hours=1)
T0 = datetime.datetime(2027, 3, 1, 8, 0, tzinfo=datetime.timezone.utc)


def test_backoff_doubles_from_an_hour_to_a_day_with_jitter_below_it():
    no_jitter = [backoff(n, None, draw=lambda: 0.0) for n in range(1, 8)]
    assert no_jitter == [HOUR, 2 * HOUR, 4 * HOUR, 8 * HOUR, 16 * HOUR, MAX_BACKOFF, MAX_BACKOFF]
    assert backoff(1, None, draw=lambda: 1.0) == 0.8 * HOUR, "jitter takes at most a fifth off"
    assert backoff(1, 7200, draw=lambda: 0.0) == 2 * HOUR, "the CA's Retry-After wins when longer"
    assert backoff(1, 10**9, draw=lambda: 0.0) == datetime.timedelta(days=7), "but not beyond a week"


def test_a_record_counts_failures_in_a_row_and_starts_over_when_the_settings_change():
    first = after_failure(None, "s1", T0, "boom", "urn:x", None, draw=lambda: 0.0)
    second = after_failure(first, "s1", T0 + HOUR, "boom again", "urn:x", None, draw=lambda: 0.0)
    assert (second.count, second.first_failed_at, second.next_try_at) == (2, T0, T0 + 3 * HOUR)
    assert second.holds_back("s1", T0 + 2 * HOUR) and not second.holds_back("s1", T0 + 3 * HOUR)
    assert not second.holds_back("s2", T0 + 2 * HOUR), "changed settings are tried at once"
    other = after_failure(second, "s2", T0 + 2 * HOUR, "x", "", None, draw=lambda: 0.0)
    assert other.count == 1 and other.first_failed_at == T0 + 2 * HOUR
    assert FailureRecord.from_json(second.to_json()) == second
    assert FailureRecord.from_json({"count": "x"}) is None, "a damaged record never blocks a certificate"


class RateLimitedCA:
    """Refuses every request as a rate-limited CA would."""

    directory_url = "https://ca.invalid/dir"

    def __init__(self, calls):
        self.calls = calls

    def __getattr__(self, name):
        def refuse(*args, **kwargs):
            self.calls.append(name)
            raise AcmeProblem(429, self.directory_url, {"type": "urn:ietf:params:acme:error:rateLimited",
                                                        "detail": "too many new orders"}, retry_after=7200)
        return refuse

    def close(self):
        pass


@pytest.fixture
def batch_at(tmp_path):
    store = FileStore(str(tmp_path / "store"))
    key, _ignored = load_account_key(str(tmp_path / "account.key"), None, None, create=True)
    calls = []

    def make(now):
        return CertificateBatch(store, BatchSettings(deadline_seconds=5), lambda: RateLimitedCA(calls), key,
                                now=lambda: now)
    return make, calls, store


def test_a_failing_certificate_waits_out_its_backoff_and_a_settings_change_retries_at_once(batch_at):
    make, calls, store = batch_at
    specs, _ignored = parse_specs([{"name": "www", "domains": ["www.example.com"]}])
    [first] = make(T0).run(specs)
    assert first.action == "failed" and "rateLimited" in (first.error or "") and calls
    record = FailureRecord.from_json(store.failure("www") or {})
    assert record is not None and record.count == 1 and record.error_type.endswith("rateLimited")
    assert record.next_try_at == T0 + 2 * HOUR, "the CA's Retry-After (2 h) is longer than the first backoff"

    calls.clear()
    [held] = make(T0 + HOUR).run(specs)
    assert held.action == "failed" and calls == [], "not sent to the CA before its next try"
    assert "failing since 2027-03-01 08:00 UTC" in held.error and "next try after 2027-03-01 10:00 UTC" in held.error
    assert held.to_dict()["failures"] == 1
    assert next_run_due_by([held], T0 + HOUR) == T0 + 2 * HOUR

    changed, _ignored = parse_specs([{"name": "www", "domains": ["www.example.com"], "key_type": "rsa2048"}])
    [retried] = make(T0 + HOUR).run(changed)
    assert calls, "changed settings are tried at once"
    assert retried.failing is not None and retried.failing.count == 1, "a new count for the new settings"

    calls.clear()
    forced, _ignored = parse_specs([{"name": "www", "domains": ["www.example.com"], "key_type": "rsa2048",
                                     "force": True}])
    make(T0 + HOUR).run(forced)
    assert calls, "force tries at once"


def test_input_errors_are_not_remembered_as_failures(tmp_path):
    store = FileStore(str(tmp_path / "store"))
    specs, _ignored = parse_specs([{"name": "www", "domains": ["www.example.com"]}])
    [result] = CertificateBatch(store, BatchSettings(), lambda: None, account_key=None).run(specs)
    assert result.action == "failed" and "account_key_src" in (result.error or "")
    assert store.failure("www") is None, "a missing account key is the task's input, fixed by its author"


def test_a_ca_that_cannot_be_reached_is_tried_again_on_the_next_run(tmp_path):
    """An outage is not the certificate's failure: the next run tries again (it costs the CA nothing)."""
    from ansible_collections.certops.acme.plugins.module_utils._acme.errors import AcmeTransportError

    class Unreachable(RateLimitedCA):
        def __getattr__(self, name):
            def fail(*args, **kwargs):
                raise AcmeTransportError("cannot reach the ACME server: connection refused")
            return fail

    store = FileStore(str(tmp_path / "store"))
    key, _ignored = load_account_key(str(tmp_path / "account.key"), None, None, create=True)
    specs, _ignored = parse_specs([{"name": "www", "domains": ["www.example.com"]}])
    [result] = CertificateBatch(store, BatchSettings(deadline_seconds=5), lambda: Unreachable([]), key).run(specs)
    assert result.action == "failed" and "cannot reach" in (result.error or "")
    assert store.failure("www") is None


@pytest.mark.parametrize("change", [
    {"domains": ["www.example.com", "example.com"]},
    {"challenge": "dns-01"},
    {"profile": "tlsserver"},
    {"dns": "other-provider"},
    {"preferred_chain": "Other Root"},
    {"reuse_key": True},
], ids=lambda change: next(iter(change)))
def test_each_setting_that_changes_what_is_asked_for_retries_a_held_back_certificate_at_once(batch_at, change):
    make, calls, _store = batch_at
    base = {"name": "www", "domains": ["www.example.com"]}
    specs, _ignored = parse_specs([base])
    make(T0).run(specs)
    calls.clear()
    [held] = make(T0 + HOUR).run(specs)
    assert held.action == "failed" and calls == [], "the unchanged certificate is held back"
    changed, failures = parse_specs([{**base, **change}])
    assert not failures
    make(T0 + HOUR).run(changed)
    assert calls, f"changing {next(iter(change))} did not retry at once"


def test_a_refused_certificate_prepared_for_the_hosts_is_held_back_at_stage_prepare_too(batch_at):
    """The layouts order certificates whose challenges the hosts answer (webroot http-01,
    tls-alpn-01) through stage prepare: the failure memory holds there as in a whole run."""
    make, calls, store = batch_at
    specs, _ignored = parse_specs([{"name": "www", "domains": ["www.example.com"], "challenge": "tls-alpn-01"}])
    [first] = make(T0).run(specs, stage="prepare")
    assert first.action == "failed" and calls and store.failure("www") is not None
    calls.clear()
    [held] = make(T0 + HOUR).run(specs, stage="prepare")
    assert held.action == "failed" and calls == [], "sent to the CA again at stage prepare before its next try"
