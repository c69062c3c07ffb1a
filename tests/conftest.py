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
