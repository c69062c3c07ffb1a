"""Make this checkout importable as ansible_collections.certops.acme for every test."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_ROOT = REPO / ".tmp" / "collections"
_LINK = _ROOT / "ansible_collections" / "certops" / "acme"
_LINK.parent.mkdir(parents=True, exist_ok=True)
if not _LINK.is_symlink():
    _LINK.symlink_to(REPO)
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


import os  # noqa: E402  (after the path set-up above)
from typing import Iterator  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def default_store_untouched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Nothing in the suite may use the default store of whoever runs it: the default store
    (and everything else under XDG_DATA_HOME) lives in a temporary directory for the whole
    session, every ansible-playbook run inherits it, and the session fails if a certops store
    appears there. HOME itself stays: ansible-test keeps its prepared virtualenvs under it."""
    data_home = tmp_path_factory.mktemp("xdg-data-home")
    before = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(data_home)
    yield data_home
    if before is None:
        del os.environ["XDG_DATA_HOME"]
    else:
        os.environ["XDG_DATA_HOME"] = before
    written = data_home / "certops-acme"
    if written.exists():
        pytest.fail(f"a test wrote the default store ({written}: {sorted(p.name for p in written.rglob('*'))[:10]}); "
                    "give every store a path of its own")
