"""A certificate store shared by several controllers: KV v2 on OpenBao or HashiCorp Vault.

Layout under ``MOUNT/PREFIX`` (defaults ``secret/certops-acme``)::

    certificates/NAME   {version, privkey, cert, chain, meta}   one secret per certificate
    pending/NAME        an opened order waiting for its host-side challenges
    accounts/ID         the account URL and contact known for a key at a CA
    trust/SHA256        a chain top the CA issued through (adoption anchor)
    locks/NAME          {owner}                                 a certificate's lock, see below
    owners/OWNER        {expires}                               a running controller's lease

Every write that can race uses KV v2 check-and-set (``cas``): a new certificate version and a
metadata update only land on the version they were computed from; a lost race reads again.
KV's own versions keep the previous certificate (rollback), so nothing is pruned here.

Locks are leases (certmagic's lock files with ``LockLeaseRenewer``, in KV). A lock is created
with ``cas=0`` and names its owner, a run; the run keeps one lease record, renewed by one
heartbeat thread every third of a lease while it holds locks, so a batch holding 1000 locks
renews with one write. A lock whose owner's lease ran out is taken over with
``cas=<version>``. A controller killed while holding locks blocks them for at most one lease
(``vault_lock_lease``, 60 s by default). Expiry is wall-clock time, so the controllers' clocks
must agree to within a few seconds (NTP).

A lease can also be lost by a live run: one cut off from the cluster for longer than a lease
has its locks taken over, and may not notice until its connection heals. Fencing keeps such a
run from doing harm:

- The lease lapses, for good, once no renewal was acknowledged within a lease of the previous
  one; a renewal is never given longer than the lease has left, so a late one cannot hide a gap.
- Each lock carries a token, the KV version this run's lock write created. Before finalizing
  an order (the step that makes the CA issue) the run confirms its lease has at least half a
  lease left and that the lock record still names it with that token (``confirm``).
- A certificate is stored only while the version read when its lock was taken is current
  (``storage.Fence``, compare-and-set), so a late save never replaces the taker's.
- A lock is deleted on release only when its record still names this run with its token, and
  only while the lease holds; otherwise it is left to expire.

High availability: the client knows every node's address. A node that is unreachable, sealed,
or a standby without a leader (an election in progress) is skipped, and the request goes to
the next, with backoff, until ``vault_timeout`` has passed (or, for lease and lock checks, the
lease's time left). Standbys forward writes to the leader; a standby may answer a read from
its own, possibly stale, copy, which is why the batch re-reads under the lock and fences its
writes.

Nothing in a message or result names the token; ``describe()`` names the first address,
mount and prefix.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Optional, Sequence, TypeVar

try:
    import hvac
    import hvac.exceptions
    import requests
except ImportError:  # VaultStore() names the missing package and the pip command
    hvac = None

from .errors import LockLost, StoreError
from .storage import CertificateStore, Fence, StoreLock, VersionData
from .waiting import Deadline

T = TypeVar("T")
CERTIFICATES, LOCKS, OWNERS = "certificates", "locks", "owners"
#: Certificates read at once by load_many (an idempotent run reads every one).
LOAD_WORKERS = 8
DEFAULT_MOUNT, DEFAULT_PREFIX = "secret", "certops-acme"
#: Retries of one compare-and-set when other writers keep winning.
CAS_ATTEMPTS = 20
#: An irreversible step needs at least this share of a lease left on this run's lease.
CONFIRM_SHARE = 0.5


class _CasConflict(Exception):
    """A check-and-set write found a newer version than the one it was computed from."""


def _is_cas_conflict(error: Exception) -> bool:
    return "check-and-set" in str(error)


class VaultStore(CertificateStore):
    def __init__(self, urls: Sequence[str], *, token: Optional[str] = None, role_id: Optional[str] = None,
                 secret_id: Optional[str] = None, namespace: Optional[str] = None, mount: str = DEFAULT_MOUNT,
                 prefix: str = DEFAULT_PREFIX, verify: Any = True, timeout: float = 30.0,
                 lock_lease: float = 60.0, read_only: bool = False) -> None:
        if hvac is None:
            raise StoreError("store: vault needs the Python package hvac on the controller: pip install hvac")
        if not urls:
            raise StoreError("store: vault needs vault_url (or $VAULT_ADDR): the address of every node")
        self.urls = list(urls)
        self.mount = mount.strip("/")
        self.prefix = prefix.strip("/")
        self.timeout = timeout
        self.lock_lease = lock_lease
        self.read_only = read_only
        self.owner = f"{uuid.uuid4().hex[:12]}"
        # One client (and connection pool) per node; requests go to the last one that answered.
        # One request waits at most a quarter lease, so a lease check learns in time that the
        # node it asks has gone silent (a partition drops packets: nothing is refused).
        request_timeout = min(timeout, 10.0, max(lock_lease / 4.0, 1.0))
        self._clients = [hvac.Client(url=url, token=token, verify=verify, namespace=namespace,
                                     timeout=request_timeout) for url in self.urls]
        self._preferred = 0
        self._lock = threading.Lock()
        self.requests = 0
        if not token:
            if not (role_id and secret_id):
                raise StoreError("store: vault needs a token (vault_token or $VAULT_TOKEN) or an AppRole "
                                 "(vault_role_id and vault_secret_id)")
            answer = self._call("log in with AppRole",
                                lambda c: c.auth.approle.login(role_id=role_id, secret_id=secret_id))
            token = answer["auth"]["client_token"]
            for client in self._clients:
                client.token = token
        self._leases = _LeaseKeeper(self)

    def describe(self) -> str:
        return f"vault {self.urls[0]} (mount {self.mount}, prefix {self.prefix})"

    def close(self) -> None:
        self._leases.stop()
        for client in self._clients:
            session = getattr(getattr(client, "adapter", None), "session", None)
            if session is not None:
                session.close()

    # --- transport: every node, backoff, clear errors -------------------------------------
    def _call(self, what: str, operation: Callable[[Any], T], timeout: Optional[float] = None) -> T:
        """``operation`` on the node that answered last, else the next, until ``timeout``
        (default ``vault_timeout``)."""
        limit = self.timeout if timeout is None else max(timeout, 0.0)
        backoff = Deadline(limit, f"store operation: {what}").backoff(0.1, 2.0, 2.0)
        last = ""
        while True:
            for offset in range(len(self._clients)):
                if offset and backoff.deadline.remaining() <= 0:
                    break  # out of time: the next node is not tried
                index = (self._preferred + offset) % len(self._clients)
                client = self._clients[index]
                try:
                    with self._lock:
                        self.requests += 1
                    result = operation(client)
                    self._preferred = index
                    return result
                except hvac.exceptions.Forbidden:
                    raise StoreError(f"store {self.describe()}: permission denied to {what} (check the token's "
                                     "policy: docs/vault/certops-acme-policy.hcl)") from None
                except hvac.exceptions.Unauthorized:
                    raise StoreError(f"store {self.describe()}: the token was refused (expired or revoked) "
                                     f"while trying to {what}") from None
                except (hvac.exceptions.InvalidPath, hvac.exceptions.InvalidRequest):
                    raise
                except hvac.exceptions.VaultDown:
                    last = f"{self.urls[index]} is sealed"
                except (hvac.exceptions.InternalServerError, hvac.exceptions.BadGateway,
                        hvac.exceptions.RateLimitExceeded, hvac.exceptions.UnexpectedError) as error:
                    last = f"{self.urls[index]} answered: {_first_line(error)}"
                except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as error:
                    last = f"{self.urls[index]} is unreachable ({type(error).__name__})"
            if not backoff.wait():
                raise StoreError(f"store {self.describe()}: cannot {what} within {limit:.0f} s: {last}")

    def _path(self, kind: str, key: str) -> str:
        return f"{self.prefix}/{kind}/{key}"

    def _read(self, path: str, timeout: Optional[float] = None) -> Optional[tuple[dict[str, Any], int]]:
        """(data, KV version) of a secret, or None."""
        try:
            answer = self._call(f"read {path}", lambda c: c.secrets.kv.v2.read_secret_version(
                path=path, mount_point=self.mount, raise_on_deleted_version=True), timeout)
        except hvac.exceptions.InvalidPath:
            return None
        data = answer.get("data") or {}
        if not isinstance(data.get("data"), dict):
            return None
        return data["data"], int((data.get("metadata") or {}).get("version") or 0)

    def _write(self, path: str, data: dict[str, Any], cas: Optional[int] = None,
               timeout: Optional[float] = None) -> int:
        """Write a secret; with ``cas``, only onto that KV version (0: only if absent). Returns
        the new KV version."""
        try:
            answer = self._call(f"write {path}", lambda c: c.secrets.kv.v2.create_or_update_secret(
                path=path, secret=data, cas=cas, mount_point=self.mount), timeout)
        except hvac.exceptions.InvalidRequest as error:
            if _is_cas_conflict(error):
                raise _CasConflict(path) from None
            raise StoreError(f"store {self.describe()}: cannot write {path}: {_first_line(error)}") from None
        return int(((answer or {}).get("data") or {}).get("version") or 0)

    def _cas_update(self, path: str, change: Callable[[Optional[dict[str, Any]]], Optional[dict[str, Any]]]) -> bool:
        """Read, change, write back with check-and-set; again, after a pause, on a lost race.
        ``change`` returns None to write nothing (then False is returned).

        What is already there counts as written: a write whose answer was lost (the node died
        after committing it, and the request went again to the next node) then conflicts with
        itself, and the next read shows it."""
        backoff = Deadline(self.timeout, f"updating {path}").backoff(0.05, 2.0, 1.0)
        for _attempt in range(CAS_ATTEMPTS):
            current = self._read(path)
            new = change(current[0] if current else None)
            if new is None:
                return False
            if current is not None and new == current[0]:
                return True
            try:
                self._write(path, new, cas=current[1] if current else 0)
                return True
            except _CasConflict:
                if not backoff.wait():
                    break
        raise StoreError(f"store {self.describe()}: {path} kept changing under {CAS_ATTEMPTS} attempts to update it")

    # --- certificates ---------------------------------------------------------------------
    def _read_version(self, name: str) -> Optional[VersionData]:
        found = self._read(self._path(CERTIFICATES, name))
        if found is None:
            return None
        data = found[0]
        version, key, leaf, chain, meta = (data.get(k) for k in ("version", "privkey", "cert", "chain", "meta"))
        if not (isinstance(version, str) and isinstance(key, str) and isinstance(leaf, str) and isinstance(chain, str)
                and isinstance(meta, dict)):
            raise self._damaged(name, version if isinstance(version, str) else None,
                                "its record lacks a field (version, privkey, cert, chain and meta are needed) or "
                                "holds one of the wrong type")
        if not key.isascii():
            raise self._damaged(name, version, "its key is not ASCII text")
        return VersionData(key.encode("ascii"), leaf, chain, dict(meta), version)

    def _write_version(self, name: str, data: VersionData, fence: Optional[Fence] = None) -> None:
        secret = {"version": data.version, "privkey": data.key_pem.decode("ascii"), "cert": data.cert_pem,
                  "chain": data.chain_pem, "meta": data.meta}
        fenced_out: list[Optional[str]] = []

        def change(current: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
            found = current.get("version") if current is not None else None
            found = found if isinstance(found, str) else None  # a damaged record without one: none valid
            if fence is None or found == data.version:
                return secret  # unfenced, or our own write whose answer was lost (counts as written)
            if found != fence.version:
                fenced_out.append(found)
                return None
            return secret
        if not self._cas_update(self._path(CERTIFICATES, name), change):
            raise self._fenced_out(name, fence or Fence(None), fenced_out[-1] if fenced_out else None)

    def _update_meta_cas(self, name: str, version: str, fields: dict[str, Any]) -> bool:
        def change(current: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
            if current is None or current.get("version") != version:
                return None  # replaced meanwhile: what was learnt is about the old certificate
            meta = dict(current.get("meta") or {})
            meta.update(fields)
            return {**current, "meta": meta}
        return self._cas_update(self._path(CERTIFICATES, name), change)

    def names(self) -> list[str]:
        return sorted(k for k in self._list(CERTIFICATES) if not k.endswith("/"))

    def _list(self, kind: str) -> list[str]:
        path = f"{self.prefix}/{kind}"
        try:
            answer = self._call(f"list {path}", lambda c: c.secrets.kv.v2.list_secrets(
                path=path, mount_point=self.mount))
        except hvac.exceptions.InvalidPath:
            return []
        return [str(k) for k in (answer.get("data") or {}).get("keys") or []]

    def _remove(self, name: str) -> None:
        self._remove_path(self._path(CERTIFICATES, name))

    def _remove_path(self, path: str) -> None:
        """Remove a secret with every version; a missing one is fine."""
        try:
            self._call(f"remove {path}", lambda c: c.secrets.kv.v2.delete_metadata_and_all_versions(
                path=path, mount_point=self.mount))
        except hvac.exceptions.InvalidPath:
            pass

    # --- records --------------------------------------------------------------------------
    def _get_record(self, kind: str, key: str) -> Optional[dict[str, Any]]:
        found = self._read(self._path(kind, key))
        return found[0] if found else None

    def _put_record(self, kind: str, key: str, record: dict[str, Any]) -> None:
        self._write(self._path(kind, key), record)

    def _drop_record(self, kind: str, key: str) -> None:
        self._remove_path(self._path(kind, key))

    def _record_keys(self, kind: str) -> list[str]:
        return [k for k in self._list(kind) if not k.endswith("/")]

    # --- locks ----------------------------------------------------------------------------
    def acquire(self, name: str, timeout: float = 300.0) -> StoreLock:
        """Create ``locks/NAME`` with ``cas=0`` naming this run; a lock whose owner's lease has
        run out (its ``owners/OWNER`` record expired or gone) is taken over with ``cas``."""
        backoff = Deadline(timeout, f"waiting for the lock of {name!r}").backoff(0.05, 2.0, 1.0)
        while True:
            lock, holder = self._take(name)
            if lock is not None:
                return lock
            if not backoff.wait():
                raise StoreError(f"store {self.describe()}: certificate {name!r} is locked by another run "
                                 f"({holder}) for more than {timeout:.0f} s")

    def try_acquire(self, name: str) -> Optional[StoreLock]:
        return self._take(name)[0]

    def _take(self, name: str) -> tuple[Optional[StoreLock], str]:
        """One attempt: (the lock, "") or (None, who holds it). The lock's token is the KV
        version its record has after this run's write."""
        path = self._path(LOCKS, name)
        self._leases.start()
        for _attempt in range(CAS_ATTEMPTS):
            try:
                return self._leases.hold(path, self._write(path, {"owner": self.owner}, cas=0)), ""
            except _CasConflict:
                pass
            current = self._read(path)
            if current is None:
                continue  # released meanwhile
            owner = current[0].get("owner")
            holder = owner if isinstance(owner, str) else ""  # a malformed record names nobody alive
            if holder == self.owner and not self._leases.holds(path):
                # Our own write whose answer was lost (its node died after committing it).
                return self._leases.hold(path, current[1]), ""
            if self._leases.alive(holder):
                return None, holder
            try:
                token = self._write(path, {"owner": self.owner, "took_over_from": holder}, cas=current[1])
                return self._leases.hold(path, token), ""
            except _CasConflict:
                continue  # another controller took it over first
        return None, "contended"

    def _for_each(self, read: Callable[[str], T], names: Sequence[str]) -> dict[str, T]:
        """Many certificates at once (load_many, fingerprints): a few requests in flight instead
        of one after another."""
        if len(names) < 2:
            return super()._for_each(read, names)
        with ThreadPoolExecutor(max_workers=LOAD_WORKERS, thread_name_prefix="certops-vault-load") as pool:
            return dict(zip(names, pool.map(read, names)))


class _VaultLock(StoreLock):
    def __init__(self, keeper: "_LeaseKeeper", path: str, token: int) -> None:
        self.keeper = keeper
        self.path = path
        #: The KV version of the lock record this run wrote: the fencing token.
        self.token = token

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def lost(self) -> bool:
        """True once this run's lease lapsed: others may have taken the lock over."""
        return self.keeper.lapsed

    def confirm(self, step: str) -> None:
        """The lease has at least half a lease left and the lock record still names this run
        with this lock's token; else LockLost (and the step must not be taken)."""
        keeper = self.keeper
        keeper.confirm(step, self.name)
        try:
            found = keeper.store._read(self.path, timeout=keeper.time_left())  # pylint: disable=protected-access
        except StoreError as error:
            raise LockLost(f"certificate {self.name!r}: cannot confirm its lock before {step} within the "
                           f"lease's time left ({error}); the step is not taken") from None
        owner = found[0].get("owner") if found else None
        if found is None or owner != keeper.store.owner or found[1] != self.token:
            now_held = f"now held by {str(owner)[:40]!r}" if found else "its record is gone"
            raise LockLost(f"certificate {self.name!r}: its lock was taken over ({now_held}); {step} is left "
                           "to the run that holds it")
        keeper.confirm(step, self.name)  # the read took time too

    def confirm_lease(self, step: str) -> None:
        self.keeper.confirm(step, self.name)

    def release(self) -> None:
        self.keeper.release(self)


class _LeaseKeeper:
    """This run's lease: one record, ``owners/OWNER`` {expires}, renewed every third of a lease
    while the run holds any lock. Every lock names its owner, so renewing costs one write
    however many certificates a batch holds, and a dead run's locks all expire together.

    ``renewed_at`` is when the last acknowledged renewal was *sent* (the expiry it wrote counts
    from then). The lease lapses, for good, when a renewal is not acknowledged before the
    previous one's expiry: from then on another run may hold any of our locks."""

    def __init__(self, store: VaultStore) -> None:
        self.store = store
        self.path = store._path(OWNERS, store.owner)  # pylint: disable=protected-access
        self._held: dict[str, _VaultLock] = {}
        self._guard = threading.Condition()
        self._renewing = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._stopped = False
        self.renewed_at = 0.0
        self.lapsed = False

    @property
    def lease(self) -> float:
        return self.store.lock_lease

    def time_left(self) -> float:
        """Seconds until this run's lease ends, as far as this run can prove (0 once lapsed)."""
        return 0.0 if self.lapsed else max(self.renewed_at + self.lease - time.time(), 0.0)

    def _renew(self) -> None:
        """Write a new expiry. A renewal gets no longer than the current lease has left: one
        acknowledged after that cannot prove the lease was never interrupted."""
        started = time.time()
        first = self.renewed_at == 0.0
        limit = None if first else self.renewed_at + self.lease - started
        if limit is not None and limit <= 0:
            self.lapsed = True
            raise LockLost(f"store {self.store.describe()}: this run's lock lease lapsed (not renewed "
                           f"within {self.lease:.0f} s)")
        try:
            self.store._write(self.path, {"expires": started + self.lease}, timeout=limit)  # pylint: disable=protected-access
        except StoreError:
            if not first and time.time() >= self.renewed_at + self.lease:
                self.lapsed = True
            raise
        if not first and time.time() >= self.renewed_at + self.lease:
            self.lapsed = True  # acknowledged too late: the old lease may have run out meanwhile
            raise LockLost(f"store {self.store.describe()}: this run's lock lease was renewed only after it "
                           "had run out")
        self.renewed_at = started

    def confirm(self, step: str, name: str) -> None:
        """At least CONFIRM_SHARE of a lease left, renewing now if the heartbeat is behind."""
        if self.time_left() < self.lease * CONFIRM_SHARE:
            with self._renewing:  # one renewal for every worker that finds the lease short
                if self.time_left() < self.lease * CONFIRM_SHARE and not self.lapsed:
                    try:
                        self._renew()
                    except StoreError:
                        pass  # judged below
        if self.lapsed or self.time_left() < self.lease * CONFIRM_SHARE:
            state = "lapsed" if self.lapsed else f"only {self.time_left():.1f} s left"
            raise LockLost(f"certificate {name!r}: this run's lock lease ({self.lease:.0f} s) is {state}: the store "
                           f"{self.store.describe()} did not confirm it in time, so another run may hold the lock; "
                           f"{step} is not done")

    def start(self) -> None:
        """Before the first lock: the owner record must exist before a lock names it."""
        with self._guard:
            if self._thread is not None:
                return
            self._renew()
            self._thread = threading.Thread(target=self._run, name="certops-vault-lease", daemon=True)
            self._thread.start()

    def alive(self, owner: str) -> bool:
        if owner == self.store.owner:
            return True
        found = self.store._read(self.store._path(OWNERS, owner)) if owner else None  # pylint: disable=protected-access
        return found is not None and _expiry(found[0]) > time.time()

    def holds(self, path: str) -> bool:
        with self._guard:
            return path in self._held

    def hold(self, path: str, token: int) -> _VaultLock:
        lock = _VaultLock(self, path, token)
        with self._guard:
            self._held[path] = lock
        return lock

    def release(self, lock: _VaultLock) -> None:
        """Delete the lock record only while it provably is ours: the lease holds, and the record
        names this run with the lock's token. Otherwise leave it to expire with our lease."""
        with self._guard:
            if self._held.get(lock.path) is not lock:
                return
            del self._held[lock.path]
        if self.lapsed or self.time_left() < self.lease * CONFIRM_SHARE:
            return
        store = self.store
        try:
            found = store._read(lock.path, timeout=self.time_left())  # pylint: disable=protected-access
            if found is not None and found[0].get("owner") == store.owner and found[1] == lock.token:
                store._remove_path(lock.path)  # pylint: disable=protected-access
        except StoreError:
            pass  # the store is gone: the lock expires with our lease

    def stop(self) -> None:
        with self._guard:
            held = list(self._held.values())
        for lock in held:
            self.release(lock)
        with self._guard:
            self._stopped = True
            self._guard.notify_all()
            started = self._thread is not None
        if started and not self.lapsed:
            try:
                self.store._remove_path(self.path)  # pylint: disable=protected-access
            except StoreError:
                pass

    def _run(self) -> None:
        interval = max(self.lease / 3.0, 0.2)
        while True:
            with self._guard:
                self._guard.wait(interval)
                if self._stopped or self.lapsed:
                    return
            with self._renewing:
                try:
                    self._renew()
                except StoreError:
                    pass  # tried again next beat, with less time; _renew marks the lease lapsed


def _expiry(record: dict[str, Any]) -> float:
    """An owner record's expiry; a malformed one (another writer's, or damaged) counts as expired."""
    value = record.get("expires")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0
    try:
        expiry = float(value)
    except OverflowError:
        return 0.0
    return expiry if math.isfinite(expiry) else 0.0  # NaN and infinity: a lease that could never end


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]


__all__ = ["VaultStore", "DEFAULT_MOUNT", "DEFAULT_PREFIX"]
