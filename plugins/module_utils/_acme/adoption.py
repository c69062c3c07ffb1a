"""Adopting certificates that hosts already hold into an empty (or older) controller store.

AWX runs each job in a fresh container: without this, every scheduled run would order every
certificate again and hit the CA's duplicate-certificate limit within days. But what a host
holds is only as trustworthy as that host: a self-signed placeholder, or a key someone put
there, must never reach the store, because the store is what every other host installs. So a
held certificate is adopted only when

- its key matches and its chain links (no repeats, bounded length);
- it is not self-signed, and verifies as a TLS server path to a trust anchor: the chain tops
  this store has seen its CA issue through, roots the user configured, or the system's;
- it covers every name the certificate is wanted for;
- enough validity is left, and it is newer than the store's certificate - and from the same
  issuer, since a store certificate is never replaced by another CA's.

Every refusal is reported (host, name, why). Key material never leaves this function except
into the store.
"""

from __future__ import annotations

import contextlib
import datetime
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence

try:
    from cryptography import x509
except ImportError:  # dependencies.require_controller_libraries() names what is missing
    pass

from .claims import carried
from .crypto import (MAX_CHAIN_LENGTH, CertificateFacts, certificate_facts, chain_problems, is_self_signed,
                     load_private_key, public_key_matches, split_pem_chain, utcnow, verify_path, without_repeats)
from .errors import CertopsError
from .names import Identifier
from .store import CertificateStore


@dataclass
class HeldBundle:
    key_pem: bytes
    leaf: "x509.Certificate"
    chain: list["x509.Certificate"]
    facts: CertificateFacts


@dataclass
class AdoptionPolicy:
    """What a held certificate must satisfy to enter the store."""

    anchors: Sequence["x509.Certificate"]
    min_remaining: datetime.timedelta
    #: certificate name -> the identifiers it is wanted for (unknown names: its own first one)
    wanted: Mapping[str, Sequence[Identifier]] = field(default_factory=dict)
    #: More anchors, loaded on the first verification only (the store's and the system's: an
    #: idempotent run, whose hosts hold nothing newer than the store, never needs them).
    more_anchors: Optional[Callable[[], Sequence["x509.Certificate"]]] = None
    _loaded: Optional[list["x509.Certificate"]] = field(default=None, init=False, repr=False)

    def trust_anchors(self) -> list["x509.Certificate"]:
        if self._loaded is None:
            self._loaded = [*self.anchors, *(self.more_anchors() if self.more_anchors else [])]
        return self._loaded


def _parse(files: Mapping[str, str]) -> HeldBundle:
    certs = split_pem_chain(files.get("cert.pem", ""))
    chain = split_pem_chain(files["chain.pem"]) if files.get("chain.pem", "").strip() else []
    key_pem = files.get("privkey.pem", "").encode("ascii")
    key = load_private_key(key_pem, "held key")
    leaf = certs[0]
    raw_chain = chain or certs[1:]
    if len(raw_chain) > MAX_CHAIN_LENGTH:
        raise CertopsError(f"the chain has {len(raw_chain)} certificates; more than {MAX_CHAIN_LENGTH} is refused")
    chain = without_repeats(raw_chain)
    if not public_key_matches(key, leaf):
        raise CertopsError("key does not match the certificate")
    return HeldBundle(key_pem, leaf, chain, certificate_facts(leaf))


def judge(name: str, held: HeldBundle, policy: AdoptionPolicy, now: datetime.datetime) -> Optional[str]:
    """Why a parsed held bundle may not be adopted, or None."""
    if is_self_signed(held.leaf):
        return "self-signed (a placeholder is never adopted)"
    problem = chain_problems(held.leaf, held.chain)
    if problem:
        return f"chain does not verify: {problem}"
    wanted = list(policy.wanted.get(name) or held.facts.identifiers[:1])
    missing = [i.value for i in wanted if i not in held.facts.identifiers]
    if missing:
        return f"does not cover {', '.join(missing)}"
    if not wanted:
        return "names no DNS name or IP address"
    problem = verify_path(held.leaf, held.chain, policy.trust_anchors(), wanted[0], now)
    if problem:
        return problem
    if held.facts.not_after - now < policy.min_remaining:
        return f"expires {held.facts.not_after.isoformat()}, too soon to adopt"
    return None


def adopt_held(store: CertificateStore, held: list[dict[str, Any]], host: str, policy: AdoptionPolicy,
               adopt: bool = True, now: Optional[datetime.datetime] = None,
               party: Optional[str] = None) -> list[dict[str, Any]]:
    """Summarise what a host holds (no keys) and adopt what the store lacks. An adopted
    certificate carries the claims of the version it replaces, plus ``party``'s (claims.py)."""
    now = now or utcnow()
    summary: list[dict[str, Any]] = []
    for item in held:
        name = str(item.get("name", ""))
        entry: dict[str, Any] = {"name": name, "path": item.get("path"), "adopted": False}
        summary.append(entry)
        try:
            bundle = _parse(item.get("files") or {})
        except (CertopsError, KeyError, ValueError) as error:
            entry["problem"] = f"unreadable: {error}"
            continue
        entry.update(serial=bundle.facts.serial, not_after=bundle.facts.not_after.isoformat(),
                     domains=bundle.facts.names(), sha256=bundle.facts.sha256, issuer=bundle.facts.issuer)
        # A damaged store record counts as none: a host's copy that verifies may replace it.
        current = store.read(name).stored
        if current is not None and bundle.facts.not_after <= current.facts.not_after:
            # Not newer than the store's: nothing to adopt, so nothing to verify (an idempotent
            # run's case, for every certificate of every host). The host gets the store's bundle.
            continue
        problem = judge(name, bundle, policy, now)
        if problem is not None:
            entry["problem"] = problem
            continue
        try:
            # Check mode (adopt=False) judges without the lock: taking it would create the lock file.
            with store.lock(name) if adopt else contextlib.nullcontext():
                current = store.read(name).stored  # again, under the lock
                if current is not None and current.facts.issuer != bundle.facts.issuer:
                    entry["problem"] = (f"issued by '{bundle.facts.issuer}', but the store's certificate "
                                        f"by '{current.facts.issuer}'; never replaced across issuers")
                elif current is None or current.facts.not_after < bundle.facts.not_after:
                    if adopt:
                        store.save(name, bundle.key_pem, bundle.leaf, bundle.chain,
                                   {"source": f"adopted from {host}", "order_url": None,
                                    **carried(current.meta if current else None, party)})
                    entry["adopted"] = adopt
        except CertopsError as error:
            entry["problem"] = f"not adopted: {error}"
    return summary
