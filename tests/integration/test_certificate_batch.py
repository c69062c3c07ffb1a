"""certops.acme.certificate + install against a real Pebble, answered by a real HAProxy."""

from __future__ import annotations

import ipaddress
import json
import os
import stat
import subprocess
import uuid

import pytest
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store

from tests.harness.processes import stop_pidfile, wait_port
from tests.harness.controller import stateless_haproxy_config

pytestmark = pytest.mark.integration


def names(count: int, tag: str = "") -> list[str]:
    run = tag or uuid.uuid4().hex[:8]
    return [f"n{i}-{run}.batch.test" for i in range(count)]


def certificate_task(store, domains_by_name, **extra):
    return {"name": "Order the batch", "certops.acme.certificate": {
        "store_path": str(store),
        "certificates": [{"name": n, "domains": d} for n, d in domains_by_name.items()], **extra},
        "register": "issued"}


def install_task(store, dest, certificate_names):
    return {"name": "Install", "certops.acme.install": {
        "store_path": str(store), "dest": str(dest), "certificates": certificate_names},
        "register": "installed"}


def dump_task(var, path):
    return {"ansible.builtin.copy": {"content": "{{ %s | to_json }}" % var, "dest": str(path)},
            "changed_when": False}


def verify_against_pebble(pebble_server, fullchain_pem: bytes, name: str) -> None:
    """Build and verify the served chain to Pebble's root with cryptography's X.509 verifier."""
    certs = x509.load_pem_x509_certificates(fullchain_pem)
    root = x509.load_pem_x509_certificate(pebble_server.root_pem().encode())
    verifier = PolicyBuilder().store(Store([root])).build_server_verifier(x509.DNSName(name))
    verifier.verify(certs[0], certs[1:])


def test_a_batch_of_ten_issues_in_one_task_and_a_rerun_orders_nothing(controller, pebble_server, http01_responder):
    batch = {n: [n] for n in names(10)}
    dest = controller.work / "host"
    playbook = controller.playbook("batch", [
        certificate_task(controller.store, batch), dump_task("issued", controller.work / "issued.json"),
        install_task(controller.store, dest, list(batch)), dump_task("installed", controller.work / "installed.json")])
    orders_before = pebble_server.new_orders()

    first = controller.run(playbook, check=True)
    issued = json.loads((controller.work / "issued.json").read_text())
    assert [c["action"] for c in issued["certificates"]] == ["issue"] * 10
    assert pebble_server.new_orders() - orders_before == 10
    assert sum(issued["acme_requests"].values()) <= 10 * 10 + 5  # <= 10 per certificate + account/dir
    assert issued["acme_requests"]["GET directory"] == 1  # no directory re-fetch per order
    assert first.total("changed") == 2

    for name in batch:
        cert_dir = dest / name
        assert stat.S_IMODE(os.stat(cert_dir).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(cert_dir / "privkey.pem").st_mode) == 0o600
        assert stat.S_IMODE(os.stat(cert_dir / "haproxy.pem").st_mode) == 0o600
        assert stat.S_IMODE(os.stat(cert_dir / "fullchain.pem").st_mode) == 0o644
        verify_against_pebble(pebble_server, (cert_dir / "fullchain.pem").read_bytes(), name)

    second = controller.run(playbook, check=True)
    assert pebble_server.new_orders() - orders_before == 10, "the re-run ordered again"
    assert second.total("changed") == 0
    issued = json.loads((controller.work / "issued.json").read_text())
    assert {c["action"] for c in issued["certificates"]} == {"keep"}
    assert issued["acme_requests"] == {}  # nothing due: not a single request to the CA

    # A key whose mode was loosened by hand (same content) is put back, and only that file.
    loosened = dest / next(iter(batch)) / "privkey.pem"
    os.chmod(loosened, 0o644)
    third = controller.run(playbook, check=True)
    assert third.total("changed") == 1
    assert stat.S_IMODE(os.stat(loosened).st_mode) == 0o600
    installed = {c["name"]: c for c in json.loads((controller.work / "installed.json").read_text())["certificates"]}
    assert installed[next(iter(batch))]["changed_files"] == ["privkey.pem"]
    assert [n for n, c in installed.items() if c["changed"]] == [next(iter(batch))]


def test_one_invalid_name_stores_the_other_nine_and_fails_naming_it(controller, pebble_server, http01_responder):
    batch = {n: [n] for n in names(9)}
    batch["broken"] = ["bad_name!.batch.test"]
    playbook = controller.playbook("partial", [certificate_task(controller.store, batch)])
    run = controller.run(playbook)
    assert run.returncode != 0
    assert "1 of 10 certificate(s) failed (9 stored or kept)" in run.stdout
    assert "broken: certificates[9].domains: 'bad_name!.batch.test' is not a valid domain name" in run.stdout
    stored = sorted(p.name for p in (controller.store / "certificates").iterdir())
    assert stored == sorted(n for n in batch if n != "broken")


def test_check_mode_orders_nothing_and_writes_nothing(controller, pebble_server, http01_responder):
    batch = {n: [n] for n in names(2)}
    playbook = controller.playbook("check", [certificate_task(controller.store, batch),
                                             dump_task("issued", controller.work / "issued.json")])
    orders_before = pebble_server.new_orders()
    run = controller.run(playbook, "--check", check=True)
    assert pebble_server.new_orders() == orders_before
    assert run.total("changed") >= 1
    assert not controller.store.exists(), "--check created the store (it writes nothing, not even directories)"


# Locks and ordering are the engine's (pure Python, the same on every line): the newest line runs them.
@pytest.mark.cross_product
def test_two_runs_started_together_order_each_certificate_once(controller, pebble_server, http01_responder):
    batch = {n: [n] for n in names(4)}
    # The second run lists the certificates in reverse: runs that took locks in list order
    # would each hold some and wait for the other's.
    orders = {1: batch, 2: dict(reversed(list(batch.items())))}
    playbooks = [controller.playbook(f"race{i}", [
        certificate_task(controller.store, orders[i]),
        install_task(controller.store, controller.work / f"host{i}", list(batch))]) for i in (1, 2)]
    orders_before = pebble_server.new_orders()
    procs = [controller.spawn(playbook) for playbook in playbooks]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    assert pebble_server.new_orders() - orders_before == 4
    for i in (1, 2):  # both runs end with every certificate installed, and the same one
        for name in batch:
            assert (controller.work / f"host{i}" / name / "fullchain.pem").read_bytes() == \
                (controller.work / "host1" / name / "fullchain.pem").read_bytes()


def test_an_empty_store_adopts_what_the_host_holds_instead_of_ordering(controller, pebble_server, http01_responder):
    batch = {n: [n] for n in names(3)}
    dest = controller.work / "host"
    first = controller.playbook("first", [certificate_task(controller.store, batch),
                                          install_task(controller.store, dest, list(batch))])
    controller.run(first, check=True)
    orders_after_first = pebble_server.new_orders()

    fresh_store = controller.work / "fresh-store"  # a new AWX container: the store is empty
    again = controller.playbook("again", [
        {"certops.acme.install": {"state": "inspect", "store_path": str(fresh_store), "dest": str(dest),
                                  "certificates": list(batch), "adopt_trust_roots": [pebble_server.root_file()]},
         "register": "held"},
        dump_task("held", controller.work / "held.json"),
        certificate_task(fresh_store, batch), dump_task("issued", controller.work / "issued.json"),
        install_task(fresh_store, dest, list(batch))])
    run = controller.run(again, "-vvv", check=True)
    held = json.loads((controller.work / "held.json").read_text())
    assert sorted(held["adopted"]) == sorted(batch)
    assert pebble_server.new_orders() == orders_after_first, "adopted certificates were ordered again"
    assert {c["action"] for c in json.loads((controller.work / "issued.json").read_text())["certificates"]} == {"keep"}
    assert run.total("changed") == 0
    assert "PRIVATE KEY" not in run.stdout + run.stderr  # held keys never reach the output


def test_one_module_defaults_block_sets_the_store_for_every_plugin(controller, pebble_server, http01_responder):
    """group/certops.acme.acme carries the connection, group/certops.acme.store the store path:
    account, certificate and install all take it from there (account used to refuse store_path)."""
    [name] = names(1)
    dest = controller.work / "host"
    playbook = controller.playbook("groups", [
        {"certops.acme.account": {"terms_agreed": True}, "register": "account"},
        {"certops.acme.certificate": {"certificates": [{"name": name, "domains": [name]}]}, "register": "issued"},
        {"certops.acme.install": {"dest": str(dest), "certificates": [name]}}])
    play = json.loads(playbook.read_text())
    play[0]["module_defaults"]["group/certops.acme.store"] = {"store_path": str(controller.store)}
    playbook.write_text(json.dumps(play))
    controller.run(playbook, check=True)
    assert (controller.store / "certificates" / name / "current").exists()
    assert list((controller.store / "accounts").glob("*.json")), "the account was not remembered in that store"
    assert (dest / name / "privkey.pem").exists()


def test_a_key_left_by_a_certificate_no_longer_listed_is_reported(controller, pebble_server, http01_responder):
    keep, drop = names(2)
    dest = controller.work / "host"
    controller.run(controller.playbook("both", [certificate_task(controller.store, {keep: [keep], drop: [drop]}),
                                                install_task(controller.store, dest, [keep, drop])]), check=True)
    run = controller.run(controller.playbook("one", [install_task(controller.store, dest, [keep]),
                                                     dump_task("installed", controller.work / "installed.json")]),
                         check=True)
    assert json.loads((controller.work / "installed.json").read_text())["unlisted"] == [drop]
    # Ansible wraps warnings, and older releases break long words at hyphens: compare without spaces.
    warning = "".join((run.stdout + run.stderr).split())
    assert "".join(f"localhost: {dest}/{drop} still holds the key of a certificate this task's scope installed and "
                   "no longer lists".split()) in warning
    assert (dest / drop / "privkey.pem").exists(), "remove_unlisted is off: nothing is removed"


@pytest.mark.cross_product  # the engine's failure memory, as above
def test_a_certificate_that_keeps_failing_is_not_ordered_again_before_its_next_try(
        controller, pebble_server, http01_responder):
    """Failure memory against the real CA: a name whose validation fails (it points where
    nothing answers) is ordered once; the next run reports it failing without a new order; a
    change of its settings orders it again at once."""
    name = f"unreachable-{uuid.uuid4().hex[:8]}.batch.test"
    pebble_server.set_address(name, "127.0.0.99")

    def run_with(**spec):
        order = certificate_task(controller.store, {name: [name]})
        order["certops.acme.certificate"]["certificates"][0].update(spec)
        playbook = controller.playbook("failing", [dict(order, ignore_errors=True),
                                                   dump_task("issued", controller.work / "issued.json")])
        controller.run(playbook, check=True)
        [result] = json.loads((controller.work / "issued.json").read_text())["certificates"]
        return result

    orders_before = pebble_server.new_orders()
    first = run_with()
    assert first["action"] == "failed" and first["failures"] == 1
    assert pebble_server.new_orders() - orders_before == 1
    second = run_with()
    assert second["action"] == "failed" and second["error"].startswith("failing since")
    assert second["next_try_at"] == first["next_try_at"]
    assert pebble_server.new_orders() - orders_before == 1, "ordered again before its next try"
    third = run_with(key_type="ec384")
    assert third["action"] == "failed" and pebble_server.new_orders() - orders_before == 2, \
        "a change of its settings is tried at once"


@pytest.mark.cross_product  # the engine's names and the responder, as above
def test_ipv4_and_ipv6_addresses_are_certified_with_http01_answered_by_the_proxy_on_both(
        controller, pebble_server, account):
    """RFC 8738 identifiers end to end: Pebble validates each address by connecting to it, so
    one HAProxy listening on 127.0.0.33 and ::1 (where nothing else listens) answers both
    challenges; the certificate names both addresses and verifies for each."""
    work = controller.work / "dual-stack"
    work.mkdir()
    config = stateless_haproxy_config("127.0.0.33", pebble_server.ports.http01, account["thumbprint"]).replace(
        "{sock}", str(work / "admin.sock")).replace(
        "    bind 127.0.0.33", f"    bind [::1]:{pebble_server.ports.http01}\n    bind 127.0.0.33")
    (work / "haproxy.cfg").write_text(config)
    pidfile = work / "haproxy.pid"
    subprocess.run(["haproxy", "-W", "-D", "-f", str(work / "haproxy.cfg"), "-p", str(pidfile)], check=True)
    try:
        wait_port("127.0.0.33", pebble_server.ports.http01, pidfile=pidfile)
        wait_port("::1", pebble_server.ports.http01, pidfile=pidfile)
        dest = controller.work / "host"
        playbook = controller.playbook("addresses", [
            certificate_task(controller.store, {"addresses": ["127.0.0.33", "[::1]"]}),
            dump_task("issued", controller.work / "issued.json"),
            install_task(controller.store, dest, ["addresses"])])
        orders_before = pebble_server.new_orders()
        controller.run(playbook, check=True)
    finally:
        stop_pidfile(pidfile)
    [result] = json.loads((controller.work / "issued.json").read_text())["certificates"]
    assert result["action"] == "issue" and result["domains"] == ["127.0.0.33", "::1"]
    assert result["profile"] is None, "Pebble 2.4 lists no profiles: none is sent"
    assert pebble_server.new_orders() - orders_before == 1
    certs = x509.load_pem_x509_certificates((dest / "addresses" / "fullchain.pem").read_bytes())
    sans = certs[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(str(a) for a in sans.get_values_for_type(x509.IPAddress)) == ["127.0.0.33", "::1"]
    root = x509.load_pem_x509_certificate(pebble_server.root_pem().encode())
    for address in ("127.0.0.33", "::1"):
        verifier = PolicyBuilder().store(Store([root])).build_server_verifier(
            x509.IPAddress(ipaddress.ip_address(address)))
        verifier.verify(certs[0], certs[1:])
