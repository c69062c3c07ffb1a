"""--check --diff previews what the real run then does, on a fresh controller and before a site
is added, and writes nothing (real HAProxy hosts, real Pebble)."""

from __future__ import annotations

import re

import pytest

from tests.harness.layouts import BACKEND_PORT, PLAYBOOK
# The edge layout fixture, used by name.

pytestmark = pytest.mark.integration


def status_actions(stdout: str) -> dict[str, str]:
    """certificate -> action, from the status table the role prints."""
    return dict(re.findall(r'"([a-z0-9.-]+\.test)\s+(keep|issue|renew|failed)\s', stdout))


def test_check_diff_previews_a_fresh_controller_and_a_new_site_and_writes_nothing(layout, pebble_server):  # noqa: F811
    address, names = "127.0.0.51", ["one.check.edge.test", "two.check.edge.test"]
    edge = layout("haproxy", [address], names)
    work = edge.controller.work
    fresh = {"certops_edge_account_key_src": str(work / "new-account.key"),
             "certops_edge_store_path": str(work / "fresh-store")}
    edge.write(**fresh)
    orders_before = pebble_server.new_orders()

    preview = edge.controller.run(PLAYBOOK, "--check", "--diff")
    assert preview.returncode == 0, preview.stdout[-3000:]
    assert f"account key {work / 'new-account.key'} (new)" in preview.stdout
    assert status_actions(preview.stdout) == {n: "issue" for n in names}
    assert preview.stdout.count("would install (new certificate)") == len(names)
    assert "+frontend certops_https" in preview.stdout  # the configuration the real run writes
    assert pebble_server.new_orders() == orders_before
    written = [p for p in (work / "new-account.key", work / "fresh-store", edge.host_dir(0) / "certs",
                           edge.host_dir(0) / "haproxy.cfg") if p.exists()]
    assert not written, f"--check wrote {written}"

    real = edge.run()
    assert status_actions(real.stdout) == {n: "issue" for n in names}
    assert pebble_server.new_orders() - orders_before == len(names)

    added = "three.check.edge.test"
    pebble_server.set_address(added, address)
    sites = edge.sites + [{"name": added, "domains": [added], "backends": [f"127.0.0.1:{BACKEND_PORT}"]}]
    edge.write(sites=sites, **fresh)
    preview = edge.controller.run(PLAYBOOK, "--check", "--diff")
    assert preview.returncode == 0, preview.stdout[-3000:]
    assert status_actions(preview.stdout) == {**{n: "keep" for n in names}, added: "issue"}
    assert "would install (new certificate)" in preview.stdout and "+    use_backend certops_site_3" in preview.stdout
    assert not (edge.host_dir(0) / "certs" / added).exists()
    assert pebble_server.new_orders() - orders_before == len(names)

    real = edge.run()
    assert status_actions(real.stdout) == {**{n: "keep" for n in names}, added: "issue"}
    assert pebble_server.new_orders() - orders_before == len(names) + 1


def test_an_idempotent_role_run_sends_the_ca_nothing(layout, pebble_server):  # noqa: F811
    address, name = "127.0.0.52", "quiet.edge.test"
    edge = layout("haproxy", [address], [name])
    edge.run()
    requests_before = pebble_server.count_log("-> calling handler()")
    second = edge.run()
    assert second.total("changed") == 0
    sent = pebble_server.count_log("-> calling handler()") - requests_before
    assert sent == 0, f"an idempotent run sent the CA {sent} request(s)"
