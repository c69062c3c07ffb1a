"""What the shared store itself costs per certificate, without a CA or Ansible around it.

A real 3-node OpenBao Raft cluster with TLS (tests/harness/openbao.py) on loopback. N
certificates (made with a local CA) go through the store calls a batch makes for a fresh one,
in 10 threads: the first read, lock, read under the lock, (``--note``: the order noted on the
lock), the confirmation before finalizing, the fenced save, release. Then all N are read back
as an idempotent run reads them. Reports wall time, this process's CPU and the three OpenBao
processes' CPU, and store requests.

    .venv/bin/python bench/store_cycle.py 1000
    .venv/bin/python bench/store_cycle.py 1000 --note     # what a note per order costs
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.harness.ansible import collections_path  # noqa: E402

sys.path.insert(0, str(collections_path(REPO / ".tmp")))  # this checkout as certops.acme
from tests.harness import openbao  # noqa: E402
from tests.harness.certs import make_ca, make_leaf  # noqa: E402
from ansible_collections.certops.acme.plugins.module_utils._acme.store.vault import VaultStore  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int, nargs="?", default=1000)
    parser.add_argument("--note", action="store_true", help="note an order on each lock")
    parser.add_argument("--port", type=int, default=14900)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="certops-bench-cycle-"))
    cluster = openbao.start_cluster(work / "bao", port=args.port)
    tick = os.sysconf("SC_CLK_TCK")

    def cpu() -> tuple[float, float]:
        own = resource.getrusage(resource.RUSAGE_SELF)
        bao = 0.0
        for node in cluster.nodes:
            fields = Path(f"/proc/{node.pid}/stat").read_text().rsplit(")", 1)[1].split()
            bao += (int(fields[11]) + int(fields[12])) / tick
        return own.ru_utime + own.ru_stime, bao

    try:
        root = make_ca("Cycle Root")
        intermediate = make_ca("Cycle Intermediate", issuer=root)
        made = [make_leaf(intermediate, (f"c{i}.bench.test",)) for i in range(args.count)]
        store = VaultStore(cluster.urls, token=cluster.token, verify=cluster.ca_cert, mount=cluster.mount,
                           prefix=f"certops-acme/cycle-{uuid.uuid4().hex[:6]}")
        names = [f"c{i}" for i in range(args.count)]

        def fresh(index: int) -> None:
            lock = store.acquire(names[index], 30)
            reading = store.read(names[index])
            if args.note:
                lock.note_order({"url": f"https://ca.bench.test/order/{index}"})
            lock.confirm("finalizing its order")
            key_pem, leaf = made[index]
            store.save(names[index], key_pem, leaf, [intermediate[1]], {"order_url": "https://ca.bench.test/o"},
                       fence=reading.fence)
            lock.release()

        rows = []
        for label in ("fresh", "idempotent read"):
            cpu_before, started, requests_before = cpu(), time.monotonic(), store.requests
            store.read_many(names)
            if label == "fresh":
                with ThreadPoolExecutor(10) as pool:
                    list(pool.map(fresh, range(args.count)))
            seconds, cpu_after = time.monotonic() - started, cpu()
            rows.append((label, seconds, cpu_after[0] - cpu_before[0], cpu_after[1] - cpu_before[1],
                         store.requests - requests_before))
        store.close()
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"store cycle, {args.count} certificates, 3-node OpenBao Raft with TLS on {os.cpu_count()} cores"
          f"{', an order noted on each lock' if args.note else ''}")
    print(f"{'':>16} {'wall s':>7} {'client CPU ms/cert':>19} {'OpenBao CPU ms/cert':>20} {'requests/cert':>14}")
    for label, seconds, client, bao, requests in rows:
        print(f"{label:>16} {seconds:>7.2f} {1000 * client / args.count:>19.2f} {1000 * bao / args.count:>20.2f} "
              f"{requests / args.count:>14.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
