"""A certificate store shared by several controllers: KV v2 on OpenBao or HashiCorp Vault.

Layout under ``MOUNT/PREFIX`` (defaults ``secret/certops-acme``)::

    certificates/NAME   {version, privkey, cert, chain, meta}   one secret per certificate
    pending/NAME        an opened order waiting for its host-side challenges
    accounts/ID         the account URL and contact known for a key at a CA
    trust/SHA256        a chain top the CA issued through (adoption anchor)
    locks/NAME          {owner, order?}                         a certificate's lock, see below
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

A lease can also be lost by a live run (one cut off from the cluster for longer than a lease):
the leases, the locks and the fencing that keeps such a run from finalizing or storing anything
live in vault_leases.py.

High availability: the client knows every node's address. A node that is unreachable, sealed,
or a standby without a leader (an election in progress) is skipped, and the request goes to
the next, with backoff, until ``vault_timeout`` has passed (or, for lease and lock checks, the
lease's time left). Standbys forward writes to the leader; a standby may answer a read from
its own, possibly stale, copy, which is why the batch re-reads under the lock and fences its
writes.

The per-certificate requests (reads, check-and-set writes, removals) go over kept-alive bare
connections (vault_kv.py); lists, log-in and a node behind a proxy go through hvac.

Nothing in a message or result names the token; ``describe()`` names the first address,
mount and prefix.
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Optional, Sequence, TypeVar

try:
    import hvac
    import hvac.exceptions
    import requests
except ImportError:  # VaultStore() names the missing package and the pip command
    hvac = None

from ..errors import StoreError
from . import CertificateStore, Fence, StoreLock, VersionData
from .vault_leases import LeaseKeeper
from .vault_kv import KvClient
from ..waiting import Deadline

T = TypeVar("T")
CERTIFICATES, LOCKS = "certificates", "locks"
#: Certificates read at once by read_many (an idempotent run reads every one).
LOAD_WORKERS = 8
DEFAULT_MOUNT, DEFAULT_PREFIX = "secret", "certops-acme"
#: Retries of one compare-and-set when other writers keep winning.
CAS_ATTEMPTS = 20


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
        sessions = [_session(url, verify) for url in self.urls]
        self._clients = [hvac.Client(url=url, token=token, verify=verify, namespace=namespace,
                                     timeout=request_timeout, session=session)
                         for url, session in zip(self.urls, sessions)]
        # The per-certificate requests go over bare connections (vault_kv.py), except to a node
        # behind a proxy.
        self._kv = KvClient(self.mount, verify, namespace, request_timeout)
        self._direct = {client.url for client, session in zip(self._clients, sessions) if not session.proxies}
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
        self._leases = LeaseKeeper(self)

    def describe(self) -> str:
        return f"vault {self.urls[0]} (mount {self.mount}, prefix {self.prefix})"

    def close(self) -> None:
        self._leases.stop()
        self._kv.close()
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

    def admin_call(self, what: str, operation: Callable[[Any], T]) -> T:
        """Any request outside the store's own records (pull_access.py writes policies and
        AppRoles), with the same failover across nodes, deadline and error wording."""
        return self._call(what, operation)

    def _on_node(self, direct: Callable[[Any], T], through_hvac: Callable[[Any], T]) -> Callable[[Any], T]:
        """One KV request for ``_call``: over the bare connection (vault_kv.py) to a node reached
        directly, through hvac to a node behind a proxy."""
        return lambda client: direct(client) if client.url in self._direct else through_hvac(client)

    def _path(self, kind: str, key: str) -> str:
        return f"{self.prefix}/{kind}/{key}"

    def _read(self, path: str, timeout: Optional[float] = None) -> Optional[tuple[dict[str, Any], int]]:
        """(data, KV version) of a secret, or None."""
        read = self._on_node(lambda c: self._kv.read(c, path), lambda c: c.secrets.kv.v2.read_secret_version(
            path=path, mount_point=self.mount, raise_on_deleted_version=True))
        try:
            answer = self._call(f"read {path}", read, timeout)
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
        write = self._on_node(lambda c: self._kv.write(c, path, data, cas),
                              lambda c: c.secrets.kv.v2.create_or_update_secret(path=path, secret=data, cas=cas,
                                                                                mount_point=self.mount))
        try:
            answer = self._call(f"write {path}", write, timeout)
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
        return VersionData(key.encode("ascii"), leaf, chain, dict(meta), version, revision=found[1])

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
        path = self._path(CERTIFICATES, name)
        if fence is not None and fence.revision is not None:
            # The record as read under the lock: written onto that KV version it replaces exactly
            # the fenced version. Any other writer in between makes this conflict, and the
            # read-compare-write below judges by version as always.
            try:
                self._write(path, secret, cas=fence.revision)
                return
            except _CasConflict:
                pass
        if not self._cas_update(path, change):
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
        remove = self._on_node(lambda c: self._kv.remove(c, path),
                               lambda c: c.secrets.kv.v2.delete_metadata_and_all_versions(path=path,
                                                                                          mount_point=self.mount))
        try:
            self._call(f"remove {path}", remove)
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
            # The dead owner's order note goes on with the lock: if this run stops too before it
            # finishes that order, the next taker still finds it (order_resume.py).
            note = current[0].get("order")
            note = note if isinstance(note, dict) else None
            record: dict[str, Any] = {"owner": self.owner, "took_over_from": holder}
            if note is not None:
                record["order"] = note
            try:
                token = self._write(path, record, cas=current[1])
                return self._leases.hold(path, token, note), ""
            except _CasConflict:
                continue  # another controller took it over first
        return None, "contended"

    def _rewrite_lock(self, path: str, record: dict[str, Any], token: int, timeout: Optional[float]) -> Optional[int]:
        """``record`` onto a lock record still at KV version ``token``: the new token, or None
        when the record changed meanwhile."""
        try:
            return self._write(path, record, cas=token, timeout=timeout)
        except _CasConflict:
            # Our own write whose answer was lost (its node died after committing it) conflicts
            # with itself: it counts as written when the record is exactly ours.
            current = self._read(path, timeout=timeout)
            return current[1] if current is not None and current[0] == record else None

    def _for_each(self, read: Callable[[str], T], names: Sequence[str]) -> dict[str, T]:
        """Many certificates at once (read_many, fingerprints): a few requests in flight instead
        of one after another."""
        if len(names) < 2:
            return super()._for_each(read, names)
        with ThreadPoolExecutor(max_workers=LOAD_WORKERS, thread_name_prefix="certops-vault-load") as pool:
            return dict(zip(names, pool.map(read, names)))


def _session(url: str, verify: Any) -> "requests.Session":
    """A node's HTTP session. The proxy settings of the environment (HTTPS_PROXY, NO_PROXY) are
    looked up once, here: requests would scan the whole environment again on every request,
    which cost more client time than the rest of a KV read. The CA is the store's own
    (``vault_ca_cert``), never REQUESTS_CA_BUNDLE's."""
    session = requests.Session()
    session.trust_env = False
    session.verify = verify
    session.proxies = requests.utils.get_environ_proxies(url)
    return session


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]


__all__ = ["VaultStore", "DEFAULT_MOUNT", "DEFAULT_PREFIX"]
