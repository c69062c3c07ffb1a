"""The edge role on simulated proxy hosts (own loopback address, own files, real HAProxy/nginx)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.harness.layouts import BACKEND_PORT, HTTPS_PORT
from tests.harness.processes import pid_from, wait_for
from tests.harness.tls import handshake, refusal

from ansible_collections.certops.acme.plugins.module_utils._acme.ca.account import AccountKey
from ansible_collections.certops.acme.plugins.module_utils._acme.crypto import load_private_key
from ansible_collections.certops.acme.plugins.module_utils._acme.store.files import FileStore

pytestmark = pytest.mark.integration


def worker_pids(master: int) -> set[int]:
    with open(f"/proc/{master}/task/{master}/children", encoding="ascii") as handle:
        return {int(p) for p in handle.read().split()}


def http_request(address: str, port: int, host: str, path: str = "/") -> str:
    with socket.create_connection((address, port), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        return sock.recv(65536).decode("utf-8", "replace")


@pytest.mark.parametrize("proxy,address", [("haproxy", "127.0.0.2"), ("nginx", "127.0.0.3")])
def test_edge_serves_every_name_with_forwarded_headers_and_a_rerun_changes_nothing(
        layout, pebble_server, proxy, address):
    names = [f"{n}.{proxy}.edge.test" for n in ("shop", "blog", "api")]
    edge = layout(proxy, [address], names)
    orders_before = pebble_server.new_orders()
    edge.run()
    assert pebble_server.new_orders() - orders_before == len(names)

    root = pebble_server.root_pem()
    for name in names:
        result = wait_for(lambda n=name: handshake(address, HTTPS_PORT, n, root))
        assert result.names == [name]
        assert result.http_status_line.startswith("HTTP/1.1 200")
        assert result.headers["strict-transport-security"] == "max-age=63072000"
        seen = json.loads(result.body)
        assert seen["backend"] == "edge-backend"
        assert seen["headers"]["x-forwarded-proto"] == "https"
        assert seen["headers"]["x-forwarded-for"] == "127.0.0.1"

    answer = http_request(address, pebble_server.ports.http01, names[0], "/some/page")
    assert answer.startswith("HTTP/1.1 308") and f"location: https://{names[0]}/some/page" in answer.lower()
    token = "abc_DEF-123"
    challenge = http_request(address, pebble_server.ports.http01, names[0], f"/.well-known/acme-challenge/{token}")
    assert challenge.rstrip().endswith(f"{token}.{edge.account['thumbprint']}")

    if proxy == "haproxy":
        unknown = handshake(address, HTTPS_PORT, names[0], root, host_header="elsewhere.edge.test")
        assert unknown.http_status_line.startswith("HTTP/1.1 421"), "an unknown Host reached a backend"
    # An unknown SNI never gets some other site's certificate: the handshake itself is refused
    # with an unrecognized_name alert (HAProxy's strict-sni, nginx's ssl_reject_handshake).
    assert refusal(address, HTTPS_PORT, "elsewhere.edge.test") == "TLSV1_UNRECOGNIZED_NAME"

    pid = pid_from(edge.pidfiles[0])
    workers = worker_pids(pid)
    second = edge.run()
    assert second.total("changed") == 0
    assert pebble_server.new_orders() - orders_before == len(names)
    assert pid_from(edge.pidfiles[0]) == pid and worker_pids(pid) == workers, "an idempotent run reloaded"


def test_a_renewal_is_swapped_into_running_haproxy_without_a_reload(layout, pebble_server):
    address, name = "127.0.0.4", "hot.swap.edge.test"
    edge = layout("haproxy", [address], [name])
    edge.run()
    before = wait_for(lambda: edge.serial(address, name))
    master = pid_from(edge.pidfiles[0])
    workers = worker_pids(master)

    edge.write(certops_edge_force_renew=True)
    run = edge.run()
    assert "Swap renewed certificates into the running HAProxy" in run.stdout
    after = edge.serial(address, name)  # no wait: the swap is synchronous
    assert after != before
    assert pid_from(edge.pidfiles[0]) == master and worker_pids(master) == workers, "HAProxy was reloaded"


def test_nginx_reloads_for_a_renewal(layout, pebble_server):
    address, name = "127.0.0.5", "renew.nginx.edge.test"
    edge = layout("nginx", [address], [name])
    edge.run()
    before = wait_for(lambda: edge.serial(address, name))
    edge.write(certops_edge_force_renew=True)
    edge.run()

    def serves_the_new_certificate():
        assert edge.serial(address, name) != before
    wait_for(serves_the_new_certificate)


@pytest.mark.parametrize("proxy,address,option", [
    ("haproxy", "127.0.0.6", {"haproxy_options": ["this-is-not-a-directive"]}),
    ("nginx", "127.0.0.7", {"nginx_options": ["this_is_not_a_directive on;"]})])
def test_a_broken_site_option_is_refused_and_the_old_config_keeps_serving(layout, pebble_server, proxy, address, option):
    names = [f"one.{proxy}.broken.test", f"two.{proxy}.broken.test"]
    edge = layout(proxy, [address], names)
    edge.run()
    config = Path(edge.host_vars(0, address, edge.sites)["certops_edge_config_path"])
    good_config = config.read_text()
    serial = wait_for(lambda: edge.serial(address, names[0]))

    broken = [dict(edge.sites[0], **option), edge.sites[1]]
    edge.write(sites=broken)
    run = edge.run(check=False)
    assert run.returncode != 0
    assert "was refused by" in run.stdout and "not activated" in run.stdout
    assert config.read_text() == good_config, "the refused configuration was left in place"
    assert edge.serial(address, names[0]) == serial  # still serving, same certificate
    assert not list(config.parent.glob(config.name + ".*~")), "backup files left behind"


def test_removing_a_site_removes_its_config_and_files(layout, pebble_server):
    address = "127.0.0.8"
    names = ["keep.remove.edge.test", "drop.remove.edge.test"]
    edge = layout("haproxy", [address], names)
    edge.run()
    cert_dir = edge.host_dir(0) / "certs"
    assert (cert_dir / names[1] / "privkey.pem").exists()
    edge.write(sites=[edge.sites[0]])
    run = edge.run()
    assert run.total("changed") > 0
    assert not (cert_dir / names[1]).exists()
    assert names[1] not in Path(edge.host_vars(0, address, edge.sites)["certops_edge_config_path"]).read_text()
    wait_for(lambda: edge.serial(address, names[0]))

    wait_for(lambda: refusal(address, HTTPS_PORT, names[1]))  # presents no certificate for it


# Issue once per name across hosts is the engine's and the merge filter's work, which every line
# runs in the passthrough case ("both" on two backends); the newest line runs it at scale.
@pytest.mark.cross_product
def test_three_proxies_sharing_ten_names_order_each_name_once(layout, pebble_server):
    addresses = ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
    names = [f"n{i}.shared.edge.test" for i in range(10)]
    edge = layout("haproxy", addresses, names)
    orders_before = pebble_server.new_orders()
    first = edge.run()
    assert pebble_server.new_orders() - orders_before == 10
    root = pebble_server.root_pem()
    for address in addresses:
        served = {name: wait_for(lambda a=address, n=name: handshake(a, HTTPS_PORT, n, root)).serial for name in names}
        assert len(set(served.values())) == 10
        if address == addresses[0]:
            reference = served
        assert served == reference, "hosts serve different certificates for the same name"
    second = edge.run()
    assert second.total("changed") == 0 and pebble_server.new_orders() - orders_before == 10
    print(f"\n3 proxies x 10 names: first run {first.seconds:.1f} s, idempotent re-run {second.seconds:.1f} s")


@pytest.mark.parametrize("proxy,address", [("haproxy", "127.0.0.14"), ("nginx", "127.0.0.15")])
def test_tls_alpn_01_on_the_edge_goes_through_a_layer4_front(layout, pebble_server, proxy, address):
    """HAProxy's tcp front, or nginx's stream{} front, sends ALPN acme-tls/1 to the responder
    and the rest to the TLS servers with a PROXY header: the client's address survives the hop."""
    name = f"alpn.{proxy}.edge.test"
    edge = layout(proxy, [address], [name])
    edge.nginx_stream = True
    tls_port = pebble_server.ports.tlsalpn01  # Pebble validates tls-alpn-01 on this port
    sites = [dict(edge.sites[0], challenge="tls-alpn-01", trusted_proxies=["127.0.0.88"])]
    edge.write(sites=sites, certops_edge_https_port=tls_port, certops_edge_alpn_responder_address=address,
               certops_certificates_alpn_responder_dir=str(edge.host_dir(0) / "alpn"))
    orders_before = pebble_server.new_orders()
    edge.run()
    assert pebble_server.new_orders() - orders_before == 1
    result = wait_for(lambda: handshake(address, tls_port, name, pebble_server.root_pem()))
    seen = json.loads(result.body)
    assert seen["headers"]["x-forwarded-for"] == "127.0.0.1", "the client address was lost on the layer-4 hop"
    # A trusted peer's chain is judged by the peer's own address, which the front hands on too.
    trusted = handshake(address, tls_port, name, pebble_server.root_pem(), source="127.0.0.88",
                        headers={"X-Forwarded-For": "203.0.113.7"})
    assert json.loads(trusted.body)["headers"]["x-forwarded-for"] == "203.0.113.7, 127.0.0.88"
    assert json.loads(trusted.body)["headers"]["x-real-ip"] == "203.0.113.7"
    assert not list((edge.host_dir(0) / "alpn").glob("*.crt"))
    assert edge.run().total("changed") == 0


def test_a_backend_that_is_not_an_address_is_refused_before_anything_changes(layout, pebble_server):
    edge = layout("haproxy", ["127.0.0.16"], ["bad-backend.edge.test"])
    edge.write(sites=[dict(edge.sites[0], backends=["not an address"])])
    run = edge.run(check=False)
    assert run.returncode != 0
    # The refusal is the task's message itself, not buried under ansible-core 2.19's
    # "Task failed: Finalization of task args for 'ansible.builtin.set_fact'" wrapper.
    assert ('"msg": "certops_edge_sites[0] (site bad-backend.edge.test).backends: \'not an address\' is not host:port'
            in run.stdout), run.stdout[-2000:]
    assert "Finalization of task args" not in run.stdout
    assert not edge.host_dir(0).joinpath("haproxy.cfg").exists()
    assert "changed=0" in run.stdout


@pytest.mark.parametrize("proxy,address", [("haproxy", "127.0.0.41"), ("nginx", "127.0.0.42")])
def test_idn_and_upper_case_names_are_served_as_they_are_ordered(layout, pebble_server, proxy, address):
    idn, upper = f"xn--bcher-kva.{proxy}.idn.edge.test", f"www.upper.{proxy}.idn.edge.test"
    edge = layout(proxy, [address], [idn, upper])
    raw = {idn: f"Bücher.{proxy.upper()}.idn.edge.test", upper: f"WWW.Upper.{proxy}.idn.edge.test"}
    edge.write(sites=[dict(site, domains=[raw[site["name"]]]) for site in edge.sites])
    edge.run()
    root = pebble_server.root_pem()
    for name in (idn, upper):  # what clients send: the A-label, in lower case
        result = wait_for(lambda n=name: handshake(address, HTTPS_PORT, n, root))
        assert result.names == [name]
        assert result.http_status_line.startswith("HTTP/1.1 200"), result.http_status_line


def test_a_newline_in_a_site_value_never_becomes_a_directive(layout, pebble_server):
    address, name = "127.0.0.43", "inject.edge.test"
    edge = layout("haproxy", [address], [name])
    injected = "frontend evil\n    bind 127.0.0.43:14999\n    http-request return status 200"
    for field, value in (("name", "inject.edge.test\n" + injected), ("domains", [name + "\n" + injected]),
                         ("backends", [f"127.0.0.1:{BACKEND_PORT}\n" + injected]),
                         ("haproxy_options", ["option httplog\n" + injected])):
        edge.write(sites=[dict(edge.sites[0], **{field: value})])
        run = edge.run(check=False)
        assert run.returncode != 0
        assert "certops_edge_sites[0]" in run.stdout and f".{field}" in run.stdout, run.stdout[-1500:]
        assert not edge.host_dir(0).joinpath("haproxy.cfg").exists(), f"a configuration was written for a bad {field}"
        with socket.socket() as probe:
            assert probe.connect_ex((address, 14999)) != 0, f"the injected frontend answers ({field})"
    for setting, value in (("certops_edge_bind_address", f"{address}:{HTTPS_PORT}\n" + injected),
                           ("certops_edge_cert_dir", "/tmp/certs\n" + injected)):
        edge.write(**{setting: value})
        run = edge.run(check=False)
        assert run.returncode != 0 and f"{setting}: " in run.stdout, run.stdout[-1500:]
        assert not edge.host_dir(0).joinpath("haproxy.cfg").exists()


def test_the_edge_role_leaves_the_certificates_role_of_the_same_play_alone(layout, pebble_server):
    """roles: [edge, certificates]: the second orders and installs the user's own list, not the
    edge sites (role vars used to leak into the later role)."""
    address, site, own = "127.0.0.44", "site.leak.edge.test", "own.leak.edge.test"
    edge = layout("haproxy", [address], [site])
    pebble_server.set_address(own, address)  # the edge proxy answers http-01 for it, statelessly
    own_dest = edge.host_dir(0) / "own-certs"
    edge.write(certops_certificates_list=[{"name": own, "domains": [own]}],
               certops_certificates_dest=str(own_dest),
               certops_certificates_acme_directory=pebble_server.directory_url,
               certops_certificates_acme_ca_path=pebble_server.ca_cert,
               certops_certificates_account_key_src=edge.account["key_path"],
               certops_certificates_terms_agreed=True,
               certops_certificates_store_path=str(edge.controller.work / "store"))
    playbook = edge.controller.work / "both-roles.yml"
    playbook.write_text(json.dumps([{"name": "edge, then certificates", "hosts": "edge", "gather_facts": False,
                                     "roles": ["certops.acme.edge", "certops.acme.certificates"]}]))
    edge.controller.run(playbook, check=True)
    assert (own_dest / own / "cert.pem").exists(), "the certificates role did not install its own list"
    assert not (own_dest / site).exists(), "the certificates role installed the edge sites"
    assert wait_for(lambda: handshake(address, HTTPS_PORT, site, pebble_server.root_pem())).names == [site]


def test_a_sites_profile_and_renewal_settings_reach_its_certificate(layout, pebble_server):
    """The per-site certificate settings (profile, reuse_key, preferred_chain, renewal thresholds)
    pass the role's argument spec and reach the order: a profile this CA does not offer fails
    that site before anything is ordered for it, and the other site is served."""
    edge = layout("haproxy", ["127.0.0.17"], ["plain.settings.edge.test", "profiled.settings.edge.test"])
    edge.write(sites=[dict(edge.sites[0], reuse_key=True, renew_remaining_fraction=0.5),
                      dict(edge.sites[1], profile="nosuchprofile", preferred_chain="No Such Root",
                           renew_remaining_days=2.5)])
    orders_before = pebble_server.new_orders()
    run = edge.run(check=False)
    assert run.returncode != 0
    assert "profile 'nosuchprofile' is not offered by this CA" in run.stdout, run.stdout[-2000:]
    assert pebble_server.new_orders() - orders_before == 1, "only the site without the unknown profile is ordered"
    assert edge.serial("127.0.0.17", "plain.settings.edge.test")


# The handed-on settings run on every line in every case; keeping the key in the store is the engine's.
@pytest.mark.cross_product
def test_the_account_key_can_live_in_the_store_through_a_role_variable(layout, pebble_server):
    """certops_edge_account_key_in_store: the first run makes the account key in the store (no
    key file on the controller), its thumbprint answers http-01, and a rerun finds the same
    account and changes nothing."""
    address, name = "127.0.0.18", "keyed.store.edge.test"
    edge = layout("haproxy", [address], [name])
    edge.write(certops_edge_account_key_src="", certops_edge_account_key_in_store=True)
    keys_before = set(edge.controller.work.rglob("*.key"))
    edge.run()
    pem = FileStore(str(edge.controller.work / "store")).account_key_pem()
    assert pem is not None, "no account key was kept in the store"
    thumbprint = AccountKey.from_key(load_private_key(pem, "store key")).thumbprint
    assert thumbprint != edge.account["thumbprint"]
    assert set(edge.controller.work.rglob("*.key")) == keys_before, "an account key file was written"
    assert edge.serial(address, name)
    token = "store_KEY-1"
    answer = http_request(address, pebble_server.ports.http01, name, f"/.well-known/acme-challenge/{token}")
    assert answer.rstrip().endswith(f"{token}.{thumbprint}")
    assert edge.run().total("changed") == 0
