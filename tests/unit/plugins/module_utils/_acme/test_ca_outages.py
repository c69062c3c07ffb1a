"""A CA that could not be reached is remembered (ca/outages.py) and passed over for a while."""

from __future__ import annotations

import datetime
import socket
import time

import pytest

from ansible_collections.certops.acme.plugins.module_utils._acme.ca import outages as ca_outages
from ansible_collections.certops.acme.plugins.module_utils._acme.ca.account import AccountKey
from ansible_collections.certops.acme.plugins.module_utils._acme.ca.client import CaClient
from ansible_collections.certops.acme.plugins.module_utils._acme.crypto import generate_private_key
from ansible_collections.certops.acme.plugins.module_utils._acme.errors import AcmeTransportError
from ansible_collections.certops.acme.plugins.module_utils._acme.store.files import FileStore
from ansible_collections.certops.acme.plugins.module_utils._acme.ca.transport import AcmeTransport
from ansible_collections.certops.acme.plugins.module_utils._acme.waiting import Deadline

NOW = datetime.datetime(2026, 12, 6, 12, 0, tzinfo=datetime.timezone.utc)
KEY = AccountKey.from_key(generate_private_key("ec256"))


def closed_directory() -> str:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/directory"


def test_the_pass_over_starts_at_five_minutes_and_doubles_up_to_an_hour():
    outage, waits = None, []
    for _attempt in range(6):
        outage = ca_outages.after_failure(outage, "https://ca/directory", "connection refused", NOW)
        waits.append((outage.retry_at - NOW).total_seconds() / 60)
    assert waits == [5, 10, 20, 40, 60, 60]
    assert outage.since == NOW and outage.failures == 6


@pytest.mark.parametrize("damaged", [
    None, [], "down", {"since": "yesterday", "retry_at": NOW.isoformat(), "failures": 1},
    {"since": "2026-12-06T12:00:00", "retry_at": "2026-12-06T13:00:00", "failures": 1},  # no time zone
    {"since": NOW.isoformat(), "retry_at": NOW.isoformat(), "failures": True},
    {"since": NOW.isoformat(), "retry_at": NOW.isoformat(), "failures": 10 ** 9},
])
def test_a_damaged_record_never_keeps_a_ca_from_being_asked(damaged):
    assert ca_outages.CaOutage.from_json("https://ca/directory", damaged) is None


def test_a_record_that_skips_the_ca_for_days_is_not_believed():
    record = {"since": NOW.isoformat(), "retry_at": (NOW + datetime.timedelta(days=30)).isoformat(), "failures": 1}
    outage = ca_outages.CaOutage.from_json("https://ca/directory", record)
    assert outage is not None and not outage.current(NOW + datetime.timedelta(seconds=1))


def test_a_ca_remembered_down_is_passed_over_without_a_connection_when_another_follows(tmp_path):
    store = FileStore(str(tmp_path / "store"))
    directory = closed_directory()
    ca_outages.record_failure(store, directory, "connection refused", NOW)

    def no_connection() -> AcmeTransport:
        raise AssertionError("a CA remembered down was contacted")
    client = CaClient(store, no_connection, KEY, directory=directory, pass_over=True, now=lambda: NOW)
    for _attempt in range(2):  # the whole batch fails over with the same error, once
        with pytest.raises(AcmeTransportError, match="unreachable since 2026-12-06 12:00 UTC .*the next CA is tried"):
            client.connected(Deadline(600, "the batch"))
    assert ca_outages.remembered(store, directory).failures == 1, "passing over is no new attempt"


def test_the_last_ca_remembered_down_is_tried_and_a_refusal_extends_the_memory_at_once(tmp_path):
    store = FileStore(str(tmp_path / "store"))
    directory = closed_directory()
    ca_outages.record_failure(store, directory, "connection refused", NOW - datetime.timedelta(minutes=1))
    client = CaClient(store, lambda: AcmeTransport(directory, timeout=5), KEY, directory=directory,
                      pass_over=False, now=lambda: NOW)
    started = time.monotonic()
    with pytest.raises(AcmeTransportError, match="cannot reach the ACME server at .*: connection refused"):
        client.connected(Deadline(600, "the batch"))
    # Bounded by the refusal grace, not by the batch's 600 s (a generous margin for a busy machine).
    assert time.monotonic() - started < 60
    outage = ca_outages.remembered(store, directory)
    assert outage.failures == 2 and outage.since == NOW - datetime.timedelta(minutes=1)
    assert (outage.retry_at - NOW) == datetime.timedelta(minutes=10)


def test_check_mode_remembers_nothing(tmp_path):
    store = FileStore(str(tmp_path / "store"))
    directory = closed_directory()
    client = CaClient(store, lambda: AcmeTransport(directory, timeout=5), KEY, check_mode=True, directory=directory)
    with pytest.raises(AcmeTransportError):
        client.connected(Deadline(600, "the batch"))
    assert ca_outages.remembered(store, directory) is None


def test_the_account_task_passes_over_a_ca_remembered_down_and_clears_the_memory_on_success(tmp_path):
    store = FileStore(str(tmp_path / "store"))
    ca_outages.record_failure(store, "https://down/directory", "connection refused", ca_outages.utcnow())
    outcome = ca_outages.account_at(store, "https://down/directory", lambda: pytest.fail("the CA was asked"))
    assert outcome["failed"] and "unreachable since" in outcome["msg"]
    expired = ca_outages.after_failure(None, "https://up/directory", "refused",
                                       ca_outages.utcnow() - datetime.timedelta(hours=2))
    store.remember_ca_outage("https://up/directory", expired.to_json())
    assert ca_outages.account_at(store, "https://up/directory", lambda: {"changed": False, "exists": True})["exists"]
    assert ca_outages.remembered(store, "https://up/directory") is None
