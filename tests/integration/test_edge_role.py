"""The edge role on a simulated proxy host (own loopback address, own files, real HAProxy)."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from tests.harness.processes import pid_from, start_backend, stop_pidfile
from tests.harness.tls import handshake

pytestmark = pytest.mark.integration

HOST_ADDRESS = "127.0.0.2"
HTTPS_PORT = 14543
BACKEND_PORT = 18181
NAMES = ["shop.edge.test", "blog.edge.test", "api.edge.test"]


def haproxy_host(work: Path, pebble_server, account, sites) -> dict:
    host_dir = work / "edge1"
    host_dir.mkdir(exist_ok=True)
    pidfile, config = host_dir / "haproxy.pid", host_dir / "haproxy.cfg"
    return {
        "ansible_connection": "local",
        "certops_edge_acme_directory": pebble_server.directory_url,
        "certops_edge_acme_ca_path": pebble_server.ca_cert,
        "certops_edge_account_key_src": account["key_path"],
        "certops_edge_terms_agreed": True,
        "certops_edge_store_path": str(work / "store"),
        "certops_edge_bind_address": HOST_ADDRESS,
        "certops_edge_http_port": pebble_server.ports.http01,
        "certops_edge_https_port": HTTPS_PORT,
        "certops_edge_cert_dir": str(host_dir / "certs"),
        "certops_edge_haproxy_config": str(config),
        "certops_edge_haproxy_admin_socket": str(host_dir / "admin.sock"),
        "certops_edge_hsts": True,
        "certops_edge_haproxy_status_command": f"sh -c 'kill -0 \"$(cat {pidfile} 2>/dev/null)\" 2>/dev/null'",
        "certops_edge_haproxy_start_command": f"haproxy -W -D -f {config} -p {pidfile}",
        "certops_edge_haproxy_reload_command": f"sh -c 'kill -USR2 \"$(cat {pidfile})\"'",
        "certops_edge_sites": sites,
    }


def worker_pids(master: int) -> set[int]:
    with open(f"/proc/{master}/task/{master}/children", encoding="ascii") as handle:
        return {int(p) for p in handle.read().split()}


def wait_for(check, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except (AssertionError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture
def edge(controller, pebble_server, account):
    for name in NAMES:
        pebble_server.set_address(name, HOST_ADDRESS)
    backend_pid = controller.work / "backend.pid"
    start_backend(HOST_ADDRESS, BACKEND_PORT, "edge-backend", backend_pid)
    sites = [{"name": n, "domains": [n], "backends": [f"{HOST_ADDRESS}:{BACKEND_PORT}"]} for n in NAMES]
    controller.write_inventory({"all": {"children": {"edge": {"hosts": {
        "edge1": controller.local_host(**haproxy_host(controller.work, pebble_server, account, sites))}}}}})
    yield controller
    stop_pidfile(controller.work / "edge1" / "haproxy.pid")
    stop_pidfile(backend_pid)


def http_request(port: int, host: str, path: str = "/") -> str:
    with socket.create_connection((HOST_ADDRESS, port), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        return sock.recv(65536).decode("utf-8", "replace")


def test_edge_layout_serves_every_name_and_a_rerun_changes_nothing(edge, pebble_server):
    playbook = Path(__file__).resolve().parents[2] / "playbooks" / "edge.yml"
    orders_before = pebble_server.new_orders()
    first = edge.run(playbook, check=True)
    assert pebble_server.new_orders() - orders_before == len(NAMES)
    assert first.total("failed") == 0

    root = pebble_server.root_pem()
    for name in NAMES:
        result = wait_for(lambda n=name: handshake(HOST_ADDRESS, HTTPS_PORT, n, root))
        assert result.names == [name]
        assert result.http_status_line.startswith("HTTP/1.1 200")
        assert result.headers["strict-transport-security"] == "max-age=63072000"
        seen = json.loads(result.body)
        assert seen["backend"] == "edge-backend"
        assert seen["headers"]["x-forwarded-proto"] == "https"
        assert seen["headers"]["x-forwarded-for"] == "127.0.0.1"

    answer = http_request(pebble_server.ports.http01, NAMES[0], "/some/page")
    assert answer.startswith("HTTP/1.1 308") and f"location: https://{NAMES[0]}/some/page" in answer.lower()
    token = "abc_DEF-123"
    challenge = http_request(pebble_server.ports.http01, NAMES[0], f"/.well-known/acme-challenge/{token}")
    assert challenge.rstrip().endswith(f"{token}.{edge.account['thumbprint']}")

    unknown = handshake(HOST_ADDRESS, HTTPS_PORT, NAMES[0], root, host_header="elsewhere.edge.test")
    assert unknown.http_status_line.startswith("HTTP/1.1 421"), "an unknown Host reached a backend"

    master = pid_from(edge.work / "edge1" / "haproxy.pid")
    workers = worker_pids(master)
    second = edge.run(playbook, check=True)
    assert second.total("changed") == 0
    assert pebble_server.new_orders() - orders_before == len(NAMES)
    assert pid_from(edge.work / "edge1" / "haproxy.pid") == master
    assert worker_pids(master) == workers, "an idempotent run reloaded HAProxy"
