"""Edge layouts on simulated proxy hosts (own loopback address, own files, real HAProxy or
nginx) sharing one controller store: what the edge role's tests, and tests of what the layouts
serve, set up."""

from __future__ import annotations

from pathlib import Path

from tests.harness.hosts import haproxy_service, nginx_service
from tests.harness.processes import start_backend, stop_pidfile
from tests.harness.tls import handshake

PLAYBOOK = Path(__file__).resolve().parents[2] / "playbooks" / "edge.yml"
HTTPS_PORT = 14543
BACKEND_PORT = 18181


class EdgeLayout:
    """Simulated proxy hosts sharing one controller store and one set of sites."""

    def __init__(self, controller, pebble_server, account, proxy: str | list[str], addresses: list[str],
                 names: list[str]):
        """``proxy``: haproxy or nginx on every host, or one of them per address."""
        self.controller, self.pebble, self.account = controller, pebble_server, account
        self.proxies = [proxy] * len(addresses) if isinstance(proxy, str) else list(proxy)
        self.proxy, self.addresses, self.names = self.proxies[0], addresses, names
        #: nginx with the stream module and a stream{} including the role's front (tls-alpn-01).
        self.nginx_stream = False
        self.pidfiles: list[Path] = []
        self.backend_pid = controller.work / "backend.pid"
        # Round-robin DNS in miniature: the CA reaches every name on the first proxy host.
        for name in names:
            pebble_server.set_address(name, addresses[0])
        start_backend("127.0.0.1", BACKEND_PORT, "edge-backend", self.backend_pid)
        self.sites = [{"name": n, "domains": [n], "backends": [f"127.0.0.1:{BACKEND_PORT}"]} for n in names]
        self.write()

    def host_dir(self, index: int) -> Path:
        return self.controller.work / f"edge{index}"

    def host_vars(self, index: int, address: str, sites: list[dict]) -> dict:
        host_dir = self.host_dir(index)
        proxy = self.proxies[index]
        if proxy == "haproxy":
            service = haproxy_service(host_dir, "certops_edge")
        elif self.nginx_stream:
            both = nginx_service(host_dir, "certops_edge", stream=True)
            service = {**both, "certops_edge_config_path": both.pop("certops_edge_http_config_path"),
                       "certops_edge_stream_config_path": both["certops_edge_config_path"],
                       "certops_edge_manage_stream_include": False,
                       "certops_edge_nginx_https_socket": str(host_dir / "https.sock")}
        else:
            service = nginx_service(host_dir, "certops_edge")
        self.pidfiles.append(host_dir / ("haproxy.pid" if proxy == "haproxy" else "nginx/nginx.pid"))
        return self.controller.local_host(
            certops_edge_proxy=proxy,
            certops_edge_acme_directory=self.pebble.directory_url,
            certops_edge_acme_ca_path=self.pebble.ca_cert,
            certops_edge_account_key_src=self.account["key_path"],
            certops_edge_terms_agreed=True,
            certops_edge_store_path=str(self.controller.work / "store"),
            certops_edge_bind_address=address,
            certops_edge_http_port=self.pebble.ports.http01,
            certops_edge_https_port=HTTPS_PORT,
            certops_edge_cert_dir=str(host_dir / "certs"),
            certops_edge_haproxy_admin_socket=str(host_dir / "admin.sock"),
            certops_edge_hsts=True,
            certops_edge_remove_unlisted=True,
            certops_edge_sites=sites,
            **service)

    def write(self, sites: list[dict] | None = None, **extra) -> None:
        hosts = {f"edge{i}": {**self.host_vars(i, a, sites or self.sites), **extra}
                 for i, a in enumerate(self.addresses)}
        self.controller.write_inventory({"all": {"children": {"edge": {"hosts": hosts}}}})

    def run(self, *args, check=True):
        return self.controller.run(PLAYBOOK, *args, check=check)

    def serial(self, address: str, name: str) -> str:
        return handshake(address, HTTPS_PORT, name, self.pebble.root_pem()).serial

    def stop(self) -> None:
        for pidfile in self.pidfiles:
            stop_pidfile(pidfile)
        stop_pidfile(self.backend_pid)


PASSTHROUGH_PLAYBOOK = Path(__file__).resolve().parents[2] / "playbooks" / "passthrough.yml"
PASSTHROUGH_TLS_PORT = 14643
PASSTHROUGH_BACKEND_TLS_PORT = 14644


class PassthroughLayout:
    """One SNI router (HAProxy or nginx) in front of one nginx backend that terminates TLS for
    ``names`` and proxies to a plain-HTTP echo application on its own host."""

    def __init__(self, controller, pebble_server, account, proxy: str, router: str, backend: str,
                 names: list[str], app_port: int) -> None:
        self.controller, self.pebble, self.account = controller, pebble_server, account
        self.proxy, self.router, self.backend, self.names = proxy, router, backend, names
        work = controller.work
        self.pidfiles = [work / "app.pid", work / "proxy" / "haproxy.pid", work / "proxy" / "nginx" / "nginx.pid",
                         work / "b1" / "nginx" / "nginx.pid"]
        for name in names:
            pebble_server.set_address(name, router)  # DNS points at the router
        start_backend(backend, app_port, "app-on-b1", self.pidfiles[0])
        self.sites = [{"name": n, "domains": [n], "upstream": f"{backend}:{app_port}"} for n in names]

    def write(self, common: dict | None = None, **backend_extra) -> None:
        work = self.controller.work
        proxy_service = (haproxy_service(work / "proxy", "certops_passthrough") if self.proxy == "haproxy"
                         else nginx_service(work / "proxy", "certops_passthrough", stream=True))
        every = {"certops_passthrough_acme_directory": self.pebble.directory_url,
                 "certops_passthrough_acme_ca_path": self.pebble.ca_cert,
                 "certops_passthrough_account_key_src": self.account["key_path"],
                 "certops_passthrough_terms_agreed": True,
                 "certops_passthrough_store_path": str(work / "store"), **(common or {})}
        router = self.controller.local_host(
            certops_passthrough_proxy=self.proxy, certops_passthrough_bind_address=self.router,
            certops_passthrough_http_port=self.pebble.ports.http01,
            certops_passthrough_https_port=PASSTHROUGH_TLS_PORT,
            certops_passthrough_manage_stream_include=False, **proxy_service)
        backend = self.controller.local_host(
            certops_passthrough_backend_address=f"{self.backend}:{PASSTHROUGH_BACKEND_TLS_PORT}",
            certops_passthrough_cert_dir=str(work / "b1" / "certs"), certops_passthrough_sites=self.sites,
            **nginx_service(work / "b1", "certops_passthrough"), **backend_extra)
        self.controller.write_inventory({"all": {"vars": every, "children": {
            "passthrough_proxies": {"hosts": {"lb": router}},
            "passthrough_backends": {"hosts": {"b1": backend}}}}})

    def run(self, *args, check=True):
        return self.controller.run(PASSTHROUGH_PLAYBOOK, *args, check=check)

    def stop(self) -> None:
        for pidfile in self.pidfiles:
            stop_pidfile(pidfile)
