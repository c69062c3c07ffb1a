"""Certificates no host wants: marked, reported, pruned only after a grace period."""

import datetime

from ansible_collections.certops.acme.plugins.module_utils._acme.orphans import orphans
from ansible_collections.certops.acme.plugins.module_utils._acme.store.files import FileStore

from tests.harness.certs import make_chain

WEEK = datetime.timedelta(days=7)
NOW = datetime.datetime.now(datetime.timezone.utc)


def store_with(tmp_path, *names):
    store = FileStore(str(tmp_path))
    for name in names:
        key_pem, leaf, chain = make_chain()
        store.save(name, key_pem, leaf, chain, {})
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
    store = store_with(tmp_path, "gone")
    result = orphans(store, [], prune=True, prune_after=datetime.timedelta(0), write=False, now=NOW)
    assert result["pruned"] == ["gone"]  # would be
    assert store.load("gone") is not None and "orphaned_since" not in store.load("gone").meta
