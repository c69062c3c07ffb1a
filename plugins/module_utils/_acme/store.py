"""The controller store: issued certificates and their keys, one directory per certificate.

Layout (everything 0700/0600, whatever the umask)::

    STORE/certificates/NAME/current -> versions/20261122T101500Z-1a2b3c
    STORE/certificates/NAME/versions/<version>/{privkey,cert,chain,fullchain}.pem meta.json
    STORE/locks/NAME.lock
    STORE/trust/<sha256>.pem            tops of the chains the CA issued through (adoption anchors)
    STORE/accounts/<id>.json            account URL and contact known for a key at a CA

A new version is written completely into its own directory, then the ``current`` symlink is
swapped with one atomic rename, so a reader or a killed run never sees a key from one
certificate beside the certificate of another. The previous version is kept (rollback, and
so an installer that read ``current`` a moment ago still finds its files); older ones go.

Locking: ``lock(name)`` takes an exclusive ``flock`` on ``locks/NAME.lock``. flock locks belong
to an open file description, so they exclude other processes (a second ansible-playbook run,
other forks) and other threads of this process alike. Callers re-read the store after taking
the lock: the run that waited finds the certificate the other run just issued.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from typing import Any, Iterator, Optional

try:
    from cryptography import x509
except ImportError:  # dependencies.require_controller_libraries() names what is missing
    pass

from .. import _host_files
from .crypto import CertificateFacts, cert_pem, certificate_facts, split_pem_chain
from .errors import InputError, StoreError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
KEEP_VERSIONS = 2
ENV_STORE_PATH = "CERTOPS_ACME_STORE"


def default_store_path() -> str:
    """``$CERTOPS_ACME_STORE``, else ``$XDG_DATA_HOME/certops-acme`` (``~/.local/share``).

    Under AWX the home directory lives in the job's container, so the store is empty at each
    job start; the install module's ``inspect`` state refills it from the hosts (adoption).
    """
    if os.environ.get(ENV_STORE_PATH):
        return os.environ[ENV_STORE_PATH]
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "certops-acme")


def check_certificate_name(name: object, field: str = "name") -> str:
    """Certificate names become directory and file names, here and on hosts."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name in (".", ".."):
        raise InputError(field, f"{name!r} cannot be used as a certificate name",
                         "use 1-128 letters, digits, '.', '_' or '-', starting with a letter or "
                         "digit, e.g. 'www.example.com' or 'wildcard.example.com'")
    return name


@dataclass(frozen=True)
class StoredCertificate:
    name: str
    key_pem: bytes
    cert_pem: str
    chain_pem: str
    meta: dict[str, Any]
    facts: CertificateFacts
    version: str

    @property
    def fullchain_pem(self) -> str:
        return self.cert_pem + self.chain_pem

    def files(self) -> dict[str, bytes]:
        """The file set every installer writes, including HAProxy's combined PEM."""
        return {
            "cert.pem": self.cert_pem.encode(),
            "chain.pem": self.chain_pem.encode(),
            "fullchain.pem": self.fullchain_pem.encode(),
            "privkey.pem": self.key_pem,
            "haproxy.pem": self.fullchain_pem.encode() + self.key_pem,
        }

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "domains": self.facts.names(),
            "serial": self.facts.serial,
            "sha256": self.facts.sha256,
            "not_before": self.facts.not_before.isoformat(),
            "not_after": self.facts.not_after.isoformat(),
            "issuer": self.facts.issuer,
            "key_type": self.facts.key_type,
        }


class CertificateStore:
    def __init__(self, root: str, create: bool = True) -> None:
        """``create=False`` (check mode) reads an existing store and writes nothing, not even
        its directories: a store that does not exist yet is simply empty."""
        if not root:
            raise InputError("store_path", "is empty", "set it or leave it out for the default")
        self.root = os.path.abspath(os.path.expanduser(root))
        self.read_only = not create
        if not create:
            return
        try:
            for sub in ("", "certificates", "locks"):
                _host_files.ensure_directory(os.path.join(self.root, sub), 0o700)
        except OSError as error:
            raise StoreError(f"store_path: cannot create the store at {self.root}: {error}") from None

    # --- paths ----------------------------------------------------------------------------
    def _cert_dir(self, name: str) -> str:
        return os.path.join(self.root, "certificates", check_certificate_name(name))

    # --- reading --------------------------------------------------------------------------
    def load(self, name: str) -> Optional[StoredCertificate]:
        """The current version of ``name``, or None if there is none (or it is unreadable)."""
        current = os.path.join(self._cert_dir(name), "current")
        try:
            target = os.readlink(current)
            version_dir = os.path.join(os.path.dirname(current), target)
            with open(os.path.join(version_dir, "privkey.pem"), "rb") as handle:
                key_pem = handle.read()
            with open(os.path.join(version_dir, "cert.pem"), encoding="ascii") as handle:
                leaf_pem = handle.read()
            with open(os.path.join(version_dir, "chain.pem"), encoding="ascii") as handle:
                chain_pem = handle.read()
            with open(os.path.join(version_dir, "meta.json"), encoding="utf-8") as handle:
                meta = json.load(handle)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            raise StoreError(f"store: certificate {name!r} at {current} is unreadable: {error}") from None
        certs = split_pem_chain(leaf_pem)
        return StoredCertificate(name=name, key_pem=key_pem, cert_pem=leaf_pem, chain_pem=chain_pem,
                                 meta=meta, facts=certificate_facts(certs[0]),
                                 version=os.path.basename(target))

    def update_meta(self, name: str, version: str, **fields: Any) -> None:
        """Add ``fields`` to the metadata of one stored version (atomically; keys untouched).
        Used to record facts learnt later, such as a revocation."""
        meta_path = os.path.join(self._cert_dir(name), "versions", version, "meta.json")
        try:
            with open(meta_path, encoding="utf-8") as handle:
                meta = json.load(handle)
        except (OSError, ValueError) as error:
            raise StoreError(f"store: metadata of {name!r} ({meta_path}) is unreadable: {error}") from None
        meta.update(fields)
        _host_files.atomic_write(meta_path, json.dumps(meta, indent=2, sort_keys=True).encode(), 0o600)

    def names(self) -> list[str]:
        base = os.path.join(self.root, "certificates")
        try:
            entries = os.listdir(base)
        except FileNotFoundError:
            return []  # a store that does not exist yet (check mode)
        return sorted(n for n in entries if os.path.islink(os.path.join(base, n, "current")))

    # --- writing --------------------------------------------------------------------------
    def save(self, name: str, key_pem: bytes, leaf: x509.Certificate,
             chain: list[x509.Certificate], meta: dict[str, Any]) -> StoredCertificate:
        """Store a new version and make it current in one atomic step."""
        cert_dir = self._cert_dir(name)
        versions = os.path.join(cert_dir, "versions")
        facts = certificate_facts(leaf)
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        version = f"{stamp}-{facts.serial[:16]}"
        version_dir = os.path.join(versions, version)
        leaf_text = cert_pem(leaf)
        chain_text = "".join(cert_pem(c) for c in chain)
        full_meta = dict(meta)
        full_meta.update({"name": name, "serial": facts.serial, "sha256": facts.sha256,
                          "not_before": facts.not_before.isoformat(),
                          "not_after": facts.not_after.isoformat(), "issuer": facts.issuer,
                          "domains": facts.names(), "key_type": facts.key_type,
                          "stored_at": datetime.datetime.now(datetime.timezone.utc).isoformat()})
        try:
            _host_files.ensure_directory(cert_dir, 0o700)
            _host_files.ensure_directory(versions, 0o700)
            os.mkdir(version_dir, 0o700)
            files = {"privkey.pem": key_pem, "cert.pem": leaf_text.encode(),
                     "chain.pem": chain_text.encode(),
                     "fullchain.pem": (leaf_text + chain_text).encode(),
                     "meta.json": json.dumps(full_meta, indent=2, sort_keys=True).encode()}
            for filename, data in files.items():
                _host_files.atomic_write(os.path.join(version_dir, filename), data, 0o600)
            link_tmp = os.path.join(cert_dir, f".current-{os.getpid()}-{time.monotonic_ns()}")
            os.symlink(os.path.join("versions", version), link_tmp)
            os.rename(link_tmp, os.path.join(cert_dir, "current"))
        except OSError as error:
            raise StoreError(f"store: cannot write certificate {name!r} under {cert_dir}: {error}") from None
        self._prune(versions, keep=version)
        if meta.get("order_url") and chain:
            self.remember_anchor(chain[-1])
        return StoredCertificate(name=name, key_pem=key_pem, cert_pem=leaf_text, chain_pem=chain_text,
                                 meta=full_meta, facts=facts, version=version)

    def remove(self, name: str) -> None:
        """Remove a certificate, every version and its key, from the store (under its lock)."""
        with self.lock(name):
            shutil.rmtree(self._cert_dir(name), ignore_errors=False)
            self.drop_pending(name)

    # --- accounts -------------------------------------------------------------------------
    def _account_path(self, directory_url: str, thumbprint: str) -> str:
        digest = hashlib.sha256(f"{directory_url}\n{thumbprint}".encode()).hexdigest()[:32]
        return os.path.join(self.root, "accounts", f"{digest}.json")

    def known_account(self, directory_url: str, thumbprint: str) -> Optional[dict[str, Any]]:
        """What an earlier run learnt about the account of this key at this CA (its URL and
        contact), so a run with nothing to order need not ask the CA; None if nothing is known."""
        try:
            with open(self._account_path(directory_url, thumbprint), encoding="utf-8") as handle:
                record = json.load(handle)
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) and isinstance(record.get("url"), str) else None

    def remember_account(self, directory_url: str, thumbprint: str, url: Optional[str],
                         contact: list[str]) -> None:
        """Record (or, with ``url=None``, forget) the account of a key at a CA."""
        path = self._account_path(directory_url, thumbprint)
        if url is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            return
        record = {"directory": directory_url, "thumbprint": thumbprint, "url": url, "contact": sorted(contact),
                  "checked_at": datetime.datetime.now(datetime.timezone.utc).isoformat()}
        try:
            _host_files.ensure_directory(os.path.dirname(path), 0o700)
            _host_files.atomic_write(path, json.dumps(record, indent=2, sort_keys=True).encode(), 0o600)
        except OSError as error:
            raise StoreError(f"store: cannot record the account under {self.root}: {error}") from None

    # --- trust anchors --------------------------------------------------------------------
    def _trust_dir(self) -> str:
        return os.path.join(self.root, "trust")

    def remember_anchor(self, cert: x509.Certificate) -> None:
        """Keep the top of a chain the CA issued through: host-held certificates are adopted
        only when they verify up to one of these (or to a configured or system root)."""
        facts = certificate_facts(cert)
        path = os.path.join(self._trust_dir(), f"{facts.sha256}.pem")
        if os.path.exists(path):
            return
        try:
            _host_files.ensure_directory(self._trust_dir(), 0o700)
            _host_files.atomic_write(path, cert_pem(cert).encode(), 0o600)
        except OSError as error:
            raise StoreError(f"store: cannot record a trust anchor under {self._trust_dir()}: {error}") from None

    def anchors(self) -> list[x509.Certificate]:
        """The chain tops this store has seen its CA issue through. A store from before this
        was recorded is scanned once: its ordered certificates' chains count too."""
        found: list[x509.Certificate] = []
        if not os.path.isdir(self._trust_dir()):
            for name in self.names():
                stored = self.load(name)
                if stored is not None and stored.meta.get("order_url") and stored.chain_pem.strip():
                    top = split_pem_chain(stored.chain_pem)[-1]
                    if self.read_only:
                        found.append(top)
                    else:
                        self.remember_anchor(top)
            if not self.read_only:
                # Scanned once: a store whose certificates were all adopted has no anchors yet
                # and must not be scanned again on every run.
                with contextlib.suppress(OSError):
                    _host_files.ensure_directory(self._trust_dir(), 0o700)
        try:
            entries = sorted(os.listdir(self._trust_dir()))
        except FileNotFoundError:
            return found
        for entry in entries:
            with contextlib.suppress(OSError, InputError):
                with open(os.path.join(self._trust_dir(), entry), "rb") as handle:
                    found.extend(split_pem_chain(handle.read()))
        return found

    def _prune(self, versions: str, keep: str) -> None:
        entries = sorted(e for e in os.listdir(versions) if not e.startswith("."))
        for old in entries[:-KEEP_VERSIONS]:
            if old != keep:
                shutil.rmtree(os.path.join(versions, old), ignore_errors=True)

    # --- pending orders (challenges answered on hosts, between two tasks) ------------------
    PENDING_MAX_AGE = datetime.timedelta(hours=1)

    def _pending_path(self, name: str) -> str:
        return os.path.join(self.root, "pending", check_certificate_name(name) + ".json")

    def save_pending(self, name: str, order: Any, alpn: Optional[dict[str, list[str]]] = None) -> None:
        """Keep an opened order (and the certificate key it will be finalized with) until the
        hosts have deployed its challenges."""
        request = order.request
        record = {"created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                  "name": name, "identifiers": [i.to_acme() for i in request.identifiers],
                  "challenge": request.challenge, "profile": request.profile,
                  "key_pem": request.key_pem.decode("ascii"), "order_url": order.order_url,
                  "order": order.order, "pending": [c.to_dict() for c in order.pending],
                  "alpn": alpn or {}}
        _host_files.ensure_directory(os.path.join(self.root, "pending"), 0o700)
        _host_files.atomic_write(self._pending_path(name), json.dumps(record).encode(), 0o600)

    def load_pending(self, name: str, identifiers: Any) -> Any:
        """The pending order for ``name`` if it is recent and for the same names, else None."""
        from .names import Identifier
        from .orders import OpenOrder, OrderRequest, PendingChallenge
        try:
            with open(self._pending_path(name), encoding="utf-8") as handle:
                record = json.load(handle)
            created = datetime.datetime.fromisoformat(record["created"])
            idents = [Identifier(i["type"], i["value"]) for i in record["identifiers"]]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if idents != list(identifiers) or datetime.datetime.now(datetime.timezone.utc) - created > self.PENDING_MAX_AGE:
            self.drop_pending(name)
            return None
        request = OrderRequest(name, idents, record["key_pem"].encode("ascii"), record["challenge"],
                               record.get("profile"))
        return OpenOrder(request=request, order_url=record["order_url"], order=record["order"],
                         pending=[PendingChallenge.from_dict(c) for c in record["pending"]])

    def pending_alpn(self, name: str) -> dict[str, list[str]]:
        """tls-alpn-01 material of a pending order: {identifier: [cert PEM, key PEM]}."""
        try:
            with open(self._pending_path(name), encoding="utf-8") as handle:
                alpn = json.load(handle).get("alpn") or {}
        except (OSError, ValueError):
            return {}
        return alpn if isinstance(alpn, dict) else {}

    def drop_pending(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._pending_path(name))

    # --- locking --------------------------------------------------------------------------
    def acquire(self, name: str, timeout: float = 300.0) -> "StoreLock":
        """Take the certificate's lock (waiting up to ``timeout``); release it with ``release()``.

        A handle rather than only a ``with`` block because a batch holds a certificate's lock
        from opening its order to storing the result, across worker threads.
        """
        path = os.path.join(self.root, "locks", check_certificate_name(name) + ".lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + timeout
        delay = 0.02
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return StoreLock(fd)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise StoreError(f"store: certificate {name!r} is locked by another run "
                                     f"for more than {timeout:.0f} s ({path})") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    @contextlib.contextmanager
    def lock(self, name: str, timeout: float = 300.0) -> Iterator[None]:
        handle = self.acquire(name, timeout)
        try:
            yield
        finally:
            handle.release()


class StoreLock:
    def __init__(self, fd: int) -> None:
        self._fd: Optional[int] = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None
