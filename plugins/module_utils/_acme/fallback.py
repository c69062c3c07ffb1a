"""Several CAs in order of preference (``acme_directory`` as a list).

Each certificate has its own order of CAs: the one that issued its stored certificate first
(renewals stick to it; a pending order of stage prepare goes back to the CA that holds it), then
the others as listed. A round runs one batch per CA for the certificates whose next choice it
is; a certificate that fails in a way another CA may not (``results.another_ca_may_help``: a rate
limit, a CA unreachable within ``connect_seconds``, CAA, a refused profile) moves on to its next
CA in the following round. Everything else - success, a failed validation, bad input, a
certificate held back by its failure memory - is final at once. Only the last CA's failure
counts towards the failure memory, so the fallback itself never makes a certificate wait.

With one CA this is exactly one batch.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from .ca import outages as ca_outages
from .ca.account import AccountKey
from .batch import BatchSettings, CertificateBatch
from .caa import CaaPreflight
from .challenges import ChallengeResponder
from .challenges.dns_persist01 import PersistCheck
from .renewal import Action
from .results import CertificateResult
from .spec import CertificateSpec, Stage
from .store import CertificateStore, StoredCertificate
from .ca.transport import AcmeTransport


@dataclass
class CertificateAuthority:
    """One CA of the list: where it is, how to reach it, which account key orders there."""

    directory: str
    transport_factory: Callable[[], AcmeTransport]
    account_key: Optional[AccountKey]


@dataclass
class FallbackOutcome:
    results: list[CertificateResult]
    batches: list[CertificateBatch]

    def request_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for batch in self.batches:
            for kind, count in batch.ca.request_counts().items():
                counts[kind] = counts.get(kind, 0) + count
        return counts

    @property
    def host_challenges(self) -> list[dict[str, object]]:
        return [c for batch in self.batches for c in batch.host_challenges]

    @property
    def warnings(self) -> list[str]:
        return [w for batch in self.batches for w in batch.warnings]

    @property
    def account_url(self) -> Optional[str]:
        return next((b.ca.account_url for b in self.batches if b.ca.account_url), None)

    def close(self) -> None:
        for batch in self.batches:
            batch.ca.close()


def ca_order(spec: CertificateSpec, cas: Sequence[CertificateAuthority], stored: Optional[StoredCertificate],
             pending_directory: Optional[str] = None) -> list[int]:
    """The indexes of ``cas`` in the order ``spec`` tries them: the CA holding its pending order
    (stage complete), else the one that issued ``stored``, first; then the rest as listed."""
    first = pending_directory or (str(stored.meta.get("directory") or "") if stored is not None else "")
    order = list(range(len(cas)))
    for index, ca in enumerate(cas):
        if first and ca.directory == first:
            order.remove(index)
            order.insert(0, index)
            break
    return order


def _next_round(waiting: Sequence[CertificateSpec], choices: dict[str, list[int]],
                check_mode: bool) -> dict[tuple[int, bool], list[CertificateSpec]]:
    """One batch per CA and round, keyed (CA index, last resort): those with no CA left after
    this one are a batch of their own, whose failures the failure memory keeps."""
    groups: dict[tuple[int, bool], list[CertificateSpec]] = {}
    for spec in waiting:
        index = choices[spec.name].pop(0)
        groups.setdefault((index, check_mode or not choices[spec.name]), []).append(spec)
    return groups


def run_with_fallback(store: CertificateStore, settings: BatchSettings, cas: Sequence[CertificateAuthority],
                      specs: Sequence[CertificateSpec], stage: str = Stage.ALL,
                      responders: Optional[dict[str, ChallengeResponder]] = None,
                      caa: Optional[CaaPreflight] = None, connect_seconds: float = 60.0,
                      persist: Optional[PersistCheck] = None) -> FallbackOutcome:
    """Run ``specs`` against ``cas`` (see the module docstring); results in the order of ``specs``."""
    stage = Stage(stage)
    outcome = FallbackOutcome([], [])
    settings = dataclasses.replace(settings, outage_connect_seconds=connect_seconds)
    if len(cas) == 1 or not specs:
        batch = CertificateBatch(store, settings, cas[0].transport_factory, cas[0].account_key, responders, caa=caa,
                                 persist=persist, directory=cas[0].directory)
        outcome.batches.append(batch)
        outcome.results = batch.run(specs, stage)
        return outcome
    # Check mode orders nothing, so a single round (each certificate at its first CA) says it all.
    loaded = {name: reading.stored for name, reading in store.read_many([spec.name for spec in specs]).items()}
    choices = {spec.name: ca_order(spec, cas, loaded[spec.name], _pending_directory(store, spec, stage))
               for spec in specs}
    tried: dict[str, list[str]] = {spec.name: [] for spec in specs}
    final: dict[str, CertificateResult] = {}
    waiting = list(specs)
    while waiting:
        groups = _next_round(waiting, choices, settings.check_mode)
        waiting = []
        for (index, last_resort), group in sorted(groups.items()):
            ca_settings = dataclasses.replace(settings, last_resort=last_resort,
                                              connect_seconds=None if last_resort else connect_seconds)
            batch = CertificateBatch(store, ca_settings, cas[index].transport_factory, cas[index].account_key,
                                     responders, caa=caa, persist=persist, directory=cas[index].directory)
            outcome.batches.append(batch)
            by_name = {s.name: s for s in group}
            for result in batch.run(group, stage):
                result.tried = list(tried[result.name])
                if result.action == Action.FAILED and result.another_ca_may_help and not last_resort:
                    tried[result.name].append(f"{cas[index].directory}: {result.error}")
                    waiting.append(by_name[result.name])
                    continue
                if result.tried and result.action == Action.FAILED:
                    result.error = f"{result.error} (before that: {'; '.join(result.tried)})"
                elif result.tried and result.changed:
                    result.reason += f"; ordered from {cas[index].directory} as the CA(s) before it failed"
                final[result.name] = result
    outcome.results = [final[spec.name] for spec in specs]
    return outcome


def _pending_directory(store: CertificateStore, spec: CertificateSpec, stage: Stage) -> Optional[str]:
    if stage != Stage.COMPLETE or not spec.on_hosts:
        return None
    return str((store.get_pending(spec.name) or {}).get("directory") or "") or None


def account_at_every_ca(store: CertificateStore, entries: Sequence[dict[str, Any]], fallback_after: int,
                        directory_of: Callable[[dict[str, Any]], str],
                        account_at: Callable[[dict[str, Any]], dict[str, Any]], record: bool) -> dict[str, Any]:
    """The account task with a list of CAs: every CA gets its account (each with the key its
    entry names), so a certificate that falls back to the next CA finds one there. Each CA may
    take ``fallback_after`` seconds; one that cannot be reached is remembered (ca_outages). The
    task fails only when every CA failed: the point of a second CA is to carry on while one is
    down."""
    accounts = []
    for entry in entries:
        entry = dict(entry, request_timeout=min(int(entry["request_timeout"]), max(1, fallback_after // 4)))
        outcome = ca_outages.account_at(store, directory_of(entry), functools.partial(account_at, entry),
                                        record=record)
        accounts.append(dict(outcome, directory=entry["acme_directory"]))
    first = next((a for a in accounts if not a.get("failed")), accounts[0])
    result = {k: v for k, v in first.items() if k not in ("directory", "failed", "msg")}
    result.update(changed=any(a.get("changed") for a in accounts), accounts=accounts)
    failed = [a for a in accounts if a.get("failed")]
    problems = [f"{a['directory']}: {a.get('msg')}" for a in failed]
    if len(failed) == len(accounts):
        result.update(failed=True, msg="; ".join(problems))
    elif failed:
        result["warnings"] = [f"account at {p}" for p in problems]
    return result
