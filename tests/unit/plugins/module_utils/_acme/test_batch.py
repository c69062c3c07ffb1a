import datetime

import pytest

from ansible_collections.certops.acme.plugins.module_utils._acme.ari import meta_at_issuance
from ansible_collections.certops.acme.plugins.module_utils._acme.batch import BatchSettings, CertificateBatch, Opening
from ansible_collections.certops.acme.plugins.module_utils._acme.renewal import Action
from ansible_collections.certops.acme.plugins.module_utils._acme.results import CertificateResult
from ansible_collections.certops.acme.plugins.module_utils._acme.errors import InputError
from ansible_collections.certops.acme.plugins.module_utils._acme.spec import Stage, parse_specs
from ansible_collections.certops.acme.plugins.module_utils._acme.store.files import FileStore
from ansible_collections.certops.acme.plugins.module_utils._acme.waiting import Deadline

from tests.harness.certs import make_chain


def test_a_bad_name_fails_only_its_certificate():
    specs, failures = parse_specs([
        {"name": "good", "domains": ["good.example.com"]},
        {"name": "bad", "domains": ["bad_name!.example.com"]},
    ])
    assert [s.name for s in specs] == ["good"]
    assert failures[0].name == "bad" and "certificates[1].domains" in failures[0].error


def test_wildcard_with_http01_fails_its_certificate_naming_dns01():
    _ignored, failures = parse_specs([{"name": "w", "domains": ["*.example.com"], "challenge": "http-01"}])
    assert "dns-01" in failures[0].error


def test_wildcard_defaults_to_dns01_and_other_names_to_http01():
    specs, _ignored = parse_specs([{"name": "w", "domains": ["*.example.com", "example.com"]},
                                   {"name": "a", "domains": ["a.example.com"]}])
    assert [s.challenge for s in specs] == ["dns-01", "http-01"]


def test_webroot_and_tls_alpn_are_answered_on_hosts():
    specs, failures = parse_specs([
        {"name": "w", "domains": ["w.example.com"], "webroot": "/var/www"},
        {"name": "t", "domains": ["t.example.com"], "challenge": "tls-alpn-01"},
        {"name": "s", "domains": ["s.example.com"]},
        {"name": "bad", "domains": ["b.example.com"], "challenge": "dns-01", "webroot": "/var/www"}])
    assert [s.on_hosts for s in specs] == [True, True, False]
    assert "certificates[3].webroot" in failures[0].error


@pytest.mark.parametrize("raw,needle", [
    ([], "non-empty list"),
    (["www"], "must be a mapping"),
    ([{"domains": ["a.example.com"]}], "certificates[0].name"),
    ([{"name": "a", "domains": ["a.example.com"]}, {"name": "a", "domains": ["b.example.com"]}], "twice"),
    ([{"name": "a", "domains": ["a.example.com"], "domain": "typo"}], "unknown key"),
])
def test_shape_errors_fail_the_whole_task_naming_the_field(raw, needle):
    with pytest.raises(InputError) as caught:
        parse_specs(raw)
    assert needle in str(caught.value)


def test_nothing_due_means_no_connection_at_all(tmp_path):
    store = FileStore(str(tmp_path))
    key_pem, leaf, chain = make_chain(names=("www.example.com",), days_left=80)
    # As the batch stores a certificate it has just issued: its renewal window is asked for a day later.
    store.save("www", key_pem, leaf, chain, {"ari": meta_at_issuance(datetime.datetime.now(datetime.timezone.utc))})
    specs, _ignored = parse_specs([{"name": "www", "domains": ["www.example.com"]}])

    def no_transport():
        raise AssertionError("a kept certificate must not contact the CA")

    batch = CertificateBatch(store, BatchSettings(), no_transport, account_key=None)
    [result] = batch.run(specs)
    assert result.action == "keep" and not result.changed
    assert batch.ca.transport is None


def test_check_mode_reports_what_would_be_issued_without_contacting_the_ca(tmp_path):
    specs, _ignored = parse_specs([{"name": "new", "domains": ["new.example.com"]}])

    def no_transport():
        raise AssertionError("check mode must not contact the CA")

    batch = CertificateBatch(FileStore(str(tmp_path)), BatchSettings(check_mode=True),
                             no_transport, account_key=None)
    [result] = batch.run(specs)
    assert result.action == "issue" and result.changed


def test_renewal_window_uses_the_clock_given(tmp_path):
    store = FileStore(str(tmp_path))
    key_pem, leaf, chain = make_chain(days_left=80, days_total=90)
    store.save("www", key_pem, leaf, chain, {"ari": {"unsupported": True, "next_check": "2999-01-01T00:00:00+00:00"}})
    specs, _ignored = parse_specs([{"name": "www", "domains": ["www.example.com"]}])

    def later():
        return datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=60)
    batch = CertificateBatch(store, BatchSettings(check_mode=True), lambda: None, None, now=later)
    assert batch.run(specs)[0].action == "renew"


def test_the_documented_certificate_keys_are_the_validated_ones():
    """One spec: the module documentation describes exactly the keys Ansible validates."""
    import yaml
    from ansible_collections.certops.acme.plugins.modules import certificate as stub
    from ansible_collections.certops.acme.plugins.module_utils._acme.spec import CERTIFICATE_OPTIONS
    documented = yaml.safe_load(stub.DOCUMENTATION)["options"]["certificates"]["suboptions"]
    assert set(documented) == set(CERTIFICATE_OPTIONS)
    for key, option in CERTIFICATE_OPTIONS.items():
        assert documented[key]["type"] == option["type"], key
        assert documented[key].get("choices") == option.get("choices"), key
        assert bool(documented[key].get("required")) == bool(option.get("required")), key


def test_waiting_for_a_held_lock_holds_no_later_one(tmp_path):
    """The second pass (lock_waves.wait_in_order): locks are tried all at once; when one is held
    elsewhere, every lock after it is given back and the rest waited for in name order, so two
    runs can never each hold what the other waits for."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor
    from ansible_collections.certops.acme.plugins.module_utils._acme import lock_waves
    store, elsewhere = FileStore(str(tmp_path)), FileStore(str(tmp_path))
    held_b = elsewhere.acquire("b", timeout=1)
    outcome = {}
    waiter = threading.Thread(target=lambda: outcome.update(
        taken=lock_waves.wait_in_order(store, ["a", "b", "c"], 10, lambda n: ThreadPoolExecutor(max(1, n)))))
    waiter.start()
    time.sleep(0.5)
    assert waiter.is_alive(), "the batch did not wait for the held lock"
    assert elsewhere.try_acquire("a") is None, "the lock before the held one was given back"
    later = elsewhere.try_acquire("c")
    assert later is not None, "the batch kept a later lock while it waited"
    later.release()
    held_b.release()
    waiter.join(10)
    assert sorted(outcome["taken"].locks) == ["a", "b", "c"] and outcome["taken"].failed == {}
    lock_waves.release_all(outcome["taken"].locks, lambda n: ThreadPoolExecutor(max(1, n)))
    assert elsewhere.try_acquire("b") is not None


def test_a_batch_orders_what_it_locked_before_it_waits_for_what_another_run_holds(tmp_path):
    """The first pass never waits: with b held elsewhere, a and c are decided (and released)
    first; b comes after, once the other run let it go, and is kept if that run stored it."""
    import threading
    import time
    store, elsewhere = FileStore(str(tmp_path)), FileStore(str(tmp_path))
    specs, _ignored = parse_specs([{"name": n, "domains": [f"{n}.example.com"]} for n in ("a", "b", "c")])
    held_b = elsewhere.acquire("b", timeout=1)
    seen = []

    class Recording(CertificateBatch):
        def _open_one(self, spec, lock, stage, deadline, note=True):
            seen.append(spec.name)
            return Opening(spec, result=CertificateResult(spec.name, Action.KEEP))
    batch = Recording(store, BatchSettings(lock_timeout=10), lambda: None, account_key=None)
    runner = threading.Thread(target=lambda: batch._order(specs, Stage.ALL, Deadline(30, "test")))
    runner.start()
    time.sleep(0.5)
    assert sorted(seen) == ["a", "c"], "the batch waited before ordering what it had locked"
    assert elsewhere.try_acquire("a") is not None and elsewhere.try_acquire("c") is not None, \
        "the batch held its locks while it waited for another run's"
    held_b.release()
    runner.join(10)
    assert sorted(seen[:2]) == ["a", "c"] and seen[2:] == ["b"]


def test_a_rate_limit_or_a_failing_ca_moves_to_the_next_ca_and_a_failed_validation_does_not():
    from ansible_collections.certops.acme.plugins.module_utils._acme.results import another_ca_may_help
    from ansible_collections.certops.acme.plugins.module_utils._acme.errors import AcmeProblem

    def problem(status, code):
        return AcmeProblem(status, "https://ca/new-order", {"type": f"urn:ietf:params:acme:error:{code}", "detail": "x"})
    assert another_ca_may_help(problem(429, "rateLimited"))
    assert another_ca_may_help(problem(403, "caa"))
    assert another_ca_may_help(problem(400, "invalidProfile"))
    assert another_ca_may_help(problem(500, "serverInternal"))
    assert another_ca_may_help(problem(503, "somethingElse")), "any 5xx: the CA is failing"
    assert not another_ca_may_help(problem(403, "unauthorized")), "a failed validation fails at every CA"
    assert not another_ca_may_help(problem(400, "malformed"))
    assert not another_ca_may_help("a deployment error")
