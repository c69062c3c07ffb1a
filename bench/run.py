"""Benchmark certops.acme against a local Pebble (PEBBLE_VA_NOSLEEP=1, badNonce at its default 5 %,
authorization reuse off).

For each N: one ansible-playbook run ordering N fresh single-name certificates in one
certops.acme.certificate task (http-01 answered statelessly by a real HAProxy), then an
idempotent re-run. Reports wall time, ACME requests per certificate (counted by the engine),
orders Pebble created, and the controller's peak RSS (/usr/bin/time -v when present, else
the children's ru_maxrss). Medians over --repeat runs.

    .venv/bin/python bench/run.py --sizes 10 100 200 --repeat 3

With --hosts H --per-host N it runs the certops.acme.certificates role instead: H simulated
hosts (local connection, each its own install directory), each needing N certificates of its
own; one task orders all H*N (fresh run), every host installs its N, and the idempotent re-run
adopts, decides and installs nothing. --hosts 1 --per-host 1000 is "1000 on one host".

    .venv/bin/python bench/run.py --hosts 20 --per-host 100 --repeat 1

With --edge N it runs the edge role (HAProxy) on one host with N fresh sites, its idempotent
re-run, and a bare certops.acme.certificate task ordering N other fresh names, for the ratio.

    .venv/bin/python bench/run.py --edge 100 --repeat 1

The comparison with certbot, lego and community.crypto is bench/compare.py (bench/run.sh).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.harness import pebble  # noqa: E402
from tests.harness.ansible import collections_path, playbook_command  # noqa: E402
from tests.harness.processes import stop_pidfile, wait_port  # noqa: E402

sys.path.insert(0, str(collections_path(REPO / ".tmp")))  # this checkout as certops.acme
from ansible_collections.certops.acme.plugins.module_utils._acme.ca.account import (  # noqa: E402
    AccountRequest, create_account, find_account, load_account_key)
from ansible_collections.certops.acme.plugins.module_utils._acme.ca.transport import AcmeTransport  # noqa: E402
from ansible_collections.certops.acme.plugins.module_utils._acme.waiting import Deadline

TIME = "/usr/bin/time"


def start_ca(work: Path, base_port: int) -> tuple[pebble.PebbleInfo, Path, str]:
    """A local Pebble and an account on it: (pebble, account key path, key thumbprint).

    Pebble 2.4 was seen to stop answering newOrder under hundreds of concurrent orders with
    authorization reuse on (bench runs only; the client waited out its deadline correctly).
    Fresh authorizations are what a benchmark of fresh certificates should measure anyway."""
    info = pebble.start(work / "pebble", base_port=base_port, env={"PEBBLE_AUTHZREUSE": "0"})
    key_path = work / "account.key"
    key, _ignored = load_account_key(str(key_path), None, None, create=True)
    transport = AcmeTransport(info.directory_url, verify=info.ca_cert)
    if not find_account(transport, key, Deadline(30, "bench")).exists:
        create_account(transport, key, AccountRequest(terms_agreed=True), Deadline(30, "bench"))
    transport.close()
    return info, key_path, key.thumbprint


def start_responder(work: Path, port: int, thumbprint: str) -> Path:
    config, pidfile = work / "haproxy.cfg", work / "haproxy.pid"
    config.write_text(f"""defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend acme_http
    bind 127.0.0.1:{port}
    acl acme_challenge path_reg ^/\\.well-known/acme-challenge/[-_A-Za-z0-9]+$
    http-request return status 200 content-type text/plain lf-string "%[path,field(-1,/)].{thumbprint}" if acme_challenge
""")
    subprocess.run(["haproxy", "-W", "-D", "-f", str(config), "-p", str(pidfile)], check=True)
    wait_port("127.0.0.1", port, pidfile=pidfile)
    return pidfile


def run_once(work: Path, info: pebble.PebbleInfo, key: Path, names: list[str], workers: int,
             store_options: dict | None = None) -> dict:
    store = work / "store"
    result_file = work / f"result-{uuid.uuid4().hex}.json"
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"certops.acme.certificate": {
            "acme_directory": info.directory_url, "ca_path": info.ca_cert, "account_key_src": str(key),
            **(store_options or {"store_path": str(store)}), "workers": workers, "timeout": 600,
            "certificates": [{"name": n, "domains": [n]} for n in names]}, "register": "r"},
        {"ansible.builtin.copy": {"content": "{{ r | to_json }}", "dest": str(result_file)}}]}]
    playbook = work / "bench.yml"
    playbook.write_text(json.dumps(play))
    inventory = work / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    command, env = playbook_command(playbook, inventory, work)
    measured = ([TIME, "-v"] if os.path.exists(TIME) else []) + command
    orders_before = info.new_orders()
    started = time.monotonic()
    proc = subprocess.run(measured, capture_output=True, text=True, env=env, cwd=work, check=False)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(proc.stdout[-3000:] + proc.stderr[-3000:])
    peak_kb = None
    for line in proc.stderr.splitlines():
        if "Maximum resident set size" in line:
            peak_kb = int(line.split(":")[1])
    if peak_kb is None:
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = json.loads(result_file.read_text())
    requests = sum(result["acme_requests"].values())
    return {"seconds": seconds, "orders": info.new_orders() - orders_before, "requests": requests,
            "peak_mb": peak_kb / 1024, "store_requests": result.get("store_requests") or 0}


def run_role(work: Path, info: pebble.PebbleInfo, key: Path, hosts: int, per_host: int) -> dict:
    hostvars = {}
    for h in range(hosts):
        names = [f"h{h}c{i}-{uuid.uuid4().hex[:6]}.bench.test" for i in range(per_host)]
        hostvars[f"host{h}"] = {
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
            "certops_certificates_list": [{"name": n, "domains": [n]} for n in names],
            "certops_certificates_dest": str(work / f"host{h}"),
        }
    inventory = work / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": hostvars, "vars": {
        "certops_certificates_acme_directory": info.directory_url,
        "certops_certificates_acme_ca_path": info.ca_cert,
        "certops_certificates_account_key_src": str(key),
        "certops_certificates_terms_agreed": True,
        "certops_certificates_store_path": str(work / "store"),
        "certops_certificates_workers": 4}}}))
    playbook = work / "role.yml"
    playbook.write_text(json.dumps([{"name": "bench", "hosts": "all", "gather_facts": False,
                                     "roles": [{"role": "certops.acme.certificates"}]}]))
    command, env = playbook_command(playbook, inventory, work)
    env["ANSIBLE_FORKS"] = "10"
    out = {}
    for label in ("fresh", "rerun"):
        orders_before = info.new_orders()
        started = time.monotonic()
        proc = subprocess.run([TIME, "-v", *command], capture_output=True, text=True, env=env, cwd=work, check=False)
        seconds = time.monotonic() - started
        if proc.returncode != 0:
            raise SystemExit(proc.stdout[-3000:] + proc.stderr[-3000:])
        peak_kb = max([int(line.split(":")[1]) for line in proc.stderr.splitlines()
                       if "Maximum resident set size" in line] or [0])
        recap = [line for line in proc.stdout.splitlines() if "changed=" in line]
        changed = sum(int(line.split("changed=")[1].split()[0]) for line in recap)
        out[label] = {"seconds": seconds, "orders": info.new_orders() - orders_before, "peak_mb": peak_kb / 1024,
                      "changed_tasks": changed}
    return out


def run_edge(work: Path, info: pebble.PebbleInfo, key: Path, sites: int, https_port: int) -> dict:
    """The edge role on one simulated HAProxy host (127.0.0.1) serving ``sites`` fresh sites,
    then its idempotent re-run, then a bare certificate task ordering as many other fresh names
    (the edge's HAProxy answers their http-01 too: same account)."""
    from tests.harness.hosts import haproxy_service
    host_dir = work / "edge0"
    names = [f"e{i}-{uuid.uuid4().hex[:6]}.bench.test" for i in range(sites)]
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
            "certops_edge_proxy": "haproxy", "certops_edge_acme_directory": info.directory_url,
            "certops_edge_acme_ca_path": info.ca_cert, "certops_edge_account_key_src": str(key),
            "certops_edge_terms_agreed": True, "certops_edge_store_path": str(work / "store"),
            "certops_edge_bind_address": "127.0.0.1", "certops_edge_http_port": info.ports.http01,
            "certops_edge_https_port": https_port, "certops_edge_cert_dir": str(host_dir / "certs"),
            "certops_edge_haproxy_admin_socket": str(host_dir / "admin.sock"), "certops_edge_workers": 4,
            "certops_edge_sites": [{"name": n, "domains": [n], "backends": ["127.0.0.1:18999"]} for n in names],
            **haproxy_service(host_dir, "certops_edge")}
    inventory = work / "inventory.json"
    inventory.write_text(json.dumps({"all": {"children": {"edge": {"hosts": {"edge0": host}}}}}))
    command, env = playbook_command(REPO / "playbooks" / "edge.yml", inventory, work)
    out = {}
    try:
        for label in ("fresh", "rerun"):
            orders_before = info.new_orders()
            started = time.monotonic()
            proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=work, check=False)
            if proc.returncode != 0:
                raise SystemExit(proc.stdout[-3000:] + proc.stderr[-3000:])
            out[label] = {"seconds": time.monotonic() - started, "orders": info.new_orders() - orders_before}
        bare_dir = work / "bare"
        bare_dir.mkdir()
        bare_names = [f"t{i}-{uuid.uuid4().hex[:6]}.bench.test" for i in range(sites)]
        out["bare"] = run_once(bare_dir, info, key, bare_names, 4)
    finally:
        stop_pidfile(host_dir / "haproxy.pid")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--base-port", type=int, default=14300)
    parser.add_argument("--hosts", type=int, default=0, help="run the certificates role on this many hosts")
    parser.add_argument("--per-host", type=int, default=100)
    parser.add_argument("--edge", type=int, default=0, metavar="SITES",
                        help="run the edge role (HAProxy) on one host with this many sites, against a bare task")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="certops-bench-"))
    info, key_path, thumbprint = start_ca(work, args.base_port)
    if args.edge:
        try:
            runs = []
            for round_no in range(args.repeat):
                run_dir = work / f"edge-{round_no}"
                run_dir.mkdir()
                runs.append(run_edge(run_dir, info, key_path, args.edge, args.base_port + 90))
        finally:
            pebble.stop(info)
        fresh = statistics.median(r["fresh"]["seconds"] for r in runs)
        bare = statistics.median(r["bare"]["seconds"] for r in runs)
        print(f"certops.acme.edge role (HAProxy), {args.edge} fresh sites on one host, {os.cpu_count()} cores, "
              f"median of {args.repeat}")
        print(f"  edge fresh   {fresh:7.2f} s, orders {statistics.median(r['fresh']['orders'] for r in runs):.0f}")
        print(f"  edge re-run  {statistics.median(r['rerun']['seconds'] for r in runs):7.2f} s, "
              f"orders {max(r['rerun']['orders'] for r in runs)}")
        print(f"  bare task    {bare:7.2f} s for {args.edge} other fresh certificates (certops.acme.certificate)")
        print(f"  edge / bare  {fresh / bare:7.2f}x")
        shutil.rmtree(work, ignore_errors=True)
        return 0
    responder = start_responder(work, info.ports.http01, thumbprint)
    rows = []
    if args.hosts:
        try:
            runs = []
            for round_no in range(args.repeat):
                run_dir = work / f"role-{round_no}"
                run_dir.mkdir()
                runs.append(run_role(run_dir, info, key_path, args.hosts, args.per_host))
        finally:
            stop_pidfile(responder)
            pebble.stop(info)
        total = args.hosts * args.per_host
        print(f"certops.acme.certificates role: {args.hosts} host(s) x {args.per_host} certificates = {total}, "
              f"{os.cpu_count()} cores, median of {args.repeat}")
        for label in ("fresh", "rerun"):
            print(f"  {label:6} {statistics.median(r[label]['seconds'] for r in runs):7.2f} s, "
                  f"orders {statistics.median(r[label]['orders'] for r in runs):.0f}, "
                  f"changed tasks {max(r[label]['changed_tasks'] for r in runs)}, "
                  f"peak {max(r[label]['peak_mb'] for r in runs):.0f} MB")
        shutil.rmtree(work, ignore_errors=True)
        return 0
    try:
        for size in args.sizes:
            fresh, again = [], []
            for _ignored in range(args.repeat):
                run_dir = work / f"run-{uuid.uuid4().hex[:8]}"
                run_dir.mkdir()
                names = [f"b{i}-{uuid.uuid4().hex[:8]}.bench.test" for i in range(size)]
                fresh.append(run_once(run_dir, info, key_path, names, args.workers))
                again.append(run_once(run_dir, info, key_path, names, args.workers))
                shutil.rmtree(run_dir / "store", ignore_errors=True)
            rows.append({
                "n": size,
                "fresh_s": statistics.median(r["seconds"] for r in fresh),
                "rerun_s": statistics.median(r["seconds"] for r in again),
                "requests_per_cert": statistics.median(r["requests"] / size for r in fresh),
                "orders": statistics.median(r["orders"] for r in fresh),
                "rerun_orders": max(r["orders"] for r in again),
                "peak_mb": max(r["peak_mb"] for r in fresh + again),
            })
    finally:
        stop_pidfile(responder)
        pebble.stop(info)
    print(f"certops.acme on {os.cpu_count()} cores, Pebble 2.4 local, workers={args.workers}, "
          f"median of {args.repeat} (wall time includes ansible-playbook start-up)")
    print(f"{'N':>5} {'fresh s':>8} {'re-run s':>9} {'req/cert':>9} {'orders':>7} {'re-run orders':>14} {'peak MB':>8}")
    for row in rows:
        print(f"{row['n']:>5} {row['fresh_s']:>8.2f} {row['rerun_s']:>9.2f} {row['requests_per_cert']:>9.2f} "
              f"{row['orders']:>7.0f} {row['rerun_orders']:>14} {row['peak_mb']:>8.0f}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
