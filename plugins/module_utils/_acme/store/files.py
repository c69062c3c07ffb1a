"""The file store: issued certificates and their keys in a directory on the controller.

The default backend of the store seam (``store.CertificateStore``). Layout (everything
0700/0600, whatever the umask)::

    STORE/certificates/NAME/current -> versions/20261122T101500Z-1a2b3c
    STORE/certificates/NAME/versions/<version>/{privkey,cert,chain,fullchain}.pem meta.json
    STORE/locks/NAME.lock
    STORE/trust/<sha256>.pem            tops of the chains the CA issued through (adoption anchors)
    STORE/accounts/<id>.json            account URL and contact known for a key at a CA
    STORE/pending/NAME.json             an order waiting for its host-side challenges

A new version is written completely into its own directory, then the ``current`` symlink is
swapped with one atomic rename (``_host_files.swap_in_version``, the same code that installs
bundles on hosts), so a reader or a killed run never sees a key from one certificate beside
the certificate of another. The previous version is kept; older ones go.

Locking: ``acquire(name)`` takes an exclusive ``flock`` on ``locks/NAME.lock``. flock locks
belong to an open file description, so they exclude other processes (a second
ansible-playbook run, other forks) and other threads of this process alike, and the kernel
drops them when a holder dies: no lease is needed on one machine. Metadata updates run under
a short flock of their own (``locks/NAME.meta.lock``), which makes them compare-and-set.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from typing import Any, Iterator, Optional

from ... import _host_files
from ..crypto import split_pem_chain
from ..errors import InputError, StoreError
from .record_checks import MAX_FIELD_BYTES
from . import (KEEP_VERSIONS, KEY_KEPT_ELSEWHERE, TRUST, CertificateStore, Fence, StoreLock, StoredCertificate,
               VersionData, check_certificate_name)
from ..waiting import Deadline

ENV_STORE_PATH = "CERTOPS_ACME_STORE"
#: The most a lock file's order note may hold (order_resume.order_note writes well under 2 KiB).
MAX_LOCK_NOTE = 16384
_PEM_FILES = ("privkey.pem", "cert.pem", "chain.pem")

__all__ = ["FileStore", "FileLock", "StoredCertificate", "check_certificate_name", "default_store_path",
           "ENV_STORE_PATH", "KEEP_VERSIONS"]


def default_store_path() -> str:
    """``$CERTOPS_ACME_STORE``, else ``$XDG_DATA_HOME/certops-acme`` (``~/.local/share``).

    Under AWX the home directory lives in the job's container, so the store is empty at each
    job start; the install module's ``inspect`` state refills it from the hosts (adoption), or
    use the shared store (``store: vault``).
    """
    if os.environ.get(ENV_STORE_PATH):
        return os.environ[ENV_STORE_PATH]
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "certops-acme")


class FileStore(CertificateStore):
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

    def describe(self) -> str:
        return f"files at {self.root}"

    # --- certificates ---------------------------------------------------------------------
    def _cert_dir(self, name: str) -> str:
        return os.path.join(self.root, "certificates", check_certificate_name(name))

    def _read_version(self, name: str) -> Optional[VersionData]:
        current = os.path.join(self._cert_dir(name), "current")
        try:
            target = os.readlink(current)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StoreError(f"store: certificate {name!r} at {current} is unreadable: {error}") from None
        version, version_dir = os.path.basename(target), os.path.join(os.path.dirname(current), target)

        def read(filename: str) -> bytes:
            with open(os.path.join(version_dir, filename), "rb") as handle:
                return handle.read(MAX_FIELD_BYTES + 1)  # a larger file is judged damaged, not read whole
        try:
            leaf_pem, chain_pem = read("cert.pem").decode("ascii"), read("chain.pem").decode("ascii")
            meta = json.loads(read("meta.json").decode("utf-8"))
            keyless = isinstance(meta, dict) and meta.get("key") == KEY_KEPT_ELSEWHERE
            key_pem = b"" if keyless else read("privkey.pem")
        except FileNotFoundError as error:
            raise self._damaged(name, version, f"its {os.path.basename(str(error.filename))} is missing") from None
        except ValueError as error:  # not ASCII or UTF-8, or not JSON
            raise self._damaged(name, version, f"a file does not decode ({str(error)[:200]})") from None
        except OSError as error:
            raise StoreError(f"store: certificate {name!r} at {current} is unreadable: {error}") from None
        return VersionData(key_pem, leaf_pem, chain_pem, meta, version)

    def _write_version(self, name: str, data: VersionData, fence: Optional[Fence] = None) -> None:
        if fence is None:
            self._swap_in(name, data)
            return
        # The certificate's own flock already excludes other runs on this machine; the check
        # runs under the metadata flock too, so it holds against a writer that took neither.
        with self._flock(os.path.join(self.root, "locks", f"{name}.meta.lock"), 30.0, name):
            current = self._current_version(name)
            if current != fence.version:
                raise self._fenced_out(name, fence, current)
            self._swap_in(name, data)

    def _current_version(self, name: str) -> Optional[str]:
        try:
            return os.path.basename(os.readlink(os.path.join(self._cert_dir(name), "current")))
        except FileNotFoundError:
            return None

    def _swap_in(self, name: str, data: VersionData) -> None:
        cert_dir = self._cert_dir(name)
        files = {"cert.pem": data.cert_pem.encode(),
                 "chain.pem": data.chain_pem.encode(), "fullchain.pem": (data.cert_pem + data.chain_pem).encode(),
                 "meta.json": json.dumps(data.meta, indent=2, sort_keys=True).encode()}
        if data.key_pem:
            files["privkey.pem"] = data.key_pem
        try:
            _host_files.ensure_directory(cert_dir, 0o700)
            _host_files.swap_in_version(os.path.join(cert_dir, "versions"), os.path.join(cert_dir, "current"),
                                        data.version, {f: (content, 0o600) for f, content in files.items()},
                                        dir_mode=0o700, keep=KEEP_VERSIONS)
        except OSError as error:
            raise StoreError(f"store: cannot write certificate {name!r} under {cert_dir}: {error}") from None

    def _update_meta_cas(self, name: str, version: str, fields: dict[str, Any]) -> bool:
        meta_path = os.path.join(self._cert_dir(name), "versions", version, "meta.json")
        with self._flock(os.path.join(self.root, "locks", f"{name}.meta.lock"), 30.0, name):
            if self._current_version(name) != version:
                return False  # replaced meanwhile (or removed): what was learnt is about the old certificate
            try:
                with open(meta_path, encoding="utf-8") as handle:
                    meta = json.load(handle)
            except FileNotFoundError:
                return False  # pruned: two newer versions were stored meanwhile
            except (OSError, ValueError) as error:
                raise StoreError(f"store: metadata of {name!r} ({meta_path}) is unreadable: {error}") from None
            meta.update(fields)
            _host_files.atomic_write(meta_path, json.dumps(meta, indent=2, sort_keys=True).encode(), 0o600)
        return True

    def names(self) -> list[str]:
        base = os.path.join(self.root, "certificates")
        try:
            entries = os.listdir(base)
        except FileNotFoundError:
            return []  # a store that does not exist yet (check mode)
        return sorted(n for n in entries if os.path.islink(os.path.join(base, n, "current")))

    def _remove(self, name: str) -> None:
        shutil.rmtree(self._cert_dir(name), ignore_errors=False)

    # --- records: accounts/ID.json, pending/NAME.json, trust/SHA256.pem -------------------
    def _record_path(self, kind: str, key: str) -> str:
        return os.path.join(self.root, kind, f"{key}.pem" if kind == TRUST else f"{key}.json")

    def _get_record(self, kind: str, key: str) -> Optional[dict[str, Any]]:
        try:
            with open(self._record_path(kind, key), encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError):
            return None
        if kind == TRUST:
            return {"pem": text}
        try:
            record = json.loads(text)
        except ValueError:
            return None
        return record if isinstance(record, dict) else None

    def _put_record(self, kind: str, key: str, record: dict[str, Any]) -> None:
        path = self._record_path(kind, key)
        data = str(record["pem"]).encode() if kind == TRUST else json.dumps(record, indent=2, sort_keys=True).encode()
        try:
            _host_files.ensure_directory(os.path.dirname(path), 0o700)
            _host_files.atomic_write(path, data, 0o600)
        except OSError as error:
            raise StoreError(f"store: cannot write {kind} record under {self.root}: {error}") from None

    def _drop_record(self, kind: str, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._record_path(kind, key))

    def _record_keys(self, kind: str) -> list[str]:
        try:
            entries = os.listdir(os.path.join(self.root, kind))
        except FileNotFoundError:
            return []
        suffix = ".pem" if kind == TRUST else ".json"
        return [e[:-len(suffix)] for e in entries if e.endswith(suffix) and not e.startswith(".")]

    def anchors(self) -> list[Any]:
        """The chain tops this store has seen its CA issue through. A store from before these
        were recorded is scanned once: its ordered certificates' chains count too."""
        found: list[Any] = []
        if not os.path.isdir(os.path.join(self.root, TRUST)):
            for name in self.names():
                stored = self.read(name).stored
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
                    _host_files.ensure_directory(os.path.join(self.root, TRUST), 0o700)
        return found + super().anchors()

    # --- locking --------------------------------------------------------------------------
    def acquire(self, name: str, timeout: float = 300.0) -> "FileLock":
        path = os.path.join(self.root, "locks", check_certificate_name(name) + ".lock")
        return self._take(path, timeout, name).inherit()

    def try_acquire(self, name: str) -> Optional["FileLock"]:
        path = os.path.join(self.root, "locks", check_certificate_name(name) + ".lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return FileLock(fd).inherit()

    @contextlib.contextmanager
    def _flock(self, path: str, timeout: float, name: str) -> Iterator[None]:
        handle = self._take(path, timeout, name)
        try:
            yield
        finally:
            handle.release()

    @staticmethod
    def _take(path: str, timeout: float, name: str) -> "FileLock":
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        backoff = Deadline(timeout, f"waiting for the lock of {name!r}").backoff(0.02, 2.0, 0.5)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return FileLock(fd)
            except BlockingIOError:
                if not backoff.wait():
                    os.close(fd)
                    raise StoreError(f"store: certificate {name!r} is locked by another run "
                                     f"for more than {timeout:.0f} s ({path})") from None


class FileLock(StoreLock):
    """An flock on ``locks/NAME.lock``. The file's content is the note of the order opened under
    the lock (note_order); release empties it, so a note found when the lock is taken was left
    by a run that died holding the lock (the kernel drops a dead process's flocks)."""

    def __init__(self, fd: int) -> None:
        self._fd: Optional[int] = fd
        self._noted = False

    def inherit(self) -> "FileLock":
        """Read what a run that died holding this lock noted (bounded; damage reads as nothing)."""
        if self._fd is not None:
            text = os.pread(self._fd, MAX_LOCK_NOTE + 1, 0)
            if text and len(text) <= MAX_LOCK_NOTE:
                with contextlib.suppress(ValueError):
                    found = json.loads(text)
                    if isinstance(found, dict) and isinstance(found.get("order"), dict):
                        self.inherited_order = found["order"]
            self._noted = bool(text)
        return self

    def note_order(self, note: dict[str, Any]) -> None:
        if self._fd is None:
            return
        data = json.dumps({"order": note}, sort_keys=True).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)  # no fsync: it only has to outlive this process, not the machine
        self._noted = True

    # An flock is the kernel's, held for as long as this process keeps the descriptor open: it
    # has no lease that could run out while the run lives, so there is nothing to confirm.
    def confirm(self, step: str) -> None:
        return None

    def confirm_lease(self, step: str) -> None:
        return None

    def release(self) -> None:
        if self._fd is not None:
            if self._noted:
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, 0)  # the order is finished (or given up) with the lock
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None
