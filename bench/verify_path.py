"""What trusted adoption costs: path verification (cryptography's X.509 verifier) of held
certificates against the store's, configured and system anchors, per certificate.

    .venv/bin/python bench/verify_path.py --count 1000

An idempotent run verifies nothing (held certificates not newer than the store's are skipped);
this is the cost when a fresh store (an AWX job) adopts a host's certificates.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# Importing the tests' conftest makes ansible_collections.certops.acme importable.
import tests.conftest  # noqa: E402,F401  pylint: disable=unused-import

from tests.harness.certs import make_ca, make_chain  # noqa: E402
from ansible_collections.certops.acme.plugins.module_utils._acme.crypto import system_trust, verify_path  # noqa: E402
from ansible_collections.certops.acme.plugins.module_utils._acme.names import Identifier  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    count = parser.parse_args().count
    root = make_ca()
    certificates = [make_chain(names=(f"n{i}.example.com",), root=root) for i in range(min(count, 50))]
    started = time.perf_counter()
    anchors = list(system_trust()) + [root[1]]
    loaded = time.perf_counter() - started
    now = datetime.datetime.now(datetime.timezone.utc)
    started = time.perf_counter()
    for i in range(count):
        _key, leaf, chain = certificates[i % len(certificates)]
        assert verify_path(leaf, chain, anchors, Identifier("dns", f"n{i % len(certificates)}.example.com"), now) is None
    spent = time.perf_counter() - started
    print(f"system roots: {len(anchors) - 1} loaded in {loaded * 1000:.1f} ms; "
          f"{count} paths verified in {spent:.2f} s ({spent / count * 1000:.2f} ms each)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
