"""A batch of certificates: parse, decide, order what is due in parallel, store, report.

The service layer behind the ``certificate`` action plugin (which only translates Ansible
arguments and results). Rules a caller may rely on:

- Deciding needs no network: a batch where everything is kept sends no ACME request at all.
- Each certificate is issued under its store lock, after re-reading the store, so two runs
  (or two tasks) never order the same certificate twice: the one that waited keeps what the
  other stored.
- A run finalizes an order only after confirming it still holds the lock, and stores the
  certificate only if the version it read under the lock is still current (a fence): a run
  whose shared-store lease lapsed reports the certificate failed with ``lock_lost`` instead.
- One certificate's failure never loses another's success: every success is stored as it
  completes; failures are reported per certificate.
- Check mode decides and reports, and neither orders nor writes.
"""

from __future__ import annotations

import datetime
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from .ca.account import AccountKey
from . import lock_waves
from .ari import RenewalWindows, meta_at_issuance
from .ca.client import CaClient
from .caa import CaaPreflight, ca_identities
from .claims import carried
from .challenges import (ChallengeResponder, PendingChallenge, StatelessHttp01, challenges_for_hosts,
                         deploys_nothing, tls_alpn_challenge_certificate)
from .crypto import ari_cert_id, order_key_pem, split_pem_chain, utcnow
from .challenges.dns_persist01 import CHALLENGE as PERSIST_CHALLENGE, PersistAccount, PersistCheck, PersistResponder
from .errors import AcmeTransportError, CertopsError, InputError, LockLost
from .failures import FailureMemory
from .names import identifier_values
from .order_resume import lost_meanwhile, open_or_resume
from .orders import OpenOrder, OrderRequest, complete_order, open_order, order_from_record, pending_record
from .renewal import Action, Decision, decide_read
from .results import CertificateResult, failed_result, renewal_point
from .spec import CertificateSpec, Stage
from .store import KEY_KEPT_ELSEWHERE, CertificateStore, Fence, StoreLock, StoredCertificate
from .ca.transport import AcmeTransport
from .waiting import Deadline


@dataclass
class Opened:
    """An order to go on with, why it was opened, and the lock (with the version read under it)
    that must still hold when it is finalized and stored."""

    spec: CertificateSpec
    order: OpenOrder
    decision: Decision
    lock: StoreLock
    fence: Fence
    #: The claims the new version carries (claims.py): the replaced version's, plus this run's party.
    claims: dict[str, Any]


@dataclass
class Opening:
    """What opening one certificate's order gave: ``opened``, or a final ``result`` (kept after
    all, or failed)."""

    spec: CertificateSpec
    opened: Optional[Opened] = None
    result: Optional[CertificateResult] = None


@dataclass
class BatchSettings:
    workers: int = 4
    deadline_seconds: float = 600.0
    lock_timeout: float = 300.0
    check_mode: bool = False
    #: How long the CA may take to answer at all (directory and account) before every
    #: certificate of the batch fails as unreachable; None: the batch deadline. Shorter where
    #: another CA would be tried next.
    connect_seconds: Optional[float] = None
    #: Whether failures another CA may not have are remembered (failure memory): not while a
    #: next CA is still to be tried. Not the last resort, a CA remembered unreachable
    #: (ca/outages.py) is passed over without a request.
    last_resort: bool = True
    #: How long a CA remembered unreachable is given when it is the last resort (fallback_after).
    outage_connect_seconds: float = 60.0
    #: Certificates whose challenge needs nothing deployed (stateless http-01) go from lock to
    #: stored one by one (lock_waves.py); False opens every order first, as dns-01 batches do.
    one_by_one: bool = True
    #: The party this batch orders for (claims.py); a new version records it among its claims.
    party: Optional[str] = None
    #: Called as ``progress(phase, done, total)`` after each order is opened ("ordering") and
    #: each certificate is completed ("issuing"), from the worker threads.
    progress: Optional[Callable[[str, int, int], None]] = None


class CertificateBatch:
    """Runs one batch: decide, open every due order, deploy each challenge type once for the
    whole batch, complete the orders in parallel, store, and always clean up.

    ``stage`` splits the work for challenges that live on hosts (webroot http-01,
    tls-alpn-01), which other Ansible tasks deploy between the two stages:
    ``prepare`` opens their orders and returns the challenges (the order and its key wait in
    the store as a pending record); ``complete`` answers them and stores the certificates.
    Certificates with controller-side challenges are always done in full.
    """

    def __init__(self, store: CertificateStore, settings: BatchSettings,
                 transport_factory: Callable[[], AcmeTransport], account_key: Optional[AccountKey],
                 responders: Optional[dict[str, ChallengeResponder]] = None,
                 now: Callable[[], datetime.datetime] = utcnow, caa: Optional[CaaPreflight] = None,
                 persist: Optional[PersistCheck] = None, directory: str = "") -> None:
        self.store = store
        self.caa = caa
        self.persist = persist
        self.settings = settings
        self.ca = CaClient(store, transport_factory, account_key, settings.check_mode, settings.connect_seconds,
                           directory=directory, pass_over=not settings.last_resort,
                           outage_connect_seconds=settings.outage_connect_seconds, now=now)
        self.responders: dict[str, ChallengeResponder] = {"http-01": StatelessHttp01(),
                                                          PERSIST_CHALLENGE: PersistResponder(persist, self.ca, now)}
        self.responders.update(responders or {})
        self.now = now
        self.host_challenges: list[dict[str, Any]] = []
        self.warnings: list[str] = []
        self.windows = RenewalWindows()

    def _windows(self, stored: list[StoredCertificate], now: datetime.datetime) -> None:
        """ARI windows of the stored certificates: from the store's cache where the CA's
        Retry-After allows, else asked for in parallel. A CA whose renewalInfo fails is noted
        and its certificates fall back to the lifetime rule."""
        to_ask = self.windows.take_cached(stored, now)
        if not to_ask:
            return
        outage = self.ca.remembered_outage()
        if outage is not None and outage.current(now):
            # An idempotent run never waits for a CA known to be down: the lifetime rule decides.
            self.warnings.append(f"renewal information not asked: {outage.describe()} (deciding by the "
                                 "certificates' lifetime instead)")
            self.windows.by_lifetime(to_ask)
            return
        deadline = Deadline(min(self.settings.deadline_seconds, 120.0), "asking the CA for renewal windows")
        with self._pool(len(to_ask)) as pool:
            problems = self.windows.ask(self.store, to_ask, self.ca.unauthenticated, now, deadline, pool.map,
                                        remember=not self.settings.check_mode)
        for name, problem in problems:
            if isinstance(problem, AcmeTransportError):
                self.ca.note_unreachable(problem)
            self.warnings.append(f"certificate {name!r}: renewal information: {problem} (deciding by the "
                                 "certificate's lifetime instead)")

    def _counted(self, phase: str, total: int, work: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """``work`` that reports ``(phase, done, total)`` to the progress callback after each item."""
        report = self.settings.progress
        if report is None:
            return work
        done = [0]
        lock = threading.Lock()

        def counted(item: Any) -> Any:
            try:
                return work(item)
            finally:
                with lock:
                    done[0] += 1
                    report(phase, done[0], total)
        return counted

    def _pool(self, count: int) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=max(1, min(self.settings.workers, count)),
                                  thread_name_prefix="certops-order")

    # --- the batch ------------------------------------------------------------------------
    def run(self, specs: Sequence[CertificateSpec], stage: str = Stage.ALL) -> list[CertificateResult]:
        """Decide every certificate, then order what is due (nothing in check mode)."""
        stage = Stage(stage)
        now = self.now()
        results, due = self._decide_all(specs, stage, now)
        # Failure memory: a certificate that failed lately waits out its backoff, unless its
        # settings changed or it is forced; it stays reported as failing meanwhile. A stage
        # complete finishes orders already opened: nothing is held back.
        memory = FailureMemory(self.store, self.warnings, self.settings.last_resort)
        if stage != Stage.COMPLETE:
            memory.read([spec.name for spec in due])
        by_spec = {spec.name: spec for spec in due}
        for spec in due:
            record = memory.holding_back(spec, now)
            if record is not None:
                results[spec.name] = CertificateResult(spec.name, Action.FAILED, error=record.describe(),
                                                       domains=results[spec.name].domains,
                                                       stored=results[spec.name].stored, failing=record)
        due = [spec for spec in due if results[spec.name].failing is None]
        if due and not self.settings.check_mode:
            deadline = Deadline(self.settings.deadline_seconds, "the certificate batch")
            for result in self._order(due, stage, deadline):
                results[result.name] = result
                memory.remember(result, by_spec[result.name], now)
        for spec in specs:
            results[spec.name].renew_at = renewal_point(results[spec.name], spec.policy)
        return [results[s.name] for s in specs]

    def _decide_all(self, specs: Sequence[CertificateSpec], stage: Stage,
                    now: datetime.datetime) -> tuple[dict[str, CertificateResult], list[CertificateSpec]]:
        """Every certificate's decision from one read of the store; returns the results so far
        and the certificates due for an order."""
        results: dict[str, CertificateResult] = {}
        due: list[CertificateSpec] = []
        readings = self.store.read_many([spec.name for spec in specs])
        loaded = {name: reading.stored for name, reading in readings.items()}
        self._windows([stored for stored in loaded.values() if stored is not None], now)
        for spec in specs:
            stored = loaded[spec.name]
            decision = decide_read(spec, readings[spec.name], now, self.windows.for_stored(stored))
            if readings[spec.name].damaged is not None:
                self.warnings.append(str(readings[spec.name].damaged) + "; a new certificate is ordered to replace it")
            domains = identifier_values(spec.identifiers)
            results[spec.name] = CertificateResult(spec.name, decision.action, decision.reason, domains, stored=stored,
                                                   ari=self.windows.for_stored(stored))
            if not decision.needs_order:
                if stage == Stage.COMPLETE and spec.on_hosts:
                    self.store.drop_pending(spec.name)  # done by a concurrent run meanwhile
                continue
            if spec.on_hosts and stage == Stage.ALL:
                results[spec.name] = failed_result(spec, (
                    f"{spec.challenge}{' (webroot)' if spec.webroot else ''} is answered on the hosts: run "
                    "this task with stage: prepare, deploy the returned challenges with "
                    "certops.acme.challenge, then stage: complete (the certops.acme.certificates "
                    "role does this)"))
                continue
            due.append(spec)
        return results, due

    def _order(self, due: Sequence[CertificateSpec], stage: Stage, deadline: Deadline) -> list[CertificateResult]:
        """Order in two passes (lock_waves.py): what could be locked at once, then what another
        run held, waited for in name order once this run holds nothing (usually kept: the other
        run stored it meanwhile). Runs sharing a store so split a wave between them."""
        by_name = {spec.name: spec for spec in due}
        first = lock_waves.Taken()
        # Challenges with nothing to deploy go from lock to stored one by one, so a run holds
        # only as many locks as it has workers and the runs on one wave split it; the others
        # are deployed once for the batch (one dns-01 propagation wait).
        alone = [spec for spec in due if self.settings.one_by_one and not spec.on_hosts
                 and deploys_nothing(self.responders.get(spec.challenge))]
        finished = self._order_each(alone, first, stage, deadline)
        finished += self._order_locked([s for s in due if s not in alone], first, stage, deadline, lazy=True)
        if first.elsewhere:
            elsewhere = sorted(first.elsewhere)
            later = lock_waves.wait_in_order(self.store, elsewhere, self.settings.lock_timeout, self._pool)
            finished += self._order_locked([by_name[name] for name in elsewhere], later, stage, deadline)
        return finished

    def _order_each(self, specs: Sequence[CertificateSpec], taken: lock_waves.Taken, stage: Stage,
                    deadline: Deadline) -> list[CertificateResult]:
        """Lock, open, complete and unlock each certificate on its own (lazy first pass); those
        held by another run are left to ``taken.elsewhere``."""
        def one(spec: CertificateSpec) -> Optional[CertificateResult]:
            lock = lock_waves.take(self.store, spec.name, taken)
            if lock is None:
                return failed_result(spec, taken.failed[spec.name]) if spec.name in taken.failed else None
            try:
                # Locked, ordered and stored within the one worker, usually inside a second: a run
                # killed among these strands at most one order per worker, so they are not noted
                # on their locks (a shared-store write per certificate; order_resume.py).
                opening = self._open_one(spec, lock, stage, deadline, note=False)
                return opening.result if opening.opened is None else self._complete_one(opening.opened, deadline)
            finally:
                taken.locks.pop(spec.name, None)
                lock.release()
        if not specs:
            return []
        with self._pool(len(specs)) as pool:
            done = list(pool.map(self._counted("issuing", len(specs), one), specs))
        return [result for result in done if result is not None]

    def _order_locked(self, specs: Sequence[CertificateSpec], taken: lock_waves.Taken, stage: Stage,
                      deadline: Deadline, lazy: bool = False) -> list[CertificateResult]:
        """Open all that ``taken`` locked (``lazy``: each lock tried as its order is opened, those
        held elsewhere left to ``taken.elsewhere``), hand host challenges over (stage prepare),
        deploy each type once, complete, clean up, unlock. What is not locked is never ordered."""
        try:
            openings = self._open_all([s for s in specs if lazy or s.name in taken.locks], taken, stage, deadline)
            finished = [failed_result(spec, taken.failed[spec.name]) for spec in specs if spec.name in taken.failed]
            finished += [o.result for o in openings if o.result is not None]
            opened = [o.opened for o in openings if o.opened is not None]
            if stage == Stage.PREPARE:
                finished += self._hand_to_hosts([o for o in opened if o.spec.on_hosts])
                opened = [o for o in opened if not o.spec.on_hosts]
            by_type = self._challenges_by_type(opened)
            try:
                failed = self._deploy(by_type, deadline)
                finished += [failed_result(o.spec, failed[o.spec.name]) for o in opened if o.spec.name in failed]
                finished += self._complete_all([o for o in opened if o.spec.name not in failed], deadline)
            finally:
                self._clean_up(by_type)
        finally:
            lock_waves.release_all(taken.locks, self._pool)
        return finished

    def _open_all(self, specs: Sequence[CertificateSpec], taken: lock_waves.Taken, stage: Stage,
                  deadline: Deadline) -> list[Opening]:
        def open_one(spec: CertificateSpec) -> Opening:
            lock = taken.locks.get(spec.name) or lock_waves.take(self.store, spec.name, taken)
            if lock is None:  # held by another run (come back to it) or not to be had
                return Opening(spec)
            return self._open_one(spec, lock, stage, deadline)
        with self._pool(len(specs)) as pool:
            return list(pool.map(self._counted("ordering", len(specs), open_one), specs))

    def _hand_to_hosts(self, openings: Sequence[Opened]) -> list[CertificateResult]:
        """Stage prepare: the hosts deploy these challenges between the two stages."""
        handed = []
        for opening in openings:
            self.host_challenges.extend(challenges_for_hosts(opening.spec.name, opening.spec.webroot,
                                                             opening.order.pending))
            handed.append(CertificateResult(opening.spec.name, Action.PENDING,
                                            opening.decision.reason + " (challenges prepared for the hosts)",
                                            identifier_values(opening.spec.identifiers)))
        return handed

    @staticmethod
    def _challenges_by_type(openings: Sequence[Opened]) -> dict[str, list[PendingChallenge]]:
        """The controller-side challenges of the batch, by type (host-side ones are already up)."""
        by_type: dict[str, list[PendingChallenge]] = {}
        for opening in openings:
            if not opening.spec.on_hosts:
                by_type.setdefault(opening.spec.challenge, []).extend(opening.order.pending)
        return by_type

    def _deploy(self, by_type: dict[str, list[PendingChallenge]], deadline: Deadline) -> dict[str, str]:
        """Each challenge type once for the whole batch (one dns-01 propagation wait);
        returns {certificate name: why its challenges could not be deployed}."""
        failed: dict[str, str] = {}
        for kind, challenges in by_type.items():
            failed.update(self.responders[kind].deploy(challenges, deadline))
        return failed

    def _complete_all(self, openings: Sequence[Opened], deadline: Deadline) -> list[CertificateResult]:
        with self._pool(len(openings)) as pool:
            return list(pool.map(self._counted("issuing", len(openings),
                                               lambda o: self._complete_one(o, deadline)), openings))

    def _clean_up(self, by_type: dict[str, list[PendingChallenge]]) -> None:
        for kind, challenges in by_type.items():
            try:
                self.responders[kind].cleanup(challenges)
            except CertopsError:
                pass  # reported by the responder's own checks; never hides the results

    def _open_one(self, spec: CertificateSpec, lock: StoreLock, stage: Stage, deadline: Deadline,
                  note: bool = True) -> Opening:
        """Re-check under the (already held) lock, then open (or, at stage complete, reload) the
        order; ``note``: note a new order on the lock for a run that may take it over."""
        try:
            # Re-read under the lock: another run may have issued it while we waited. What is
            # read here is the fence: the certificate is stored only while it is still current.
            reading = self.store.read(spec.name)
            stored = reading.stored
            decision = decide_read(spec, reading, self.now(), self.windows.for_stored(stored))
            if not decision.needs_order:
                return Opening(spec, result=CertificateResult(
                    spec.name, Action.KEEP, decision.reason + " (issued by a concurrent run)",
                    identifier_values(spec.identifiers), stored=stored))
            transport = self.ca.connected(deadline)
            order = self._pending_order(spec) if spec.on_hosts else None
            if order is None and stage == Stage.COMPLETE and spec.on_hosts:
                raise CertopsError(f"certificate {spec.name!r}: no prepared order to complete; run the "
                                   "task with stage: prepare first")
            if order is None:
                order = self._new_order(spec, stored, decision, transport, deadline, lock, note)
            return Opening(spec, opened=Opened(spec, order, decision, lock, reading.fence,
                                               carried(stored.meta if stored else None, self.settings.party)))
        except CertopsError as error:
            return Opening(spec, result=failed_result(spec, error))

    def _new_order(self, spec: CertificateSpec, stored: Optional[StoredCertificate], decision: Decision,
                   transport: AcmeTransport, deadline: Deadline, lock: StoreLock, note: bool) -> OpenOrder:
        self._preflight(spec, transport, deadline)
        replaces = None
        if stored is not None and decision.action == Action.RENEW and transport.directory(deadline).get("renewalInfo"):
            replaces = ari_cert_id(split_pem_chain(stored.cert_pem)[0]) or None
        # A key kept elsewhere is never in the request (nor in a pending record): only its CSR.
        stored_key = stored.key_pem if stored else None
        key_pem = b"" if spec.own_key else order_key_pem(spec.name, spec.key_type, spec.reuse_key, stored_key)
        request = OrderRequest(spec.name, spec.identifiers, key_pem, spec.challenge, spec.profile,
                               profile_preferred=spec.profile_preferred,
                               preferred_chain=spec.preferred_chain, replaces=replaces,
                               csr_der=spec.own_key.csr_der if spec.own_key else None)
        if spec.on_hosts:  # its pending record is what a later run resumes (stage complete)
            order = open_order(transport, request, self.ca.thumbprint, deadline)
            self._park_for_hosts(spec, order, transport, lock)
            return order
        # A run that stopped holding this lock may have left its order open (order_resume.py).
        return open_or_resume(lock, transport, request, self.ca.account_url or "", self.ca.thumbprint, deadline,
                              self.now(), note)

    def _preflight(self, spec: CertificateSpec, transport: AcmeTransport, deadline: Deadline) -> None:
        """What must hold before an order is opened at all: CAA allows this CA, and a
        dns-persist-01 record is in place (each failure costs the CA nothing)."""
        if self.caa is not None:
            self.caa.check(spec.name, spec.identifiers, ca_identities(transport.directory(deadline)), spec.challenge,
                           self.ca.account_url)
        if spec.challenge == PERSIST_CHALLENGE:
            if self.persist is None:
                raise InputError("dns_persist_experimental", "dns-persist-01 follows a draft and is off",
                                 "set dns_persist_experimental: true to use it")
            self.persist.check(spec.name, spec.identifiers, PersistAccount.of(self.ca, deadline), self.now())

    def _park_for_hosts(self, spec: CertificateSpec, order: OpenOrder, transport: AcmeTransport,
                        lock: StoreLock) -> None:
        """Keep a host-answered order in the store (a pending record) for stage complete.
        tls-alpn-01 certificates are made here and kept with it; certops.acme.challenge ships
        them from the store (keys never pass through task results)."""
        alpn = {c.identifier.value: [p.decode("ascii") for p in tls_alpn_challenge_certificate(c)]
                for c in order.pending if c.type == "tls-alpn-01"}
        record = pending_record(order, alpn)
        record["directory"] = transport.directory_url  # stage complete goes back to this CA
        lock.confirm_lease("keeping its order for the hosts")
        self.store.put_pending(spec.name, record)

    def _complete_one(self, opening: Opened, deadline: Deadline) -> CertificateResult:
        spec, order, decision = opening.spec, opening.order, opening.decision
        try:
            transport = self.ca.connected(deadline)
            # Finalizing makes the CA issue: never without proof that the lock is still ours.
            issued = complete_order(transport, order, deadline,
                                    before_finalize=lambda: opening.lock.confirm("finalizing its order"),
                                    before_answer=lambda: opening.lock.confirm_lease("answering its challenges"))
            opening.lock.confirm_lease("storing its certificate")
            new = self.store.save(spec.name, order.request.key_pem, issued.leaf, issued.chain, {
                "order_url": issued.order_url, "account_url": self.ca.account_url,
                "directory": transport.directory_url, "challenge": spec.challenge,
                "alternate_chains": issued.alternate_chain_urls, "source": "ordered",
                "chain_root": issued.chain_root, "reason": decision.reason,
                "profile": order.request.profile, "ari": meta_at_issuance(self.now()),
                "profile_preferred": spec.profile if spec.profile_preferred else None,
                **({"key": KEY_KEPT_ELSEWHERE, "key_source": spec.own_key.describe()} if spec.own_key else {}),
                **opening.claims},
                fence=opening.fence)
            if spec.on_hosts:
                self.store.drop_pending(spec.name)
            return CertificateResult(spec.name, decision.action, decision.reason, identifier_values(spec.identifiers),
                                     stored=new)
        except CertopsError as failure:
            error = failure if isinstance(failure, LockLost) else lost_meanwhile(opening.lock) or failure
            if spec.on_hosts and not isinstance(error, LockLost):
                # A failed order is not retried; the next run opens a new one. A lost lock's
                # pending record may be the new holder's by now: it is left alone.
                self.store.drop_pending(spec.name)
            return failed_result(spec, error)

    def _pending_order(self, spec: CertificateSpec) -> Optional[OpenOrder]:
        """The order prepared for ``spec`` by stage prepare, if it is recent and for the same names
        (a stale or foreign record is dropped)."""
        record = self.store.get_pending(spec.name)
        order = order_from_record(record, spec.identifiers, utcnow())
        if order is None and record is not None:
            self.store.drop_pending(spec.name)
        return order
