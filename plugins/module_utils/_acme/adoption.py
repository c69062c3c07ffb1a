"""Adopting certificates that hosts already hold into an empty (or older) controller store.

AWX runs each job in a fresh container: without this, every scheduled run would order every
certificate again and hit the CA's duplicate-certificate limit within days. A held certificate
is adopted only when it is usable: key matches, chain links verify, enough validity is left,
and it is newer than what the store has. Key material never leaves this function except
into the store.
"""

from __future__ import annotations

import datetime
from typing import Any, Optional

from .crypto import (certificate_facts, chain_problems, load_private_key, public_key_matches,
                     split_pem_chain, utcnow)
from .errors import CertopsError
from .store import CertificateStore


def _examine(files: dict[str, str], min_remaining: datetime.timedelta,
             now: datetime.datetime) -> tuple[Optional[tuple[Any, ...]], Optional[str]]:
    """Parse one held bundle; return ((key_pem, leaf, chain, facts), None) or (None, problem)."""
    try:
        certs = split_pem_chain(files.get("cert.pem", ""))
        chain = split_pem_chain(files["chain.pem"]) if files.get("chain.pem", "").strip() else []
        key_pem = files.get("privkey.pem", "").encode("ascii")
        key = load_private_key(key_pem, "held key")
    except (CertopsError, KeyError, ValueError) as error:
        return None, f"unreadable: {error}"
    leaf = certs[0]
    chain = chain or certs[1:]
    if not public_key_matches(key, leaf):
        return None, "key does not match the certificate"
    problem = chain_problems(leaf, chain)
    if problem:
        return None, f"chain does not verify: {problem}"
    facts = certificate_facts(leaf)
    if facts.not_after - now < min_remaining:
        return None, f"expires {facts.not_after.isoformat()}, too soon to adopt"
    return (key_pem, leaf, chain, facts), None


def adopt_held(store: CertificateStore, held: list[dict[str, Any]], host: str,
               min_remaining: datetime.timedelta, adopt: bool = True,
               now: Optional[datetime.datetime] = None) -> list[dict[str, Any]]:
    """Summarise what a host holds (no keys) and adopt what the store lacks."""
    now = now or utcnow()
    summary: list[dict[str, Any]] = []
    for item in held:
        name = str(item.get("name", ""))
        entry: dict[str, Any] = {"name": name, "path": item.get("path"), "adopted": False}
        parsed, problem = _examine(item.get("files") or {}, min_remaining, now)
        if parsed is None:
            entry["problem"] = problem
            summary.append(entry)
            continue
        key_pem, leaf, chain, facts = parsed
        entry.update(serial=facts.serial, not_after=facts.not_after.isoformat(),
                     domains=facts.names(), sha256=facts.sha256)
        if adopt:
            try:
                with store.lock(name):
                    current = store.load(name)
                    if current is None or current.facts.not_after < facts.not_after:
                        store.save(name, key_pem, leaf, chain, {"source": f"adopted from {host}",
                                                                "order_url": None})
                        entry["adopted"] = True
            except CertopsError as error:
                entry["problem"] = f"not adopted: {error}"
        summary.append(entry)
    return summary
