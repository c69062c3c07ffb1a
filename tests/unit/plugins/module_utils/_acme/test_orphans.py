"""Certificates a party no longer wants: released, marked, reported, pruned only after a grace
period, and only what that party alone claims (claims.py)."""

import datetime
import functools

import pytest

from ansible_collections.certops.acme.plugins.module_utils._acme import orphans as orphans_module
from ansible_collections.certops.acme.plugins.module_utils._acme.claims import (
    carried, check_party, claim_all, claims_of)
from ansible_collections.certops.acme.plugins.module_utils._acme.errors import InputError
from ansible_collections.certops.acme.plugins.module_utils._acme.store.files import FileStore

from tests.harness.certs import make_chain

WEEK = datetime.timedelta(days=7)
NOW = datetime.datetime.now(datetime.timezone.utc)
orphans = functools.partial(orphans_module.orphans, party="inventory")


def store_with(tmp_path, *names, wanted_by=("inventory",)):
    store = FileStore(str(tmp_path))
    for name in names:
        key_pem, leaf, chain = make_chain()
        store.save(name, key_pem, leaf, chain, {"wanted_by": list(wanted_by)} if wanted_by else {})
    return store


def test_an_unwanted_certificate_is_marked_and_reported_but_kept(tmp_path):
    store = store_with(tmp_path, "shop", "gone")
    result = orphans(store, ["shop"], prune=True, prune_after=WEEK, write=True, now=NOW)
    assert [o["name"] for o in result["orphans"]] == ["gone"] and result["pruned"] == []
    assert store.load("gone").meta["orphaned_since"] == NOW.isoformat()
    assert "orphaned_since" not in store.load("shop").meta


def test_an_orphan_is_pruned_only_after_the_grace_period(tmp_path):
    store = store_with(tmp_path, "gone")
    orphans(store, [], prune=True, prune_after=WEEK, write=True, now=NOW)
    assert orphans(store, [], prune=True, prune_after=WEEK, write=True, now=NOW + WEEK / 2)["pruned"] == []
    result = orphans(store, [], prune=True, prune_after=WEEK, write=True, now=NOW + WEEK)
    assert result["pruned"] == ["gone"] and store.load("gone") is None and store.names() == []


def test_a_certificate_wanted_again_loses_its_mark_and_its_clock(tmp_path):
    store = store_with(tmp_path, "back")
    orphans(store, [], prune=True, prune_after=WEEK, write=True, now=NOW)
    orphans(store, ["back"], prune=True, prune_after=WEEK, write=True, now=NOW + WEEK / 2)
    assert store.load("back").meta.get("orphaned_since") is None
    result = orphans(store, [], prune=True, prune_after=WEEK, write=True, now=NOW + WEEK)
    assert result["pruned"] == [], "the grace period restarted when it was wanted again"


def test_check_mode_reports_and_writes_nothing(tmp_path):
    store = store_with(tmp_path, "gone", "shared", wanted_by=("inventory", "team-b"))
    result = orphans(store, [], prune=True, prune_after=datetime.timedelta(0), write=False, now=NOW)
    assert result["released"] == ["gone", "shared"]  # would be
    store = store_with(tmp_path / "alone", "gone")
    result = orphans(store, [], prune=True, prune_after=datetime.timedelta(0), write=False, now=NOW)
    assert result["pruned"] == ["gone"]  # would be
    assert store.load("gone") is not None and "orphaned_since" not in store.load("gone").meta


# --- several parties in one store --------------------------------------------------------------
def test_another_partys_certificate_is_never_judged(tmp_path):
    store = store_with(tmp_path, "theirs", wanted_by=("team-b",))
    for day in range(0, 30, 7):
        result = orphans(store, [], prune=True, prune_after=datetime.timedelta(0), write=True,
                         now=NOW + datetime.timedelta(days=day))
        assert result["orphans"] == [] and result["pruned"] == [] and result["marked"] == []
    assert store.load("theirs").meta.get("orphaned_since") is None


def test_a_shared_certificate_is_released_not_marked_and_the_other_party_keeps_it(tmp_path):
    store = store_with(tmp_path, "shared", wanted_by=("inventory", "team-b"))
    result = orphans(store, [], prune=True, prune_after=datetime.timedelta(0), write=True, now=NOW)
    assert result["released"] == ["shared"] and result["orphans"] == [] and result["pruned"] == []
    assert claims_of(store.load("shared").meta) == {"team-b"}
    # Now the other party's alone: this one never judges it again...
    again = orphans(store, [], prune=True, prune_after=datetime.timedelta(0), write=True, now=NOW + WEEK)
    assert again["released"] == again["orphans"] == again["pruned"] == []
    # ... and the other party, no longer wanting it either, marks and then prunes it.
    theirs = functools.partial(orphans_module.orphans, party="team-b")
    assert [o["name"] for o in theirs(store, [], prune=True, prune_after=WEEK, write=True, now=NOW)["orphans"]] \
        == ["shared"]
    assert theirs(store, [], prune=True, prune_after=WEEK, write=True, now=NOW + WEEK)["pruned"] == ["shared"]


def test_unclaimed_certificates_are_reported_and_kept_unless_claimed(tmp_path):
    store = store_with(tmp_path, "old", wanted_by=())
    result = orphans(store, [], prune=True, prune_after=datetime.timedelta(0), write=True, now=NOW)
    assert result["unclaimed"] == ["old"] and result["orphans"] == [] and store.load("old") is not None
    result = orphans(store, [], prune=True, prune_after=datetime.timedelta(0), write=True, now=NOW,
                     claim_unclaimed=True)
    assert result["pruned"] == ["old"] and store.load("old") is None


@pytest.mark.parametrize("damage", ["team-b", [], [""], ["-x"], [1], ["ok", None], ["a/../../b" * 30],
                                    [f"p{i}" for i in range(65)], {"inventory": True}])
def test_claims_another_writer_damaged_count_as_none(tmp_path, damage):
    """A damaged claim list is incomplete evidence: reported as unclaimed, never pruned."""
    store = store_with(tmp_path, "odd", wanted_by=())
    store.update_meta("odd", store.load("odd").version, wanted_by=damage)
    assert claims_of(store.load("odd").meta) is None
    result = orphans(store, [], prune=True, prune_after=datetime.timedelta(0), write=True, now=NOW)
    assert result["unclaimed"] == ["odd"] and store.load("odd") is not None


def test_a_claim_made_between_judging_and_pruning_keeps_the_certificate(tmp_path, monkeypatch):
    """The prune re-reads under the lock: another party that claimed it meanwhile keeps it."""
    store = store_with(tmp_path, "raced")
    real_read = store.read

    def read_then_claim(name):
        reading = real_read(name)
        store.update_meta(name, reading.stored.version, wanted_by=["inventory", "team-b"])
        return reading
    monkeypatch.setattr(store, "read", read_then_claim)
    store.update_meta("raced", store.load("raced").version, orphaned_since=(NOW - WEEK).isoformat())
    result = orphans(store, [], prune=True, prune_after=WEEK, write=True, now=NOW)
    assert result["pruned"] == [] and store.load("raced") is not None


# --- claims themselves --------------------------------------------------------------------------
def test_a_new_version_carries_the_claims_it_replaces_plus_its_party():
    assert carried({"wanted_by": ["team-b"]}, "inventory") == {"wanted_by": ["inventory", "team-b"]}
    assert carried(None, "inventory") == {"wanted_by": ["inventory"]}
    assert carried({"wanted_by": "damaged"}, None) == {}
    assert carried({"wanted_by": ["team-b"]}, None) == {"wanted_by": ["team-b"]}


def test_claiming_writes_once_per_party(tmp_path):
    store = store_with(tmp_path, "a", "b", wanted_by=("inventory",))
    assert claim_all(store, [store.load("a"), store.load("b")], "inventory", write=True) == []
    assert claim_all(store, [store.load("a")], "team-b", write=False) == ["a"]
    assert claims_of(store.load("a").meta) == {"inventory"}, "check mode wrote"
    assert claim_all(store, [store.load("a")], "team-b", write=True) == ["a"]
    assert claims_of(store.load("a").meta) == {"inventory", "team-b"}
    assert claim_all(store, [store.load("a")], "team-b", write=True) == []


@pytest.mark.parametrize("bad", ["", " inventory", "a b", "-a", "x" * 129, "a\nb", None, 5])
def test_a_party_name_is_checked(bad):
    with pytest.raises(InputError, match="wanted_by"):
        check_party(bad)
