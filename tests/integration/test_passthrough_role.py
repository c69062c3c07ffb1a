"""The passthrough role: a real SNI-routing proxy in front of real nginx backends, one of them
reached over real SSH with a standard-library-only Python."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.harness.hosts import haproxy_service, nginx_service
from tests.harness.processes import start_backend, stop_pidfile, wait_for
from tests.harness.sshd import start_sshd
from tests.harness.tls import handshake, refusal

pytestmark = pytest.mark.integration

PLAYBOOK = Path(__file__).resolve().parents[2] / "playbooks" / "passthrough.yml"
PROXY_TLS_PORT = 14643
BACKEND_TLS_PORT = 14644


# On the older ansible-core lines each router template runs once (haproxy here, nginx with the
# PROXY protocol in the tls-alpn-01 case); the newest line runs every combination.
@pytest.mark.parametrize("proxy,base", [("haproxy", 40), pytest.param("nginx", 50, marks=pytest.mark.cross_product)])
def test_passthrough_routes_by_sni_to_backends_that_hold_their_own_certificates(
        controller, pebble_server, account, proxy, base):
    proxy_address, b1_address, b2_address = (f"127.0.0.{base + i}" for i in range(3))
    work = controller.work
    names = {"alpha": f"alpha.{proxy}.pt.test", "beta": f"beta.{proxy}.pt.test", "both": f"both.{proxy}.pt.test"}
    for name in names.values():
        pebble_server.set_address(name, proxy_address)  # DNS points at the proxy
    pidfiles = [work / f"app-{i}.pid" for i in (1, 2)]
    start_backend(b1_address, 18200 + base, "app-on-b1", pidfiles[0])
    start_backend(b2_address, 18201 + base, "app-on-b2", pidfiles[1])
    ssh = start_sshd(work / "sshd", b2_address, 2222)

    common = {
        "certops_passthrough_acme_directory": pebble_server.directory_url,
        "certops_passthrough_acme_ca_path": pebble_server.ca_cert,
        "certops_passthrough_account_key_src": account["key_path"],
        "certops_passthrough_terms_agreed": True,
        "certops_passthrough_store_path": str(work / "store"),
    }
    proxy_service = (haproxy_service(work / "proxy", "certops_passthrough") if proxy == "haproxy"
                     else nginx_service(work / "proxy", "certops_passthrough", stream=True))
    proxy_vars = controller.local_host(
        certops_passthrough_proxy=proxy, certops_passthrough_bind_address=proxy_address,
        certops_passthrough_http_port=pebble_server.ports.http01,
        certops_passthrough_https_port=PROXY_TLS_PORT,
        certops_passthrough_manage_stream_include=False, **proxy_service)

    def backend(index: int, address: str, sites: list[dict]) -> dict:
        host_dir = work / f"b{index}"
        return {"certops_passthrough_backend_address": f"{address}:{BACKEND_TLS_PORT}",
                "certops_passthrough_cert_dir": str(host_dir / "certs"),
                "certops_passthrough_sites": sites, **nginx_service(host_dir, "certops_passthrough")}

    b1 = controller.local_host(**backend(1, b1_address, [
        {"name": "alpha", "domains": [names["alpha"]], "upstream": f"{b1_address}:{18200 + base}"},
        {"name": "both", "domains": [names["both"]], "upstream": f"{b1_address}:{18200 + base}"}]))
    b2 = {**ssh.host_vars(), **backend(2, b2_address, [
        {"name": "beta", "domains": [names["beta"]], "upstream": f"{b2_address}:{18201 + base}"},
        {"name": "both", "domains": [names["both"]], "upstream": f"{b2_address}:{18201 + base}"}])}
    controller.write_inventory({"all": {"vars": common, "children": {
        "passthrough_proxies": {"hosts": {"lb": proxy_vars}},
        "passthrough_backends": {"hosts": {"b1": b1, "b2": b2}}}}})
    try:
        orders_before = pebble_server.new_orders()
        controller.run(PLAYBOOK, check=True)
        assert pebble_server.new_orders() - orders_before == 3  # "both" ordered once, installed twice

        root = pebble_server.root_pem()
        installed = {i: {n: (work / f"b{i}" / "certs" / n / "cert.pem") for n in names} for i in (1, 2)}
        alpha = wait_for(lambda: handshake(proxy_address, PROXY_TLS_PORT, names["alpha"], root))
        assert json.loads(alpha.body)["backend"] == "app-on-b1"
        assert alpha.sha256 == _sha256_of(installed[1]["alpha"]), "the certificate did not come from the backend"
        beta = wait_for(lambda: handshake(proxy_address, PROXY_TLS_PORT, names["beta"], root))
        assert json.loads(beta.body)["backend"] == "app-on-b2"  # the SSH-managed backend
        assert beta.sha256 == _sha256_of(installed[2]["beta"])
        assert installed[1]["both"].read_bytes() == installed[2]["both"].read_bytes()
        seen = {json.loads(handshake(proxy_address, PROXY_TLS_PORT, names["both"], root).body)["backend"]
                for _ignored in range(6)}
        assert seen == {"app-on-b1", "app-on-b2"}
        assert not list((work / "proxy").rglob("privkey.pem")), "the passthrough proxy holds a key"

        # The router closes the connection: no backend is picked, no certificate is presented.
        assert refusal(proxy_address, PROXY_TLS_PORT, "unknown.pt.test", timeout=3) == "closed"

        second = controller.run(PLAYBOOK, check=True)
        assert second.total("changed") == 0
        assert pebble_server.new_orders() - orders_before == 3
        assert "Accepted publickey for root" in (work / "sshd" / "sshd.log").read_text()
    finally:
        ssh.stop()
        for pidfile in [*pidfiles, work / "proxy" / "haproxy.pid", work / "proxy" / "nginx" / "nginx.pid",
                        work / "b1" / "nginx" / "nginx.pid", work / "b2" / "nginx" / "nginx.pid"]:
            stop_pidfile(pidfile)


def _sha256_of(pem_path: Path) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    return x509.load_pem_x509_certificate(pem_path.read_bytes()).fingerprint(hashes.SHA256()).hex()


@pytest.mark.parametrize("proxy,base,proxy_protocol", [
    pytest.param("haproxy", 60, False, marks=pytest.mark.cross_product), ("nginx", 70, True)])
def test_tls_alpn_01_is_answered_through_the_passthrough_proxy(controller, pebble_server, account, proxy, base,
                                                               proxy_protocol):
    """Pebble connects to the proxy with ALPN acme-tls/1 only; the proxy routes that to the
    responder on itself, which presents the challenge certificate made on the controller. The
    nginx router hands client addresses on (PROXY protocol), so it sends the responder a
    PROXY header too, which the responder drops."""
    proxy_address, backend_address = f"127.0.0.{base}", f"127.0.0.{base + 1}"
    work = controller.work
    name = f"alpn.{proxy}.pt.test"
    pebble_server.set_address(name, proxy_address)
    responder_dir = work / "alpn-responder"
    proxy_service = (haproxy_service(work / "proxy", "certops_passthrough") if proxy == "haproxy"
                     else nginx_service(work / "proxy", "certops_passthrough", stream=True))
    controller.write_inventory({"all": {"vars": {
        "certops_passthrough_acme_directory": pebble_server.directory_url,
        "certops_passthrough_acme_ca_path": pebble_server.ca_cert,
        "certops_passthrough_account_key_src": account["key_path"],
        "certops_passthrough_store_path": str(work / "store"),
        "certops_passthrough_proxy_protocol": proxy_protocol,
        "certops_certificates_alpn_responder_dir": str(responder_dir)}, "children": {
        "passthrough_proxies": {"hosts": {"lb": controller.local_host(
            certops_passthrough_proxy=proxy, certops_passthrough_bind_address=proxy_address,
            certops_passthrough_http_port=pebble_server.ports.http01,
            certops_passthrough_https_port=pebble_server.ports.tlsalpn01,  # where Pebble validates
            certops_passthrough_alpn_responder_address=proxy_address,
            certops_passthrough_manage_stream_include=False, **proxy_service)}},
        "passthrough_backends": {"hosts": {"b1": controller.local_host(
            certops_passthrough_backend_address=f"{backend_address}:{BACKEND_TLS_PORT}",
            certops_passthrough_cert_dir=str(work / "b1" / "certs"),
            certops_passthrough_sites=[{"name": name, "domains": [name], "challenge": "tls-alpn-01"}],
            **nginx_service(work / "b1", "certops_passthrough"))}}}}})
    try:
        orders_before = pebble_server.new_orders()
        controller.run(PLAYBOOK, check=True)
        assert pebble_server.new_orders() - orders_before == 1
        served = wait_for(lambda: handshake(proxy_address, pebble_server.ports.tlsalpn01, name,
                                            pebble_server.root_pem()))
        assert served.sha256 == _sha256_of(work / "b1" / "certs" / name / "cert.pem")
        assert served.body.startswith(f"{name} on b1")
        assert not list(responder_dir.glob("*.crt")) and not list(responder_dir.glob("*.key"))
        with socket.socket() as probe:  # the responder is gone once the order is done
            assert probe.connect_ex((proxy_address, 10443)) != 0
        assert controller.run(PLAYBOOK, check=True).total("changed") == 0
    finally:
        for pidfile in [work / "proxy" / "haproxy.pid", work / "proxy" / "nginx" / "nginx.pid",
                        work / "b1" / "nginx" / "nginx.pid"]:
            stop_pidfile(pidfile)
