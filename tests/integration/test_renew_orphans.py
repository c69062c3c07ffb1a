"""The orphans step of certops.acme.renew (playbooks/renew.yml): it judges the store the layouts
used, sees every host's wants, refuses to prune on a run that cannot see every host, and, in a
store another party (an inventory, a playbook calling the module directly) orders into too,
prunes only what its own party alone claims."""

from __future__ import annotations

import json
from pathlib import Path

from tests.harness.layouts import EdgeLayout

RENEW = Path(__file__).resolve().parents[2] / "playbooks" / "renew.yml"
WARNING = "certificate(s) in the store that 'inventory' alone claimed and no longer wants"


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


def test_a_store_shared_with_another_party_loses_only_what_this_party_alone_wanted(
        controller, pebble_server, account):
    keep, shared, alone = (f"{n}.parties.test" for n in ("keep", "shared", "alone"))
    theirs, direct = "theirs.parties.test", "direct.parties.test"
    edge = EdgeLayout(controller, pebble_server, account, "haproxy", ["127.0.0.132"], [keep, shared, alone])
    store = controller.work / "store"
    for name in (theirs, direct):
        pebble_server.set_address(name, "127.0.0.132")  # answered by the edge host's stateless http-01
    try:
        controller.run(RENEW, check=True)
        assert all(meta(store, n)["wanted_by"] == ["inventory"] for n in (keep, shared, alone))

        # Another inventory ("team-b") wants the shared certificate too and one of its own, and a
        # playbook orders one with the module directly (no party given).
        def order(name, tasks_certificates, **extra):
            return {"name": name, "certops.acme.certificate": {
                "store_path": str(store), "certificates": tasks_certificates, **extra}, "register": name}
        other = controller.playbook("other-parties", [
            order("team_b", [{"name": shared, "domains": [shared]}, {"name": theirs, "domains": [theirs]}],
                  wanted_by="team-b"),
            order("direct", [{"name": direct, "domains": [direct]}]),
            {"ansible.builtin.copy": {"content": "{{ {'team_b': team_b, 'direct': direct} | to_json }}",
                                      "dest": str(controller.work / "other.json")}}])
        orders = pebble_server.new_orders()
        controller.run(other, check=True)
        result = json.loads((controller.work / "other.json").read_text())
        assert pebble_server.new_orders() - orders == 2, "the shared certificate was ordered again"
        assert result["team_b"]["claimed"] == [shared]
        assert meta(store, shared)["wanted_by"] == ["inventory", "team-b"]
        assert meta(store, theirs)["wanted_by"] == ["team-b"] and meta(store, direct)["wanted_by"] == ["direct"]
        controller.run(other, check=True)
        again = json.loads((controller.work / "other.json").read_text())
        assert again["team_b"]["claimed"] == [], "a claim already in place was written again"

        # This inventory drops two sites and prunes at once (no grace period).
        edge.write([edge.sites[0]])
        pruning = controller.run(RENEW, "-e", "certops_orphans_prune=true", "-e", "certops_orphans_prune_after_days=0",
                                 check=True)
        names_left = sorted(p.name for p in (store / "certificates").iterdir())
        assert names_left == sorted([keep, shared, theirs, direct]), pruning.stdout[-3000:]
        assert meta(store, shared)["wanted_by"] == ["team-b"], "the shared certificate kept this party's claim"
        assert meta(store, shared).get("orphaned_since") is None
        # The edge host's own directory of the dropped site went (remove_unlisted, its scope).
        assert not (edge.host_dir(0) / "certs" / alone).exists()
        assert (edge.host_dir(0) / "certs" / ".scopes" / keep).read_text() == "edge\n"
    finally:
        edge.stop()
