"""The orphans step of certops.acme.renew (playbooks/renew.yml): it judges the store the layouts
used, sees every host's wants, and refuses to prune on a run that cannot see every host."""

from __future__ import annotations

import json
from pathlib import Path

from tests.harness.layouts import EdgeLayout

RENEW = Path(__file__).resolve().parents[2] / "playbooks" / "renew.yml"
WARNING = "certificate(s) in the store no inventory host wants any more"


def meta(store: Path, name: str) -> dict:
    return json.loads((store / "certificates" / name / "current" / "meta.json").read_text())


def default_store(controller) -> Path:
    """Where a task without store_path keeps certificates in these runs (tests/harness/ansible.py)."""
    return controller.work / "default-store"


def test_renew_judges_orphans_in_the_layouts_store_and_never_prunes_on_a_limited_run(
        controller, pebble_server, account):
    names = [f"{n}.orphans.test" for n in ("keep", "gone")]
    edge = EdgeLayout(controller, pebble_server, account, "haproxy", ["127.0.0.131"], names)
    store = controller.work / "store"  # the layout's own store (certops_edge_store_path)
    try:
        first = controller.run(RENEW, check=True)
        assert WARNING not in first.stdout + first.stderr, "a certificate every host still wants was reported as an orphan"
        assert all(meta(store, n).get("orphaned_since") is None for n in names)

        edge.write([edge.sites[0]])  # the second site is removed from the inventory
        # A run limited to some hosts cannot see every host's wants: pruning is refused, and
        # nothing in the store changes.
        limited = controller.run(RENEW, "--limit", "edge0,localhost", "-e", "certops_orphans_prune=true",
                                 "-e", "certops_orphans_prune_after_days=0")
        assert limited.returncode != 0
        assert "prune: refused on a run limited with --limit" in limited.stdout + limited.stderr
        assert sorted(p.name for p in (store / "certificates").iterdir()) == sorted(names)
        assert meta(store, names[1]).get("orphaned_since") is None, "a refused run marked the store"

        second = controller.run(RENEW, check=True)
        output = second.stdout + second.stderr
        lines = [line for line in output.splitlines() if WARNING in line]
        assert len(lines) == 1, output[-5000:]
        [line] = lines
        assert line.rstrip('",').endswith(f"(not renewed): {names[1]}; prune them with prune: true (renew.yml: "
                                          "certops_orphans_prune: true)"), line
        assert meta(store, names[1])["orphaned_since"] and meta(store, names[0]).get("orphaned_since") is None
        assert not (default_store(controller) / "certificates").exists(), "the orphans step used the default store"
    finally:
        edge.stop()
