"""Copy one store into another: a file store into Vault when a second controller joins, and
back (a Vault being retired, a backup kept as files).

Each certificate's current version travels as it is (key, certificate, chain, metadata and
its version name), so copying again changes nothing: a certificate is written only when the
target lacks it or holds an older one (it expires earlier). A newer one in the target is never
replaced. Account records, trust anchors and the account key kept in the store are copied
where missing. Pending orders are not:
they live for minutes. Each write happens under the target's lock of that certificate.
"""

from __future__ import annotations

import datetime
from typing import Any, Optional

from . import ACCOUNT_KEYS, ACCOUNTS, TRUST, CertificateStore, VersionData


def _not_after(data: Optional[VersionData]) -> str:
    value = (data.meta.get("not_after") if data else "") or ""
    try:
        return datetime.datetime.fromisoformat(str(value)).isoformat()
    except ValueError:
        return ""


def copy_store(source: CertificateStore, target: CertificateStore, names: Optional[list[str]] = None,
               write: bool = True) -> dict[str, Any]:
    """Copy ``names`` (default: every certificate of ``source``) into ``target``. ``write=False``
    (check mode) reports what would be copied. Returns the task result."""
    copied, kept, newer_in_target = [], [], []
    for name in names if names is not None else source.names():
        data = source.export_version(name)
        if data is None:
            continue
        current = target.export_version(name)
        if current is not None and current.version == data.version:
            kept.append(name)
            continue
        if current is not None and _not_after(current) > _not_after(data):
            newer_in_target.append(name)
            continue
        if write:
            with target.lock(name):
                target.import_version(name, data)
        copied.append(name)
    records = 0
    # The account key kept in the store (account_key_in_store) goes along: without it the
    # target's first run would make a new key and a new account. One already there is kept.
    for kind in (ACCOUNTS, TRUST, ACCOUNT_KEYS):
        present = set(target.export_records(kind))
        for key, record in source.export_records(kind).items():
            if key not in present:
                if write:
                    target.import_record(kind, key, record)
                records += 1
    return {"changed": bool(copied or records), "copied": copied, "unchanged": kept,
            "newer_in_target": newer_in_target, "records_copied": records,
            "source": source.describe(), "target": target.describe()}
