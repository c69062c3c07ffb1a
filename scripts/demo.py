"""The certops.acme demo: a real TLS edge layout on localhost, against a local Pebble.

What it does (state in .demo/, nothing outside it is touched but loopback ports):
  1. starts Pebble + pebble-challtestsrv (Debian packages) on 127.0.0.1, reusing a running one;
  2. starts a plain-HTTP backend on 127.0.0.1:18080;
  3. runs playbooks/edge.yml twice: the first run creates the ACME account, orders
     app.demo.test and api.demo.test in one batch, installs them and runs HAProxy on
     127.0.0.1:14004 (HTTP, stateless http-01; Pebble validates there) and :14443 (HTTPS);
     the second run must change nothing and order nothing;
  4. proves it with a real TLS handshake per name, verified against Pebble's root;
  5. prints a summary.

Run it through scripts/demo.sh (README command 1). `--stop` stops the demo's processes and
fails if any of them, or anything on the demo's ports, is still there.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import socket
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.harness import pebble  # noqa: E402
from tests.harness.ansible import run_playbook  # noqa: E402
from tests.harness.hosts import haproxy_service  # noqa: E402
from tests.harness.processes import pid_alive, pid_from, start_backend, stop_pidfile, wait_port  # noqa: E402
from tests.harness.tls import handshake  # noqa: E402

STATE = REPO / ".demo"
NAMES = ["app.demo.test", "api.demo.test"]
HTTPS_PORT = 14443
BACKEND_PORT = 18080
PEBBLE_BASE_PORT = 14000


def inventory(info: pebble.PebbleInfo) -> dict:
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "certops_edge_acme_directory": info.directory_url,
        "certops_edge_acme_ca_path": info.ca_cert,
        "certops_edge_account_key_src": str(STATE / "account.key"),
        "certops_edge_terms_agreed": True,
        "certops_edge_store_path": str(STATE / "store"),
        "certops_edge_bind_address": "127.0.0.1",
        "certops_edge_http_port": info.ports.http01,
        "certops_edge_https_port": HTTPS_PORT,
        "certops_edge_cert_dir": str(STATE / "host" / "certs"),
        "certops_edge_haproxy_admin_socket": str(STATE / "host" / "haproxy-admin.sock"),
        "certops_edge_hsts": True,
        "certops_edge_sites": [
            {"name": name, "domains": [name], "backends": [f"127.0.0.1:{BACKEND_PORT}"]}
            for name in NAMES],
    }
    # No systemd here: a master-worker HAProxy in .demo/host, reloaded with USR2.
    host.update(haproxy_service(STATE / "host", "certops_edge"))
    return {"all": {"children": {"edge": {"hosts": {"edge-demo": host}}}}}


def stop() -> list[str]:
    """Stop the demo's processes; what is still running or listening afterwards (nothing, normally)."""
    pids = [pid_from(STATE / "host" / "haproxy.pid"), pid_from(STATE / "backend.pid")]
    stop_pidfile(STATE / "host" / "haproxy.pid")
    stop_pidfile(STATE / "backend.pid")
    info = pebble.load(STATE / "pebble")
    if info:
        pids += [info.pebble_pid, info.challtestsrv_pid]
        pebble.stop(info)
    ports = [HTTPS_PORT, BACKEND_PORT, *dataclasses.astuple(pebble.PebblePorts.from_base(PEBBLE_BASE_PORT))]
    left: list[str] = []
    for _attempt in range(50):  # HAProxy's workers close their listeners just after the master exits
        left = [f"process {pid}" for pid in pids if pid and pid_alive(pid)]
        left += [f"a listener on 127.0.0.1:{port}" for port in ports if _listening(port)]
        if not left:
            break
        time.sleep(0.1)
    return left


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def handshake_with_retry(name: str, root: str, serial_wanted: str | None = None):
    """USR2 reloads are asynchronous: give the new worker a moment to take over."""
    last: Exception | None = None
    for _ignored in range(50):
        try:
            result = handshake("127.0.0.1", HTTPS_PORT, name, root)
            if serial_wanted is None or result.serial == serial_wanted:
                return result
        except OSError as error:
            last = error
        time.sleep(0.1)
    raise SystemExit(f"demo: TLS handshake for {name} failed: {last}")


def main() -> int:
    parser = argparse.ArgumentParser(description="certops.acme demo")
    parser.add_argument("--stop", action="store_true", help="stop the demo's processes and exit")
    args = parser.parse_args()
    if args.stop:
        left = stop()
        if left:
            print(f"demo: still running after --stop: {', '.join(left)}")
            return 1
        print("demo: stopped; nothing of it is left running")
        return 0

    STATE.mkdir(exist_ok=True)
    info = pebble.load(STATE / "pebble")
    if info is None or not info.alive():
        # Pebble makes new roots at every start: certificates from an earlier Pebble would not
        # verify any more, so the demo starts from a clean state with it.
        stop()
        for stale in ("store", "host", "account.key"):
            path = STATE / stale
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        info = pebble.start(STATE / "pebble", base_port=PEBBLE_BASE_PORT)
        print(f"demo: started Pebble at {info.directory_url} (log: {info.log_file})")
    else:
        print(f"demo: reusing the running Pebble at {info.directory_url}")
    start_backend("127.0.0.1", BACKEND_PORT, "demo-backend", STATE / "backend.pid")
    (STATE / "inventory.json").write_text(json.dumps(inventory(info), indent=2))

    orders_before = info.new_orders()
    runs = []
    for label in ("first run", "second run"):
        run = run_playbook(REPO / "playbooks" / "edge.yml", STATE / "inventory.json", STATE)
        (STATE / f"{label.replace(' ', '-')}.log").write_text(run.stdout + run.stderr)
        if run.returncode != 0:
            print(run.stdout[-5000:], run.stderr[-3000:])
            print(f"demo: the {label} failed; full log in {STATE}")
            return 1
        runs.append((label, run, info.new_orders()))
    wait_port("127.0.0.1", HTTPS_PORT, pidfile=STATE / "host" / "haproxy.pid")

    root = info.root_pem()
    store_meta = {n: json.loads((STATE / "store" / "certificates" / n / "current" / "meta.json").read_text())
                  for n in NAMES}
    print()
    print("certops.acme demo: TLS edge termination on HAProxy, certificates from Pebble")
    print("=" * 78)
    print(f"{'name':<16} {'serial':<18} {'expires':<22} {'TLS':<8} backend answer")
    for name in NAMES:
        result = handshake_with_retry(name, root, store_meta[name]["serial"])
        backend = json.loads(result.body)
        forwarded = backend["headers"].get("x-forwarded-proto")
        print(f"{name:<16} {result.serial:<18} {store_meta[name]['not_after'][:19]:<22} "
              f"{result.protocol:<8} {result.http_status_line.split(' ', 1)[1]} from "
              f"{backend['backend']} (X-Forwarded-Proto: {forwarded})")
    print("-" * 78)
    previous = orders_before
    for label, run, orders in runs:
        print(f"{label:<11}: {run.seconds:5.1f} s, changed={run.total('changed')}, "
              f"failed={run.total('failed')}, new ACME orders={orders - previous}")
        previous = orders
    print(textwrap.dedent(f"""\
        Every chain above was verified against Pebble's root with the name as SNI/hostname.
        Try it: curl --cacert <(curl -sk {info.management_url}/roots/0) \\
                     --resolve app.demo.test:{HTTPS_PORT}:127.0.0.1 https://app.demo.test:{HTTPS_PORT}/
        Run this command again: nothing changes and nothing is ordered.
        Stop the demo's processes: .venv/bin/python scripts/demo.py --stop"""))
    second = runs[1][1]
    if second.total("changed") != 0 or runs[1][2] != runs[0][2]:
        print("demo: the second run was not idempotent")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
