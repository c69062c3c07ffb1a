"""The account and revoke tasks with a list of CAs: accounts at every CA (one down does not fail
the task; all down does), revocations at the CA that issued each certificate."""

from __future__ import annotations

from ansible_collections.certops.acme.plugins.module_utils._acme.errors import AcmeTransportError
from ansible_collections.certops.acme.plugins.module_utils._acme.fallback import account_at_every_ca
from ansible_collections.certops.acme.plugins.module_utils._acme.ca.revocation import revoke_at_issuers
from ansible_collections.certops.acme.plugins.module_utils._acme.store.files import FileStore

from tests.harness.certs import make_chain

FIRST, SECOND = "https://first.example/dir", "https://second.example/dir"


def entries(timeout=30):
    return [{"acme_directory": FIRST, "request_timeout": timeout}, {"acme_directory": SECOND, "request_timeout": timeout}]


def test_every_ca_gets_its_account_with_its_time_capped_by_fallback_after(tmp_path):
    seen = []

    def account_at(entry):
        seen.append((entry["acme_directory"], entry["request_timeout"]))
        return {"changed": entry["acme_directory"] == SECOND, "account_url": entry["acme_directory"] + "/acct/1"}
    result = account_at_every_ca(FileStore(str(tmp_path)), entries(), 20, lambda e: e["acme_directory"], account_at,
                                 record=True)
    assert seen == [(FIRST, 5), (SECOND, 5)]  # fallback_after 20 s: a quarter of it per request
    assert result["changed"] is True and result["account_url"] == FIRST + "/acct/1"
    assert [a["directory"] for a in result["accounts"]] == [FIRST, SECOND]
    assert "failed" not in result and "warnings" not in result


def test_a_ca_that_cannot_be_reached_warns_is_remembered_and_the_next_one_answers(tmp_path):
    store = FileStore(str(tmp_path))

    def account_at(entry):
        if entry["acme_directory"] == FIRST:
            raise AcmeTransportError("connection refused (nothing listens there)")
        return {"changed": False, "account_url": SECOND + "/acct/7"}
    result = account_at_every_ca(store, entries(), 60, lambda e: e["acme_directory"], account_at, record=True)
    assert not result.get("failed")
    assert result["account_url"] == SECOND + "/acct/7"
    assert result["warnings"] == [f"account at {FIRST}: connection refused (nothing listens there)"]
    assert store.ca_outage(FIRST) is not None and store.ca_outage(SECOND) is None


def test_the_task_fails_only_when_every_ca_failed(tmp_path):
    def account_at(entry):
        raise AcmeTransportError(f"{entry['acme_directory']} timed out")
    result = account_at_every_ca(FileStore(str(tmp_path)), entries(), 60, lambda e: e["acme_directory"], account_at,
                                 record=False)
    assert result["failed"] is True
    assert result["msg"] == f"{FIRST}: {FIRST} timed out; {SECOND}: {SECOND} timed out"


def test_each_certificate_is_revoked_at_the_ca_that_issued_it(tmp_path):
    store = FileStore(str(tmp_path))
    for name, directory in (("from-second", SECOND), ("from-first", FIRST)):
        key_pem, leaf, chain = make_chain(names=(f"{name}.example.com",))
        store.save(name, key_pem, leaf, chain, {"directory": directory})
    calls = []

    def revoke_at(index, names):
        calls.append((index, names))
        return {"changed": True, "certificates": [{"name": n} for n in names], "acme_requests": {"revokeCert": len(names)}}
    out = revoke_at_issuers(store, [FIRST, SECOND], ["from-second", "from-first", "unknown"], revoke_at)
    # Unknown to the store: the first CA listed.
    assert calls == [(0, ["from-first", "unknown"]), (1, ["from-second"])]
    assert out["changed"] is True and out["acme_requests"] == {"revokeCert": 3}
    assert [c["name"] for c in out["certificates"]] == ["from-first", "unknown", "from-second"]
