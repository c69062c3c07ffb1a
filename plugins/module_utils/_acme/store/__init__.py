"""The store seam: what the engine may ask of a certificate store, whatever keeps the data.

Two backends implement it: ``store.files.FileStore`` (a directory on the controller, the
default) and ``store.vault.VaultStore`` (KV v2 on OpenBao or HashiCorp Vault, shared by several
controllers); what they hand back is in ``store.records``. The batch, ARI, adoption, revocation, orphans and the account task use only
this interface, so a backend is chosen in one place (``options.build_store``).

A backend provides a few primitives (read and write a certificate version, compare-and-set
its metadata, small JSON records, a lock); everything built on them (the metadata a version
carries, accounts, trust anchors, pending orders) is written once here, so both backends
agree on what they hold. Model: certmagic's ``Storage`` and ``Locker``.

Rules a caller may rely on:

- ``load`` returns a whole version (key, certificate and chain of the same issuance) or None,
  and only after verifying it as if a CA or a host had sent it (another writer may have
  changed it): bounded sizes, strict text, one leaf whose chain links and whose key fits.
  A record that fails raises DamagedCertificate; ``read`` returns it instead, with the damaged
  version, so one bad record never fails the others and a new certificate can replace it.
- ``save`` makes a new version current in one step; a reader never sees half of one.
- ``update_meta`` changes the metadata of the version it names and only that one: when a newer
  version has become current meanwhile, nothing is written and False is returned.
- ``acquire`` excludes every other holder of the same name, in this process, in another run on
  this controller, and (shared backends) on other controllers. Callers re-read after taking it.
- A shared backend's lock is a lease, and a lease can be lost (a controller cut off from the
  store for longer than the lease). ``StoreLock.confirm`` proves the lock is still held, with
  time to spare, before an irreversible step; ``save`` with a ``Fence`` lands only while the
  version read under the lock is still current, so a run that lost its lock never overwrites
  what the run that took it over stored (LockLost instead).
- Nothing here names a path: ``describe()`` says which store is meant, for messages.
"""

from __future__ import annotations

import abc
import contextlib
import datetime
import hashlib
import re
from typing import Any, Callable, Iterator, Optional, Sequence, TypeVar

try:
    from cryptography import x509
except ImportError:  # dependencies.require_controller_libraries() names what is missing
    pass

from ... import _host_files
from ..crypto import cert_pem, certificate_facts, split_pem_chain
from ..errors import DamagedCertificate, InputError, LockLost
from .record_checks import MAX_FIELD_BYTES, checked_version
from .records import Fence, Reading, StoredCertificate, StoredFingerprint, VersionData

__all__ = ["ACCOUNT_KEY_LOCK", "CA_OUTAGES", "CertificateStore", "Fence", "KEEP_VERSIONS",
           "KEY_KEPT_ELSEWHERE", "Reading", "StoreLock", "StoredCertificate", "StoredFingerprint",
           "VersionData", "check_certificate_name"]

_T = TypeVar("_T")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
#: Versions of a certificate kept: the current one and the previous (rollback, and so an
#: installer that read the current one a moment ago still finds its files).
KEEP_VERSIONS = 2
#: ``meta["key"]`` of a certificate whose key certops never held (csr_src, key_src): no key file.
KEY_KEPT_ELSEWHERE = "kept elsewhere"

#: Kinds of small JSON records a store keeps beside the certificates.
ACCOUNTS, PENDING, TRUST, ACCOUNT_KEYS, FAILURES = "accounts", "pending", "trust", "account-keys", "failures"
#: CAs found unreachable lately (ca/outages.py), one record per directory URL.
CA_OUTAGES = "ca-outages"
#: The lock that serialises creating the account key kept in the store.
ACCOUNT_KEY_LOCK = "certops-account-key"


def check_certificate_name(name: object, field: str = "name") -> str:
    """Certificate names become directory, file and secret names, here and on hosts."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name in (".", ".."):
        raise InputError(field, f"{name!r} cannot be used as a certificate name",
                         "use 1-128 letters, digits, '.', '_' or '-', starting with a letter or "
                         "digit, e.g. 'www.example.com' or 'wildcard.example.com'")
    return name


class StoreLock(abc.ABC):
    """A held lock; ``release`` is idempotent."""

    #: What the lock's previous holder noted with ``note_order`` before it stopped without
    #: releasing the lock (this run took the lock over); None otherwise. It comes from the
    #: store: order_resume.py checks it before it is followed.
    inherited_order: Optional[dict[str, Any]] = None

    @abc.abstractmethod
    def release(self) -> None:
        """Give the lock up (and stop renewing it)."""

    @abc.abstractmethod
    def confirm(self, step: str) -> None:
        """Raise LockLost unless this run provably still holds the lock, with time to spare for
        ``step`` (finalizing an order): its lease and, where a store keeps one, the lock's record."""

    @abc.abstractmethod
    def note_order(self, note: dict[str, Any]) -> None:
        """Keep ``note`` (order_resume.order_note: an order opened under this lock) where a run
        that takes the lock over after this one stopped finds it; gone again with ``release``."""

    @abc.abstractmethod
    def confirm_lease(self, step: str) -> None:
        """``confirm`` from what this run knows of its lease alone, without asking the store
        about the lock (for steps a fence guards as well, such as storing a certificate)."""


class CertificateStore(abc.ABC):
    """A certificate store; see the module docstring for the rules."""

    #: Check mode: the store is only read; nothing is written, not even its directories.
    read_only: bool = False
    #: Requests sent to a remote store so far (0 for the file store), for results and the benchmark.
    requests: int = 0

    # --- primitives a backend provides ----------------------------------------------------
    @abc.abstractmethod
    def describe(self) -> str:
        """Which store this is, for messages and results (never a secret)."""

    @abc.abstractmethod
    def _read_version(self, name: str) -> Optional[VersionData]:
        """The current version of ``name``, or None."""

    @abc.abstractmethod
    def _write_version(self, name: str, data: VersionData, fence: Optional[Fence] = None) -> None:
        """Write ``data`` as a new version and make it current in one step; with ``fence``, only
        while the fenced version is current (else LockLost, nothing written)."""

    @abc.abstractmethod
    def _update_meta_cas(self, name: str, version: str, fields: dict[str, Any]) -> bool:
        """Merge ``fields`` into the metadata of ``version`` if it is still current."""

    @abc.abstractmethod
    def names(self) -> list[str]:
        """Names of the certificates held, sorted."""

    @abc.abstractmethod
    def _remove(self, name: str) -> None:
        """Remove every version of ``name`` (its lock is held)."""

    @abc.abstractmethod
    def _get_record(self, kind: str, key: str) -> Optional[dict[str, Any]]:
        """A small JSON record, or None."""

    @abc.abstractmethod
    def _put_record(self, kind: str, key: str, record: dict[str, Any]) -> None:
        """Write a record (atomically)."""

    @abc.abstractmethod
    def _drop_record(self, kind: str, key: str) -> None:
        """Remove a record; a missing one is fine."""

    @abc.abstractmethod
    def _record_keys(self, kind: str) -> list[str]:
        """The keys of every record of ``kind``."""

    @abc.abstractmethod
    def acquire(self, name: str, timeout: float = 300.0) -> StoreLock:
        """Take the certificate's lock, waiting up to ``timeout`` seconds (StoreError after).

        A handle rather than only a ``with`` block because a batch holds a certificate's lock
        from opening its order to storing the result, across worker threads.
        """

    @abc.abstractmethod
    def try_acquire(self, name: str) -> Optional[StoreLock]:
        """Take the certificate's lock if it is free now (or its holder's lease ran out);
        None when someone else holds it. Raises StoreError when the store refuses."""

    def close(self) -> None:  # noqa: B027 - optional: a backend without connections has nothing to close
        """Release connections (and stop lock renewals) held by the backend."""

    # --- built on the primitives, the same for every backend ------------------------------
    def load(self, name: str) -> Optional[StoredCertificate]:
        """The current version of ``name``, verified, or None if there is none; DamagedCertificate
        when it does not verify."""
        data = self._read_version(check_certificate_name(name))
        if data is None:
            return None
        return self._verified(name, data)

    def read(self, name: str) -> Reading:
        """``load``, with a damaged record reported instead of raised."""
        try:
            return Reading(stored=self.load(name))
        except DamagedCertificate as damaged:
            return Reading(damaged=damaged)

    def read_many(self, names: Sequence[str]) -> dict[str, Reading]:
        """``read`` for each name (a remote backend reads them concurrently)."""
        return self._for_each(self.read, names)

    def _damaged(self, name: str, version: Optional[str], reason: str) -> DamagedCertificate:
        return DamagedCertificate(
            f"store {self.describe()}: certificate {name!r} (version {version or 'unknown'}) is damaged: {reason}; "
            "it is neither used nor installed, and stays in the store for inspection", name, version, reason)

    def _verified(self, name: str, data: VersionData) -> StoredCertificate:
        """``data`` as a StoredCertificate, after checking it as if a CA had sent it."""
        keyless = isinstance(data.meta, dict) and data.meta.get("key") == KEY_KEPT_ELSEWHERE
        leaf, damage = checked_version(name, data.key_pem, data.cert_pem, data.chain_pem, data.meta, keyless)
        if leaf is None:
            raise self._damaged(name, data.version, damage)
        return StoredCertificate(name=name, key_pem=data.key_pem, cert_pem=data.cert_pem, chain_pem=data.chain_pem,
                                 meta=data.meta, facts=certificate_facts(leaf), version=data.version,
                                 revision=data.revision)

    def fingerprints(self, names: Sequence[str]) -> dict[str, Optional["StoredFingerprint"]]:
        """The bundle fingerprint (_host_files.bundle_fingerprint) and metadata of the current
        version of each name, or None: what an installer compares with what a host holds before
        shipping anything. No certificate is parsed."""
        return self._for_each(self._fingerprint, names)

    def _fingerprint(self, name: str) -> Optional["StoredFingerprint"]:
        data = self._read_version(check_certificate_name(name))
        if data is None:
            return None
        files = _host_files.bundle_files(data.cert_pem.encode("ascii"), data.chain_pem.encode("ascii"), data.key_pem)
        return StoredFingerprint(name, _host_files.fingerprint_of_files(files), data.meta)

    def _for_each(self, read: Callable[[str], _T], names: Sequence[str]) -> dict[str, _T]:
        """``read`` for each name, in order; a remote backend overrides this to read concurrently."""
        return {name: read(name) for name in names}

    def save(self, name: str, key_pem: bytes, leaf: x509.Certificate,
             chain: list[x509.Certificate], meta: dict[str, Any], fence: Optional[Fence] = None) -> StoredCertificate:
        """Store a new version and make it current in one atomic step. With ``fence`` (the
        version read when the lock was taken), only if no other writer stored one since."""
        check_certificate_name(name)
        facts = certificate_facts(leaf)
        now = datetime.datetime.now(datetime.timezone.utc)
        version = f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{facts.serial[:16]}"
        leaf_text = cert_pem(leaf)
        chain_text = "".join(cert_pem(c) for c in chain)
        full_meta = dict(meta)
        full_meta.update({"name": name, "serial": facts.serial, "sha256": facts.sha256,
                          "not_before": facts.not_before.isoformat(),
                          "not_after": facts.not_after.isoformat(), "issuer": facts.issuer,
                          "domains": facts.names(), "key_type": facts.key_type, "stored_at": now.isoformat()})
        self._write_version(name, VersionData(key_pem, leaf_text, chain_text, full_meta, version), fence)
        if meta.get("order_url") and chain:
            self.remember_anchor(chain[-1])
        return StoredCertificate(name=name, key_pem=key_pem, cert_pem=leaf_text, chain_pem=chain_text,
                                 meta=full_meta, facts=facts, version=version)

    def update_meta(self, name: str, version: str, **fields: Any) -> bool:
        """Add ``fields`` to the metadata of one stored version (compare-and-set; keys untouched).
        Used to record facts learnt later, such as a revocation or an ARI window. False when
        ``version`` is no longer current (what was learnt is about a replaced certificate)."""
        return self._update_meta_cas(check_certificate_name(name), version, fields)

    def remove(self, name: str) -> None:
        """Remove a certificate, every version and its key, from the store (under its lock)."""
        with self.lock(name):
            self._remove(check_certificate_name(name))
            self.drop_pending(name)

    def remove_if(self, name: str, version: str, still: Callable[[dict[str, Any]], bool]) -> bool:
        """Remove a certificate as ``remove`` does, but only if, read again under its lock, its
        version is still ``version`` and ``still(metadata)`` holds: what was judged from an
        earlier read (an orphan) may have been renewed or claimed since. True when removed."""
        name = check_certificate_name(name)
        with self.lock(name):
            current = self._read_version(name)
            if current is None or current.version != version or not isinstance(current.meta, dict) \
                    or not still(current.meta):
                return False
            self._remove(name)
            self.drop_pending(name)
            return True

    def _fenced_out(self, name: str, fence: Fence, current: Optional[str]) -> LockLost:
        """The error of a fenced save that found another writer's version current."""
        was = f"version {fence.version}" if fence.version else "no certificate"
        return LockLost(f"store {self.describe()}: certificate {name!r} was stored by another run after this "
                        f"run took its lock ({was} then, version {current or 'none'} now); this run's lock was "
                        "lost, so its certificate is not stored")

    @contextlib.contextmanager
    def lock(self, name: str, timeout: float = 300.0) -> Iterator[None]:
        handle = self.acquire(name, timeout)
        try:
            yield
        finally:
            handle.release()

    # --- copying between stores (migration) ----------------------------------------------
    def export_version(self, name: str) -> Optional[VersionData]:
        """The current version as the backend keeps it (for copying to another store)."""
        return self._read_version(check_certificate_name(name))

    def import_version(self, name: str, data: VersionData) -> None:
        """Make ``data`` (exported from another store) the current version here, as it is."""
        self._write_version(check_certificate_name(name), data)

    def export_records(self, kind: str) -> dict[str, dict[str, Any]]:
        """Every record of ``kind`` (ACCOUNTS or TRUST), by key."""
        found = {key: self._get_record(kind, key) for key in self._record_keys(kind)}
        return {key: record for key, record in found.items() if record is not None}

    def import_record(self, kind: str, key: str, record: dict[str, Any]) -> None:
        self._put_record(kind, key, record)

    # --- accounts -------------------------------------------------------------------------
    @staticmethod
    def _account_key(directory_url: str, thumbprint: str) -> str:
        return hashlib.sha256(f"{directory_url}\n{thumbprint}".encode()).hexdigest()[:32]

    def known_account(self, directory_url: str, thumbprint: str) -> Optional[dict[str, Any]]:
        """What an earlier run learnt about the account of this key at this CA (its URL and
        contact), so a run with nothing to order need not ask the CA; None if nothing is known."""
        record = self._get_record(ACCOUNTS, self._account_key(directory_url, thumbprint))
        if not isinstance(record, dict) or not isinstance(record.get("url"), str) or not record["url"].startswith("http"):
            return None  # absent, or damaged by another writer: the CA is asked again
        return record

    def remember_account(self, directory_url: str, thumbprint: str, url: Optional[str],
                         contact: list[str]) -> None:
        """Record (or, with ``url=None``, forget) the account of a key at a CA."""
        key = self._account_key(directory_url, thumbprint)
        if url is None:
            self._drop_record(ACCOUNTS, key)
            return
        self._put_record(ACCOUNTS, key, {
            "directory": directory_url, "thumbprint": thumbprint, "url": url, "contact": sorted(contact),
            "checked_at": datetime.datetime.now(datetime.timezone.utc).isoformat()})

    def account_key_pem(self) -> Optional[bytes]:
        """The ACME account key kept in the store (``account_key_in_store``), or None."""
        record = self._get_record(ACCOUNT_KEYS, "default")
        pem = record.get("pem") if isinstance(record, dict) else None
        return pem.encode("ascii") if isinstance(pem, str) and pem and pem.isascii() else None

    def keep_account_key(self, key_pem: bytes) -> bytes:
        """Keep ``key_pem`` as the store's account key unless another controller kept one first;
        returns the one kept (so two controllers starting together end with the same key)."""
        with self.lock(ACCOUNT_KEY_LOCK, timeout=60):
            existing = self.account_key_pem()
            if existing is not None:
                return existing
            self._put_record(ACCOUNT_KEYS, "default", {"pem": key_pem.decode("ascii")})
            return key_pem

    # --- trust anchors --------------------------------------------------------------------
    def remember_anchor(self, cert: x509.Certificate) -> None:
        """Keep the top of a chain the CA issued through: host-held certificates are adopted
        only when they verify up to one of these (or to a configured or system root)."""
        facts = certificate_facts(cert)
        # A batch stores hundreds of certificates under the same one or two chain tops: once this
        # store object has seen a top recorded, it does not ask again (a request per certificate).
        known = self.__dict__.setdefault("_anchors_recorded", set())
        if facts.sha256 in known:
            return
        if self._get_record(TRUST, facts.sha256) is None:
            self._put_record(TRUST, facts.sha256, {"pem": cert_pem(cert)})
        known.add(facts.sha256)

    def anchors(self) -> list[x509.Certificate]:
        """The chain tops this store has seen its CA issue through."""
        found: list[x509.Certificate] = []
        for key in sorted(self._record_keys(TRUST)):
            record = self._get_record(TRUST, key)
            pem = record.get("pem") if isinstance(record, dict) else None
            if not isinstance(pem, str) or not pem.isascii() or len(pem) > MAX_FIELD_BYTES:
                continue  # damaged by another writer: not an anchor
            with contextlib.suppress(InputError, TypeError, ValueError):
                found.extend(split_pem_chain(pem))
        return found

    # --- pending orders (challenges answered on hosts, between two tasks) ------------------
    def put_pending(self, name: str, record: dict[str, Any]) -> None:
        """Keep an opened order (serialised by the order code) until the hosts answered it."""
        self._put_record(PENDING, check_certificate_name(name), record)

    def get_pending(self, name: str) -> Optional[dict[str, Any]]:
        record = self._get_record(PENDING, check_certificate_name(name))
        return record if isinstance(record, dict) else None

    def drop_pending(self, name: str) -> None:
        self._drop_record(PENDING, check_certificate_name(name))

    # --- failure memory (failures.py) -----------------------------------------------------------
    def failure(self, name: str) -> Optional[dict[str, Any]]:
        """The failure record of a certificate whose last order failed, or None."""
        record = self._get_record(FAILURES, check_certificate_name(name))
        return record if isinstance(record, dict) else None

    def failures(self, names: Sequence[str]) -> dict[str, Optional[dict[str, Any]]]:
        """``failure`` for each name. The store lists its failure records once and reads only
        the names that have one: a batch asks about every certificate due, and almost none has
        a record (a shared store would otherwise answer one request per certificate)."""
        wanted = [check_certificate_name(name) for name in names]
        if len(wanted) < 2:
            return {name: self.failure(name) for name in wanted}
        recorded = set(self._record_keys(FAILURES))
        found = self._for_each(self.failure, [name for name in wanted if name in recorded])
        return {name: found.get(name) for name in wanted}

    def remember_failure(self, name: str, record: dict[str, Any]) -> None:
        self._put_record(FAILURES, check_certificate_name(name), record)

    def forget_failure(self, name: str) -> None:
        self._drop_record(FAILURES, check_certificate_name(name))

    # --- CAs found unreachable (ca/outages.py) ---------------------------------------------
    @staticmethod
    def _outage_key(directory_url: str) -> str:
        return hashlib.sha256(directory_url.encode()).hexdigest()[:32]

    def ca_outage(self, directory_url: str) -> Optional[dict[str, Any]]:
        """The outage record of the CA at ``directory_url``, or None."""
        record = self._get_record(CA_OUTAGES, self._outage_key(directory_url))
        return record if isinstance(record, dict) else None

    def remember_ca_outage(self, directory_url: str, record: dict[str, Any]) -> None:
        self._put_record(CA_OUTAGES, self._outage_key(directory_url), record)

    def forget_ca_outage(self, directory_url: str) -> None:
        self._drop_record(CA_OUTAGES, self._outage_key(directory_url))
