"""Finishing a stopped run's order (order_resume.py, orders.resume_order, the locks' notes).

The CA side runs against the scripted ACME-shaped server of test_transport_faults.py (a real
server on 127.0.0.1 whose answers are scripted: Pebble cannot be told to keep an order open
while another client comes for it, nor to send a foreign one). The end-to-end case, a
controller killed with its orders open and a second one finishing them on Pebble, is
tests/integration/test_shared_store.py::test_a_controller_killed_holding_locks_...
"""

from __future__ import annotations

import datetime
import multiprocessing
import os

import pytest

from ansible_collections.certops.acme.plugins.module_utils._acme.names import normalize_names
from ansible_collections.certops.acme.plugins.module_utils._acme.order_resume import (
    MAX_NOTE_AGE, inherited_order, noted_url, order_note)
from ansible_collections.certops.acme.plugins.module_utils._acme.orders import OpenOrder, OrderRequest, resume_order
from ansible_collections.certops.acme.plugins.module_utils._acme.store.files import FileStore
from ansible_collections.certops.acme.plugins.module_utils._acme.waiting import Deadline
from tests.unit.plugins.module_utils._acme.test_transport_faults import ScriptedCA, transport_for

NOW = datetime.datetime(2026, 12, 8, 12, 0, tzinfo=datetime.timezone.utc)
NAMES = normalize_names(["x.example.com", "y.example.com"])
ACCOUNT = "https://ca.example/acct/1"
DIRECTORY = "https://ca.example/dir"


@pytest.fixture
def scripted_ca():
    made: list[ScriptedCA] = []

    def make() -> ScriptedCA:
        made.append(ScriptedCA([]))
        return made[-1]
    yield make
    for ca in made:
        ca.close()


def request() -> OrderRequest:
    return OrderRequest("x", NAMES, b"")


def note(**changes):
    opened = OpenOrder(request(), "https://ca.example/order/7", {}, [])
    return {**order_note(opened, ACCOUNT, DIRECTORY, NOW - datetime.timedelta(minutes=5)), **changes}


def test_a_note_for_this_certificate_account_and_ca_gives_its_order_url():
    assert noted_url(note(), NAMES, ACCOUNT, DIRECTORY, NOW) == "https://ca.example/order/7"


@pytest.mark.parametrize("changed", [
    {"account": "https://ca.example/acct/2"},
    {"directory": "https://other-ca.example/dir"},
    {"identifiers": [{"type": "dns", "value": "x.example.com"}]},
    {"opened": (NOW - MAX_NOTE_AGE - datetime.timedelta(seconds=1)).isoformat()},
    {"opened": (NOW + datetime.timedelta(minutes=1)).isoformat()},
    {"opened": "2026-12-08T11:00:00"},  # no zone: not comparable, not trusted
    {"opened": "yesterday"},
    {"url": "file:///etc/passwd"},
    {"url": "https://ca.example/order/7\r\nX-Injected: 1"},
    {"url": "https://ca.example/" + "a" * 5000},
    {"url": 7},
], ids=lambda changed: next(iter(changed)))
def test_a_note_for_anything_else_or_malformed_is_not_followed(changed):
    assert noted_url(note(**changed), NAMES, ACCOUNT, DIRECTORY, NOW) is None


def test_no_account_url_follows_nothing():
    assert noted_url(note(account=""), NAMES, "", DIRECTORY, NOW) is None
    assert noted_url(["not", "a", "note"], NAMES, ACCOUNT, DIRECTORY, NOW) is None


def script_order(ca: ScriptedCA, status: str = "pending", challenge_status: str = "pending",
                 names=("x.example.com", "y.example.com")) -> str:
    ca.script.append((200, {}, {"status": status, "identifiers": [{"type": "dns", "value": n} for n in names],
                                "authorizations": [f"{ca.url}/authz/{i}" for i in range(len(names))],
                                "finalize": f"{ca.url}/finalize/1"}))
    for index, name in enumerate(names):
        ca.script.append((200, {}, {
            "status": "valid" if index else "pending", "identifier": {"type": "dns", "value": name},
            "challenges": [{"type": "http-01", "url": f"{ca.url}/chall/{index}", "token": "tok" + "e" * 20,
                            "status": challenge_status}]}))
    return f"{ca.url}/order/1"


def test_a_pending_order_is_taken_up_with_only_the_unanswered_challenges(scripted_ca):
    ca = scripted_ca()
    url = script_order(ca)
    order = resume_order(transport_for(ca), request(), url, "thumb", Deadline(10, "t"))
    assert order is not None and order.order_url == url
    assert [c.url for c in order.pending] == [f"{ca.url}/chall/0"]  # the valid authorization needs nothing
    assert order.pending[0].key_authorization == "tok" + "e" * 20 + ".thumb"


def test_a_challenge_the_stopped_run_answered_is_awaited_not_answered_again(scripted_ca):
    ca = scripted_ca()
    order = resume_order(transport_for(ca), request(), script_order(ca, challenge_status="processing"), "thumb",
                         Deadline(10, "t"))
    assert order is not None and order.pending == []


@pytest.mark.parametrize("status", ["valid", "processing", "invalid"])
def test_an_order_past_finalization_or_failed_is_not_resumed(scripted_ca, status):
    ca = scripted_ca()
    assert resume_order(transport_for(ca), request(), script_order(ca, status=status), "thumb",
                        Deadline(10, "t")) is None


def test_an_order_for_other_names_is_not_resumed(scripted_ca):
    ca = scripted_ca()
    url = script_order(ca, names=("x.example.com", "evil.example.com"))
    assert resume_order(transport_for(ca), request(), url, "thumb", Deadline(10, "t")) is None


def test_an_order_the_ca_no_longer_knows_is_not_resumed(scripted_ca):
    ca = scripted_ca()
    ca.script.append((404, {}, {"type": "urn:ietf:params:acme:error:malformed", "detail": "no such order"}))
    assert resume_order(transport_for(ca), request(), f"{ca.url}/order/1", "thumb", Deadline(10, "t")) is None


def test_an_order_url_off_the_cas_origin_is_never_asked(scripted_ca):
    ca = scripted_ca()
    script_order(ca)
    elsewhere = "http://127.0.0.2:9/order/1"
    assert resume_order(transport_for(ca), request(), elsewhere, "thumb", Deadline(10, "t")) is None
    assert ca.posts == 0


class Lock:
    def __init__(self, inherited):
        self.inherited_order = inherited


def test_a_lock_without_a_note_resumes_nothing_and_asks_the_ca_nothing(scripted_ca):
    ca = scripted_ca()
    assert inherited_order(Lock(None), transport_for(ca), request(), ACCOUNT, "thumb", Deadline(10, "t"),
                           NOW) is None
    assert ca.posts == 0


def _note_and_die(root: str, record: dict) -> None:
    lock = FileStore(root).acquire("www")
    lock.note_order(record)
    os._exit(0)  # dies holding the lock: the kernel drops the flock, the note stays


def test_the_file_store_hands_a_dead_holders_note_to_the_next_holder_and_forgets_it_on_release(tmp_path):
    store = FileStore(str(tmp_path))
    record = note()
    child = multiprocessing.get_context("fork").Process(target=_note_and_die, args=(str(tmp_path), record))
    child.start()
    child.join(30)
    lock = store.try_acquire("www")
    assert lock is not None and lock.inherited_order == record
    lock.release()
    again = store.acquire("www", timeout=1)
    assert again.inherited_order is None, "a released lock passes nothing on"
    again.note_order(record)
    again.release()
    assert inherited_by_next(store) is None, "a note is gone with a normal release"


def inherited_by_next(store: FileStore):
    lock = store.acquire("www", timeout=1)
    lock.release()
    return lock.inherited_order


def test_a_damaged_lock_file_passes_nothing_on(tmp_path):
    store = FileStore(str(tmp_path))
    store.acquire("www").release()
    (tmp_path / "locks" / "www.lock").write_bytes(b"{not json")
    assert inherited_by_next(store) is None
    (tmp_path / "locks" / "www.lock").write_bytes(b'{"order": {"url": "' + b"a" * 20000 + b'"}}')  # over the bound
    assert inherited_by_next(store) is None
    (tmp_path / "locks" / "www.lock").write_bytes(b'{"order": ["a"]}')
    assert inherited_by_next(store) is None
