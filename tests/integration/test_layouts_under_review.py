"""What the four layouts serve, judged as a security review would, with real HAProxy and nginx:
forwarding headers a client cannot spoof, the client's address through passthrough (PROXY
protocol), Mozilla's TLS profile (sslyze, a judge nobody here wrote), key exchange groups,
session resumption, HSTS, and nginx beside Debian's stock default site.

A Pebble of its own issues 90-day certificates here, so Mozilla's lifespan rule (at most 366
days) applies without a waiver; the suite's shared Pebble issues 5-year ones.
"""

from __future__ import annotations

import json
import os
import ssl
from pathlib import Path
from typing import Iterator

import pytest

from tests.harness import pebble
from tests.harness.judges import resumes_session, served_sha256, sslyze
from tests.harness.layouts import HTTPS_PORT, PASSTHROUGH_TLS_PORT, EdgeLayout, PassthroughLayout
from tests.harness.processes import wait_for
from tests.harness.tls import handshake
from tests.harness.controller import make_account

pytestmark = pytest.mark.integration

SHORT_PEBBLE_PORT = int(os.environ.get("CERTOPS_TEST_SHORT_PEBBLE_PORT", "14700"))
NINETY_DAYS = 90 * 86400
#: What a client may send to pass itself off as a proxy's word.
SPOOFED = {"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http",
           "Forwarded": "for=6.6.6.6;proto=http", "X-Real-IP": "6.6.6.6"}
CLIENT, TRUSTED_PEER = "127.0.0.77", "127.0.0.88"
#: Mozilla's groups (sslyze's names): no X448, P-521 or finite-field groups.
GROUPS = {"X25519", "secp256r1", "secp384r1"}


@pytest.fixture(scope="module")
def short_pebble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[pebble.PebbleInfo, dict[str, str]]]:
    info = pebble.start(tmp_path_factory.mktemp("pebble-90d"), base_port=SHORT_PEBBLE_PORT,
                        pebble_config={"certificateValidityPeriod": NINETY_DAYS})
    try:
        yield info, make_account(info, tmp_path_factory.mktemp("account-90d") / "account.key")
    finally:
        pebble.stop(info)


def backend_view(address: str, port: int, name: str, root: str, **kwargs) -> tuple[dict[str, str], dict[str, str]]:
    """(the request headers the application received, the response headers) of one request."""
    answer = wait_for(lambda: handshake(address, port, name, root, **kwargs))
    return json.loads(answer.body)["headers"], answer.headers


def installed_sha256(cert_dir: Path, name: str) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    return x509.load_pem_x509_certificate((cert_dir / name / "cert.pem").read_bytes()).fingerprint(hashes.SHA256()).hex()


def judge_twins(address: str, port: int, name: str, cert_dir: Path) -> None:
    """A site served with an ECDSA and an RSA certificate: each client gets the one it supports."""
    ecdsa, rsa = installed_sha256(cert_dir, name), installed_sha256(cert_dir, f"{name}-rsa2048")
    assert ecdsa != rsa
    assert served_sha256(address, port, name) == ecdsa, "a current client did not get the ECDSA certificate"
    assert served_sha256(address, port, name, only="ecdsa") == ecdsa
    assert served_sha256(address, port, name, only="rsa") == rsa, "an RSA-only client did not get the RSA certificate"


def judge_tls(info: pebble.PebbleInfo, address: str, port: int, name: str, profile: str = "intermediate") -> None:
    report = sslyze(address, port, name, info.root_file(), profile)
    if profile == "modern":
        # Mozilla's modern profile also wants the CA to sign with ECDSA; Pebble signs with RSA.
        # That is the CA's choice, which no proxy setting changes: every other rule must hold.
        assert report.failed_rules() <= {"certificate_signatures"}, report.output[-4000:]
    else:
        assert report.mozilla_compliant, report.output[-4000:]
    assert report.curves() == GROUPS, report.curves()
    version = ssl.TLSVersion.TLSv1_3 if profile == "modern" else ssl.TLSVersion.TLSv1_2
    assert resumes_session(address, port, name, version) == 5, "a reconnection did not resume its TLS session"


@pytest.mark.parametrize("proxy,address,profile", [("haproxy", "127.0.0.94", "intermediate"),
                                                   ("nginx", "*", "intermediate"),
                                                   ("haproxy", "127.0.0.95", "modern")])
def test_edge_forwarding_headers_mozilla_tls_and_hsts(controller, short_pebble, proxy, address, profile):
    """Edge termination: no client forwarding header reaches the application, a trusted peer's
    chain does; sslyze's Mozilla check passes with exactly Mozilla's groups; sessions resume;
    HSTS as configured. nginx binds '*' beside a Debian-like stock default server on port 80."""
    info, account = short_pebble
    names = [f"open.{proxy}-{profile}.sec.test", f"cdn.{proxy}-{profile}.sec.test"]
    edge = EdgeLayout(controller, info, account, proxy, ["127.0.0.1" if address == "*" else address], names)
    try:
        # The first site is served with an ECDSA and an RSA certificate side by side.
        twins = {**edge.sites[0], "key_types": ["ec256", "rsa2048"]}
        sites = [twins, {**edge.sites[1], "trusted_proxies": [TRUSTED_PEER],
                         "hsts": {"include_subdomains": True, "preload": True, "max_age": 31536000}}]
        if profile == "modern":
            # TLS 1.3 only: every client takes ECDSA, so an RSA twin is refused before anything changes.
            edge.write(sites, certops_edge_bind_address=address, certops_edge_tls_profile=profile)
            refused = edge.run(check=False)
            assert refused.returncode != 0 and "every client takes the ECDSA certificate" in refused.stdout
            assert not (controller.work / "store").exists()
            sites[0] = edge.sites[0]
        edge.write(sites, certops_edge_bind_address=address, certops_edge_tls_profile=profile)
        if proxy == "nginx":
            # Debian's sites-enabled/default: a default server on the HTTP port, every address.
            stock = controller.work / "edge0" / "nginx" / "http.d" / "zz-debian-default.conf"
            stock.write_text(f"server {{\n    listen {info.ports.http01} default_server;\n    server_name _;\n"
                             "    location / { return 200 \"stock default site\\n\"; }\n}\n")
        orders_before = info.new_orders()
        edge.run()
        target = "127.0.0.1" if address == "*" else address
        root = info.root_pem()
        if profile == "intermediate":
            judge_twins(target, HTTPS_PORT, names[0], edge.host_dir(0) / "certs")

        seen, response = backend_view(target, HTTPS_PORT, names[0], root, source=CLIENT, headers=SPOOFED)
        assert seen["x-forwarded-for"] == CLIENT and seen["x-real-ip"] == CLIENT, seen
        assert seen["x-forwarded-proto"] == "https"
        assert not {"forwarded", "x-forwarded-host"} & set(seen), seen
        assert response["strict-transport-security"] == "max-age=63072000"
        if proxy == "nginx":
            assert response["server"] == "nginx", "nginx shows its version"

        # The second site trusts one peer: from anyone else it is the same as the first ...
        seen, response = backend_view(target, HTTPS_PORT, names[1], root, source=CLIENT, headers=SPOOFED)
        assert seen["x-forwarded-for"] == CLIENT and seen["x-real-ip"] == CLIENT, seen
        assert response["strict-transport-security"] == "max-age=31536000; includeSubDomains; preload"
        # ... and from that peer its chain is kept, the peer appended, the client its last entry.
        seen, _response = backend_view(target, HTTPS_PORT, names[1], root, source=TRUSTED_PEER,
                                       headers={"X-Forwarded-For": "203.0.113.7"})
        assert seen["x-forwarded-for"] == f"203.0.113.7, {TRUSTED_PEER}" and seen["x-real-ip"] == "203.0.113.7", seen

        judge_tls(info, target, HTTPS_PORT, names[0], profile)
        ordered = info.new_orders()
        again = edge.run()
        assert again.total("changed") == 0 and info.new_orders() == ordered
        assert ordered - orders_before == (3 if profile == "intermediate" else 2)
    finally:
        edge.stop()


@pytest.mark.parametrize("proxy,base", [("haproxy", 100), ("nginx", 110)])
def test_passthrough_backends_learn_the_client_address_and_pass_mozillas_check(controller, short_pebble, proxy, base):
    """PROXY protocol from the router: the application behind the backend sees the client's
    address (not the router's) and none of the client's own forwarding headers; the served
    check speaks PROXY too (the run passes, and a rerun changes nothing)."""
    info, account = short_pebble
    router, backend = f"127.0.0.{base}", f"127.0.0.{base + 1}"
    name = f"pp.{proxy}.sec.test"
    layout = PassthroughLayout(controller, info, account, proxy, router, backend, [name], 18300 + base)
    layout.sites[0]["key_types"] = ["ec256", "rsa2048"]
    try:
        layout.write({"certops_passthrough_proxy_protocol": True, "certops_passthrough_hsts": True})
        layout.run()
        judge_twins(router, PASSTHROUGH_TLS_PORT, name, controller.work / "b1" / "certs")
        seen, response = backend_view(router, PASSTHROUGH_TLS_PORT, name, info.root_pem(), source=CLIENT,
                                      headers=SPOOFED)
        assert seen["x-forwarded-for"] == CLIENT and seen["x-real-ip"] == CLIENT, seen
        assert not {"forwarded", "x-forwarded-host"} & set(seen), seen
        assert response["strict-transport-security"] == "max-age=63072000"
        judge_tls(info, router, PASSTHROUGH_TLS_PORT, name)
        assert layout.run().total("changed") == 0
    finally:
        layout.stop()


def test_routers_and_backends_that_disagree_on_proxy_protocol_are_refused(controller, short_pebble):
    info, account = short_pebble
    layout = PassthroughLayout(controller, info, account, "haproxy", "127.0.0.120", "127.0.0.121",
                               ["disagree.sec.test"], 18420)
    try:
        layout.write({"certops_passthrough_proxy_protocol": True}, certops_passthrough_proxy_protocol=False)
        run = layout.run(check=False)
        assert run.returncode != 0
        assert "certops_passthrough_proxy_protocol differs between" in run.stdout and "nothing was changed" in run.stdout
        assert not (Path(controller.work) / "proxy" / "haproxy.cfg").exists() or \
            "send-proxy" not in (Path(controller.work) / "proxy" / "haproxy.cfg").read_text()
    finally:
        layout.stop()
