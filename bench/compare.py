"""Side-by-side: certops.acme, certbot, lego and community.crypto on one local Pebble.

One Pebble (PEBBLE_VA_NOSLEEP=1, badNonce at its default 5 %, authorization reuse off) serves
every tool in the same run. Each tool gets fresh single-name certificates (http-01), the way its
documentation tells users to get N certificates:

- certops.acme: one ``certops.acme.certificate`` task listing all N (stateless http-01 answered
  by a real HAProxy); the idempotent re-run is the same playbook again.
- certbot (Debian package): ``certbot certonly --standalone`` once per name; the re-run is
  ``certbot renew`` (one command that checks every certificate).
- lego (Debian package): ``lego run`` once per name with its built-in HTTP server; the re-run is
  ``lego renew --days 30`` once per name.
- community.crypto (from the PyPI ``ansible`` package, its own venv): the documented two-step
  pattern in one playbook - private keys and CSRs (``openssl_privatekey``, ``openssl_csr``),
  ``acme_certificate`` step one, challenge files copied to a webroot served over HTTP, step two;
  each step a task looping over the N certificates. The re-run is the same playbook again.

Before timing, each tool issues one warm-up certificate (account registration, caches), so
every figure is steady state. Per tool and N: wall time (fresh and re-run), ACME requests per
certificate (Pebble's log), orders, and peak RSS of the largest process (/usr/bin/time -v).
A command that fails is run again (at most twice more), its time counted, and reported as a
failed run: that is what the user's loop would do.
Medians over --repeat rounds; tools run one after another, never at the same time.

    bash bench/run.sh                 # installs the tools, then runs this
    .venv/bin/python bench/compare.py --sizes 10 100 --repeat 3
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.run import start_ca, start_responder  # noqa: E402
from tests.harness import pebble  # noqa: E402
from tests.harness.ansible import playbook_command  # noqa: E402
from tests.harness.processes import stop_pidfile, wait_port  # noqa: E402
from ansible_collections.certops.acme.plugins.module_utils._acme.ca.account import load_account_key  # noqa: E402

TIME = "/usr/bin/time"
CRYPTO_VENV = Path(os.environ.get("CERTOPS_BENCH_CRYPTO_VENV", REPO / ".venv-bench-crypto"))
TOOLS = ("certops.acme", "certbot", "lego", "community.crypto")
RETRIES = 2


def last_error_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines()
             if "rror" in line and not line.lstrip().startswith(("Command being timed", "Exit status"))]
    return lines[-1][:200] if lines else "(no error line)"


@dataclass
class Measured:
    seconds: float = 0.0
    requests: int = 0
    orders: int = 0
    peak_kb: int = 0
    commands: int = 0
    failed_runs: int = 0


@dataclass
class Bench:
    work: Path
    info: pebble.PebbleInfo
    account_key: Path
    thumbprint: str
    results: list[dict] = field(default_factory=list)

    # --- measuring ------------------------------------------------------------------------
    def requests_so_far(self) -> int:
        return self.info.count_log("-> calling handler()")

    def measure(self, commands: list[list[str]], env: dict[str, str], cwd: Path) -> Measured:
        """Run the commands one after another (as a user's loop would) and add them up."""
        out = Measured()
        requests, orders = self.requests_so_far(), self.info.new_orders()
        started = time.monotonic()
        for command in commands:
            # A run that fails is run again, as the user's loop or cron job would, and counted: with
            # Pebble's 5 % badNonce, Debian's certbot 2.1 aborts when two answers in a row are badNonce.
            for attempt in range(1 + RETRIES):
                proc = subprocess.run([TIME, "-v", *command], capture_output=True, text=True, env=env, cwd=cwd,
                                      check=False)
                for line in proc.stderr.splitlines():
                    if "Maximum resident set size" in line:
                        out.peak_kb = max(out.peak_kb, int(line.split(":")[1]))
                out.commands += 1
                if proc.returncode == 0:
                    break
                out.failed_runs += 1
                print(f"    {command[0]} failed ({proc.returncode}), attempt {attempt + 1}: "
                      f"{last_error_line(proc.stdout + proc.stderr)}", flush=True)
            else:
                raise SystemExit(f"{command[0]} failed {1 + RETRIES} times:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        out.seconds = time.monotonic() - started
        out.requests = self.requests_so_far() - requests
        out.orders = self.info.new_orders() - orders
        return out

    # --- the tools ------------------------------------------------------------------------
    def certops(self, names: list[str], place: Path) -> tuple[Measured, Measured]:
        play = [{"name": "bench", "hosts": "localhost", "gather_facts": False, "tasks": [
            {"name": "Order every certificate in one task", "certops.acme.certificate": {
                "acme_directory": self.info.directory_url, "ca_path": self.info.ca_cert,
                "account_key_src": str(self.account_key), "store_path": str(place / "store"),
                "timeout": 900, "certificates": [{"name": n, "domains": [n]} for n in names]}}]}]
        playbook, inventory = place / "certops.yml", place / "inventory.json"
        playbook.write_text(json.dumps(play))
        inventory.write_text(json.dumps({"all": {"hosts": {"localhost": {
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
        command, env = playbook_command(playbook, inventory, place)
        responder = start_responder(place, self.info.ports.http01, self.thumbprint)
        try:
            return self.measure([command], env, place), self.measure([command], env, place)
        finally:
            stop_pidfile(responder)

    def certbot(self, names: list[str], place: Path) -> tuple[Measured, Measured]:
        dirs = ["--config-dir", str(place / "etc"), "--work-dir", str(place / "var"), "--logs-dir", str(place / "log")]
        env = {**os.environ, "REQUESTS_CA_BUNDLE": self.info.ca_cert}
        issue = [["certbot", "certonly", "--standalone", "--non-interactive", "--agree-tos",
                  "--register-unsafely-without-email", "--server", self.info.directory_url,
                  "--preferred-challenges", "http", "--http-01-port", str(self.info.ports.http01),
                  "--http-01-address", "127.0.0.1", "--key-type", "ecdsa", "-d", name, *dirs] for name in names]
        renew = [["certbot", "renew", "--non-interactive", "--no-random-sleep-on-renew", *dirs]]
        return self.measure(issue, env, place), self.measure(renew, env, place)

    def lego(self, names: list[str], place: Path) -> tuple[Measured, Measured]:
        env = {**os.environ, "LEGO_CA_CERTIFICATES": self.info.ca_cert}
        common = ["lego", "--server", self.info.directory_url, "--email", "bench@example.com", "--accept-tos",
                  "--http", "--http.port", f"127.0.0.1:{self.info.ports.http01}", "--key-type", "ec256",
                  "--path", str(place / "lego")]
        issue = [[*common, "--domains", name, "run"] for name in names]
        renew = [[*common, "--domains", name, "renew", "--days", "30"] for name in names]
        return self.measure(issue, env, place), self.measure(renew, env, place)

    def community_crypto(self, names: list[str], place: Path) -> tuple[Measured, Measured]:
        webroot = place / "webroot"
        (webroot / ".well-known" / "acme-challenge").mkdir(parents=True, exist_ok=True)
        certs = str(place / "certs")
        acme = {"acme_version": 2, "acme_directory": self.info.directory_url,
                "account_key_src": str(place.parent / "crypto-account.key"), "terms_agreed": True,
                "challenge": "http-01", "remaining_days": 30,
                "csr": certs + "/{{ item }}.csr", "dest": certs + "/{{ item }}.crt",
                "fullchain_dest": certs + "/{{ item }}-fullchain.crt"}
        play = [{"name": "community.crypto two-step pattern", "hosts": "localhost", "gather_facts": False,
                 "vars": {"names": names}, "tasks": [
                     {"name": "Certificate directory", "ansible.builtin.file": {"path": certs, "state": "directory"}},
                     {"name": "Private keys", "community.crypto.openssl_privatekey": {
                         "path": certs + "/{{ item }}.key", "type": "ECC", "curve": "secp256r1"},
                      "loop": "{{ names }}"},
                     {"name": "CSRs", "community.crypto.openssl_csr": {
                         "path": certs + "/{{ item }}.csr", "privatekey_path": certs + "/{{ item }}.key",
                         "common_name": "{{ item }}", "subject_alt_name": ["DNS:{{ item }}"]},
                      "loop": "{{ names }}"},
                     {"name": "Step one: create the challenges", "community.crypto.acme_certificate": acme,
                      "loop": "{{ names }}", "register": "challenges"},
                     {"name": "Put the challenge files in the webroot", "ansible.builtin.copy": {
                         "dest": str(webroot) + "/{{ item.challenge_data[item.item]['http-01']['resource'] }}",
                         "content": "{{ item.challenge_data[item.item]['http-01']['resource_value'] }}"},
                      "loop": "{{ challenges.results }}",
                      "when": "item is changed and item.item in item.challenge_data"},
                     {"name": "Step two: let the CA validate and get the certificates",
                      "community.crypto.acme_certificate": {**acme, "data": "{{ item }}", "csr": certs + "/{{ item.item }}.csr",
                                                            "dest": certs + "/{{ item.item }}.crt",
                                                            "fullchain_dest": certs + "/{{ item.item }}-fullchain.crt"},
                      "loop": "{{ challenges.results }}", "when": "item is changed"},
                 ]}]
        playbook, inventory = place / "crypto.yml", place / "inventory.ini"
        playbook.write_text(json.dumps(play))
        inventory.write_text(f"localhost ansible_connection=local ansible_python_interpreter={CRYPTO_VENV / 'bin' / 'python'}\n")
        env = {**os.environ, "SSL_CERT_FILE": self.info.ca_cert, "ANSIBLE_NOCOLOR": "1",
               "ANSIBLE_LOCAL_TEMP": str(place / "tmp"), "ANSIBLE_HOST_KEY_CHECKING": "False"}
        command = [str(CRYPTO_VENV / "bin" / "ansible-playbook"), "-i", str(inventory), str(playbook)]
        server = subprocess.Popen([sys.executable, "-m", "http.server", str(self.info.ports.http01), "--bind",
                                   "127.0.0.1", "--directory", str(webroot)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port("127.0.0.1", self.info.ports.http01, pid=server.pid)
            return self.measure([command], env, place), self.measure([command], env, place)
        finally:
            server.terminate()
            server.wait()

    def run_tool(self, tool: str, names: list[str], place: Path) -> tuple[Measured, Measured]:
        place.mkdir(parents=True, exist_ok=True)
        runner = {"certops.acme": self.certops, "certbot": self.certbot, "lego": self.lego,
                  "community.crypto": self.community_crypto}[tool]
        return runner(names, place)


def fresh_names(tool: str, size: int) -> list[str]:
    tag = {"certops.acme": "co", "certbot": "cb", "lego": "lg", "community.crypto": "cc"}[tool]
    run = uuid.uuid4().hex[:6]
    return [f"{tag}{i}-{run}.bench.test" for i in range(size)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--repeat-large", type=int, default=None,
                        help="rounds for N >= 100 (default: --repeat); certbot and lego take minutes per round there")
    parser.add_argument("--tools", nargs="+", default=list(TOOLS), choices=TOOLS)
    parser.add_argument("--base-port", type=int, default=14300)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="certops-compare-"))
    info, key_path, thumbprint = start_ca(work, args.base_port)
    load_account_key(str(work / "crypto-account.key"), None, None, create=True)
    bench = Bench(work, info, key_path, thumbprint)
    rows: dict[tuple[str, int], dict[str, list]] = {}
    try:
        for tool in args.tools:  # warm-up: accounts, caches; not measured
            bench.run_tool(tool, fresh_names(tool, 1), work / f"{tool}-warmup")
        for size in args.sizes:
            rounds = args.repeat_large if size >= 100 and args.repeat_large else args.repeat
            for round_no in range(rounds):
                for tool in args.tools:
                    place = work / f"{tool}-{size}-{round_no}"
                    fresh, again = bench.run_tool(tool, fresh_names(tool, size), place)
                    row = rows.setdefault((tool, size), {"fresh": [], "again": []})
                    row["fresh"].append(fresh)
                    row["again"].append(again)
                    print(f"  {tool:17} N={size:<4} round {round_no + 1}: fresh {fresh.seconds:7.2f} s, "
                          f"re-run {again.seconds:6.2f} s, {fresh.requests / size:5.1f} req/cert, "
                          f"{fresh.orders} orders, peak {max(fresh.peak_kb, again.peak_kb) / 1024:.0f} MB", flush=True)
    finally:
        pebble.stop(info)

    table = []
    for (tool, size), row in rows.items():
        table.append({
            "tool": tool, "n": size, "rounds": len(row["fresh"]),
            "fresh_s": statistics.median(m.seconds for m in row["fresh"]),
            "rerun_s": statistics.median(m.seconds for m in row["again"]),
            "requests_per_cert": statistics.median(m.requests / size for m in row["fresh"]),
            "rerun_requests": statistics.median(m.requests for m in row["again"]),
            "orders": statistics.median(m.orders for m in row["fresh"]),
            "peak_mb": max(m.peak_kb for m in row["fresh"] + row["again"]) / 1024,
            "failed_runs": sum(m.failed_runs for m in row["fresh"] + row["again"]),
        })
    ours = {r["n"]: r for r in table if r["tool"] == "certops.acme"}
    for r in table:
        base = ours.get(r["n"])
        r["fresh_ratio"] = r["fresh_s"] / base["fresh_s"] if base else None
        r["rerun_ratio"] = r["rerun_s"] / base["rerun_s"] if base else None

    versions = {"certbot": subprocess.run(["certbot", "--version"], capture_output=True, text=True,
                                          check=False).stdout.strip(),
                "lego": subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "lego"], capture_output=True,
                                       text=True, check=False).stdout.strip(),
                "community.crypto": subprocess.run(
                    [str(CRYPTO_VENV / "bin" / "ansible-galaxy"), "collection", "list", "community.crypto"],
                    capture_output=True, text=True, check=False).stdout.strip().splitlines()[-1:]}
    args.output.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    (args.output / f"compare-{stamp}.json").write_text(json.dumps({"rows": table, "versions": versions}, indent=2))

    print(f"\n{os.cpu_count()} cores, Pebble 2.4 local (VA no sleep, 5 % badNonce, no authz reuse), "
          f"median of {args.repeat} rounds (N >= 100: {args.repeat_large or args.repeat}); ratios are tool time / certops.acme time\n")
    print("| tool | N | fresh s | × | re-run s | × | ACME req/cert | re-run req | peak MB | failed runs |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in sorted(table, key=lambda r: (r["n"], TOOLS.index(r["tool"]))):
        print(f"| {r['tool']} | {r['n']} | {r['fresh_s']:.2f} | {r['fresh_ratio']:.1f} | {r['rerun_s']:.2f} | "
              f"{r['rerun_ratio']:.1f} | {r['requests_per_cert']:.1f} | {r['rerun_requests']:.0f} | {r['peak_mb']:.0f} | "
              f"{r['failed_runs']} |")
    print(f"\nversions: {versions}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
