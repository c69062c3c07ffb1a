"""The shared store against the file store, in one run on one machine.

A local Pebble (badNonce at its default 5 %), a real HAProxy answering http-01, and a real
3-node OpenBao Raft cluster on 127.0.0.31-33 with TLS (tests/harness/openbao.py). For each
backend: 100 fresh certificates in one certops.acme.certificate task, then 1000 certificates
already stored, checked idempotently (the daily run). The 1000 are made with a local CA into
the file store and copied into Vault (see ``stock``). Reports wall time (ansible-playbook
start-up included) and store requests per certificate (counted by the Vault client).

    .venv/bin/python bench/store.py            # target: vault within 1.3x of file (#33)
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.run import run_once, start_ca, start_responder  # noqa: E402
from tests.harness import openbao, pebble  # noqa: E402
from tests.harness.processes import stop_pidfile  # noqa: E402

from tests.harness.certs import make_ca, make_leaf  # noqa: E402

from ansible_collections.certops.acme.plugins.module_utils._acme.ari import meta_at_issuance  # noqa: E402
from ansible_collections.certops.acme.plugins.module_utils._acme.store.copy import copy_store  # noqa: E402
from ansible_collections.certops.acme.plugins.module_utils._acme.store.files import FileStore  # noqa: E402
from ansible_collections.certops.acme.plugins.module_utils._acme.store.vault import VaultStore  # noqa: E402


def stock(store: FileStore, names: list[str]) -> None:
    """Certificates already stored, as a batch stores what it issued (ARI asked a day later).
    Made here with a local CA: Pebble 2.4 stalls when one process orders thousands, and an
    idempotent run never asks the CA anyway."""
    root = make_ca("Bench Root")
    intermediate = make_ca("Bench Intermediate", issuer=root)
    now = datetime.datetime.now(datetime.timezone.utc)
    for name in names:
        key_pem, leaf = make_leaf(intermediate, (name,), days_left=80)
        store.save(name, key_pem, leaf, [intermediate[1]], {"ari": meta_at_issuance(now), "source": "bench"})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fresh", type=int, default=100)
    parser.add_argument("--idempotent", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="idempotent re-runs per backend (median)")
    parser.add_argument("--base-port", type=int, default=14600)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="certops-bench-store-"))
    cluster = openbao.start_cluster(work / "bao", port=args.base_port + 100)
    rows = []
    many: list[str] = []
    file_store = ""
    info = None
    responder = None
    try:
        for index, backend in enumerate(("file", "vault")):
            run_dir = work / backend
            run_dir.mkdir()
            # Each backend gets a Pebble of its own: one that already holds the first backend's
            # thousands of orders answers the second more slowly, which would be charged to
            # the second backend.
            info, key_path, thumbprint = start_ca(run_dir, args.base_port + 20 * index)
            responder = start_responder(run_dir, info.ports.http01, thumbprint)
            if backend == "file":
                store = {"store": "file", "store_path": str(run_dir / "store")}
            else:
                store = {"store": "vault", "vault_url": cluster.urls, "vault_token": cluster.token,
                         "vault_ca_cert": cluster.ca_cert, "vault_prefix": f"certops-acme/bench-{uuid.uuid4().hex[:6]}"}
            fresh_names = [f"f{i}-{uuid.uuid4().hex[:8]}.bench.test" for i in range(args.fresh)]
            fresh = run_once(run_dir, info, key_path, fresh_names, 4, store)
            if backend == "file":
                many = [f"m{i}-{uuid.uuid4().hex[:8]}.bench.test" for i in range(args.idempotent)]
                file_store = str(run_dir / "store")
                stock(FileStore(file_store), many)
            else:
                # The same certificates, moved into Vault as store_copy does.
                target = VaultStore(cluster.urls, token=cluster.token, verify=cluster.ca_cert,
                                    prefix=store["vault_prefix"])
                copy_store(FileStore(file_store), target, many)
                target.close()
            again = [run_once(run_dir, info, key_path, many, 4, store) for _ignored in range(args.repeat)]
            assert all(r["orders"] == 0 for r in again), "an idempotent run ordered"
            rows.append({"backend": backend, "fresh_s": fresh["seconds"],
                         "fresh_store_req": fresh["store_requests"] / args.fresh,
                         "idem_s": statistics.median(r["seconds"] for r in again),
                         "idem_store_req": statistics.median(r["store_requests"] for r in again) / args.idempotent,
                         "peak_mb": max(r["peak_mb"] for r in [fresh, *again])})
            stop_pidfile(responder)
            pebble.stop(info)
            info = responder = None
    finally:
        if responder is not None:
            stop_pidfile(responder)
        if info is not None:
            pebble.stop(info)
        cluster.stop()
    print(f"store backends on {os.cpu_count()} cores: {args.fresh} fresh in one task; {args.idempotent} stored, "
          f"checked idempotently (median of {args.repeat}); Vault = 3-node OpenBao Raft cluster, TLS, loopback")
    print(f"{'backend':>8} {'fresh s':>8} {'store req/cert':>15} {'idempotent s':>13} {'store req/cert':>15} {'peak MB':>8}")
    for row in rows:
        print(f"{row['backend']:>8} {row['fresh_s']:>8.2f} {row['fresh_store_req']:>15.1f} {row['idem_s']:>13.2f} "
              f"{row['idem_store_req']:>15.1f} {row['peak_mb']:>8.0f}")
    file_row, vault_row = rows
    print(f"ratio vault/file: fresh {vault_row['fresh_s'] / file_row['fresh_s']:.2f}x, "
          f"idempotent {vault_row['idem_s'] / file_row['idem_s']:.2f}x (target <= 1.3x)")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
