"""Every record another writer can touch in a shared store is parsed defensively: a damaged one
counts as absent or expired, never an exception out of the batch. Each parser gets thousands of
random JSON values (seeded, so a failure repeats), shaped like its record often enough to get
past the first missing key: naive and aware times, huge and negative numbers, non-ASCII text,
wrong types at every level."""

from __future__ import annotations

import datetime
import math
import random
from typing import Any, Optional

import pytest

from ansible_collections.certops.acme.plugins.module_utils._acme.ari import cached_window
from ansible_collections.certops.acme.plugins.module_utils._acme.failures import FailureRecord
from ansible_collections.certops.acme.plugins.module_utils._acme.names import Identifier
from ansible_collections.certops.acme.plugins.module_utils._acme.orders import order_from_record
from ansible_collections.certops.acme.plugins.module_utils._acme.claims import carried, claims_of
from ansible_collections.certops.acme.plugins.module_utils._acme.orphans import orphaned_since
from ansible_collections.certops.acme.plugins.module_utils._acme.store import CertificateStore
from ansible_collections.certops.acme.plugins.module_utils._acme.store.vault_leases import owner_expiry

NOW = datetime.datetime(2027, 3, 1, 8, 0, tzinfo=datetime.timezone.utc)
ROUNDS = 1500
TIMES = ["2027-03-01T09:00:00+00:00", "2027-03-01T09:00:00", "2027-02-30T00:00:00", "yesterday", "",
         "9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00+00:00", "2027-03-01T09:00:00+14:00"]
TEXTS = ["", "x", "é", "\x00", "-----BEGIN CERTIFICATE-----\nMIIé\n-----END CERTIFICATE-----\n", "a" * 5000,
         "https://ca.example/acct/1", "dns", "www.example.com", "http-01"]


def value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 1, 3, 10 ** 30, -(10 ** 30), float("inf"), float("nan"), 1.5e308, 2.5])
    if kind in (3, 4):
        return rng.choice(TIMES)
    if kind == 5:
        return rng.choice(TEXTS)
    if kind in (6, 7):
        return [value(rng, depth + 1) for _item in range(rng.randrange(3))]
    return {rng.choice(["a", "count", "start", "pem"]): value(rng, depth + 1) for _item in range(rng.randrange(3))}


def shaped(rng: random.Random, keys: list[str]) -> Any:
    """A record with (most of) the keys its parser reads, each holding a random value."""
    if rng.random() < 0.15:
        return value(rng)
    return {key: value(rng, 1) for key in keys if rng.random() < 0.9}


class RecordsOnly(CertificateStore):
    """A backend stand-in that answers every small record with the value under test (the
    parsers are what is tested, not a backend)."""

    def __init__(self, record: Any) -> None:
        self.record = record

    def describe(self) -> str:
        return "records only"

    def _get_record(self, kind: str, key: str) -> Optional[dict[str, Any]]:
        return self.record

    def _record_keys(self, kind: str) -> list[str]:
        return ["one"]

    def _not_here(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("not part of this test")

    _read_version = _write_version = _update_meta_cas = names = _remove = _put_record = _drop_record = _not_here
    acquire = try_acquire = _not_here


@pytest.mark.parametrize("seed", range(3))
def test_failure_records_parse_or_count_as_absent(seed):
    rng = random.Random(seed)
    for _round in range(ROUNDS):
        record = FailureRecord.from_json(shaped(rng, ["count", "first_failed_at", "last_failed_at", "next_try_at",
                                                      "last_error", "error_type", "settings"]))
        if record is not None:
            record.holds_back("settings", NOW)
            record.describe()
            assert record.next_try_at.tzinfo is not None


@pytest.mark.parametrize("seed", range(3))
def test_ari_windows_parse_or_count_as_absent(seed):
    rng = random.Random(seed)
    for _round in range(ROUNDS):
        window, _fresh = cached_window({"ari": shaped(rng, ["next_check", "start", "end", "selected",
                                                            "explanation_url", "unsupported"])}, NOW)
        if window is not None:
            assert window.selected < NOW or window.selected >= NOW  # comparable with an aware time


@pytest.mark.parametrize("seed", range(3))
def test_pending_orders_parse_or_count_as_absent(seed):
    rng = random.Random(seed)
    identifiers = [Identifier("dns", "www.example.com")]
    for _round in range(ROUNDS):
        record = shaped(rng, ["created", "identifiers", "name", "key_pem", "challenge", "profile", "csr",
                              "order_url", "order", "pending", "preferred_chain"])
        if isinstance(record, dict) and rng.random() < 0.5:
            record["identifiers"] = [{"type": "dns", "value": "www.example.com"}]
            record["created"] = rng.choice(TIMES)
        order_from_record(record, identifiers, NOW)


@pytest.mark.parametrize("seed", range(3))
def test_accounts_account_keys_and_trust_anchors_parse_or_count_as_absent(seed):
    rng = random.Random(seed)
    for _round in range(ROUNDS):
        store = RecordsOnly(shaped(rng, ["url", "contact", "pem"]) if rng.random() < 0.7 else value(rng))
        known = store.known_account("https://ca.example/dir", "thumb")
        assert known is None or isinstance(known["url"], str)
        key = store.account_key_pem()
        assert key is None or isinstance(key, bytes)
        assert isinstance(store.anchors(), list)


@pytest.mark.parametrize("seed", range(3))
def test_lock_owner_expiries_and_orphan_marks_parse_or_count_as_expired_or_now(seed):
    rng = random.Random(seed)
    for _round in range(ROUNDS):
        owner = shaped(rng, ["expires"])
        expiry = owner_expiry(owner if isinstance(owner, dict) else {"expires": owner})
        assert isinstance(expiry, float) and math.isfinite(expiry), "a lock that never expires"
        since = orphaned_since(value(rng), NOW)
        assert since.tzinfo is not None and since <= NOW


@pytest.mark.parametrize("seed", range(3))
def test_claims_parse_or_count_as_none(seed):
    """A claim list another writer damaged is no evidence: None (never judged), and a new
    version carries nothing of it but its own party."""
    rng = random.Random(seed)
    for _round in range(ROUNDS):
        meta = shaped(rng, ["wanted_by"])
        claims = claims_of(meta)
        assert claims is None or (claims and all(isinstance(c, str) and c for c in claims))
        assert set(carried(meta, "inventory")["wanted_by"]) == (claims or set()) | {"inventory"}
