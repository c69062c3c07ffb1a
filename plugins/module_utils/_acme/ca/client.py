"""One CA as a batch uses it: the connection, and the account behind it.

A batch that keeps everything never reaches the CA. The first order looks the account up
(once, under a lock, for all worker threads); a CA that cannot be reached within
``connect_seconds`` fails every later order of the batch at once with the same error, so one
unreachable CA costs one timeout, not one per certificate. Requests that need no account (the
directory, renewalInfo) share a plain connection, which the account then takes over.

A CA that could not be reached lately (outages.py) is passed over without a request when
another CA follows (``pass_over``), and given at most ``outage_connect_seconds`` otherwise.
"""

from __future__ import annotations

import contextlib
import datetime
import threading
from typing import Callable, Optional

from . import outages
from .account import AccountKey, find_account
from ..crypto import utcnow
from ..errors import AcmeTransportError, CertopsError, InputError
from ..store import CertificateStore
from .transport import AcmeTransport
from ..waiting import Deadline


class CaClient:
    def __init__(self, store: CertificateStore, transport_factory: Callable[[], AcmeTransport],
                 account_key: Optional[AccountKey], check_mode: bool = False,
                 connect_seconds: Optional[float] = None, directory: str = "", pass_over: bool = False,
                 outage_connect_seconds: float = 60.0,
                 now: Callable[[], datetime.datetime] = utcnow) -> None:
        self.store = store
        self.account_key = account_key
        self.check_mode = check_mode
        self.connect_seconds = connect_seconds
        self.directory = directory
        self.pass_over = pass_over
        self.outage_connect_seconds = outage_connect_seconds
        self.now = now
        self._outage: Optional[outages.CaOutage] = None
        self._outage_read = False
        self._noted = False
        self._transport_factory = transport_factory
        #: The connection with a known account, once something was ordered.
        self.transport: Optional[AcmeTransport] = None
        self.account_url: Optional[str] = None
        self._lock = threading.Lock()
        self._connect_error: Optional[CertopsError] = None
        self._plain: Optional[AcmeTransport] = None

    @property
    def thumbprint(self) -> str:
        return self.account_key.thumbprint if self.account_key else ""

    def connected(self, deadline: Deadline) -> AcmeTransport:
        """The connection with the account looked up (raises the first failure for every caller)."""
        with self._lock:
            if self._connect_error is not None:
                raise self._connect_error
            if self.transport is None:
                self.transport = self._with_account(deadline)
            return self.transport

    def _with_account(self, deadline: Deadline) -> AcmeTransport:
        if self.account_key is None:
            raise InputError("account_key_src", "an order is needed but no account key was given")
        outage = self.remembered_outage()
        if outage is not None and outage.current(self.now()) and self.pass_over:
            self._connect_error = AcmeTransportError(f"{outage.describe()}; the next CA is tried")
            raise self._connect_error
        transport = self._plain or self._transport_factory()
        self._plain = None
        limit = self.connect_seconds
        if outage is not None and outage.current(self.now()):
            limit = min(limit or self.outage_connect_seconds, self.outage_connect_seconds)
        if limit is not None:
            deadline = Deadline(min(limit, deadline.remaining()), f"reaching the ACME server at {transport.directory_url}")
        try:
            state = find_account(transport, self.account_key, deadline)
        except AcmeTransportError as error:
            self._plain = transport
            self._connect_error = error
            self.note_unreachable(error)
            raise
        if outage is not None and not self.check_mode:
            with contextlib.suppress(CertopsError):  # a stale record costs one bounded wait, no more
                self.store.forget_ca_outage(self._directory_url())
        if not state.exists:
            transport.close()
            if not self.check_mode:
                # What an earlier run remembered is gone (deactivated, another CA): the account
                # task asks the CA again next time.
                self.store.remember_account(transport.directory_url, self.account_key.thumbprint, None, [])
            raise CertopsError(f"no ACME account exists for this key at {transport.directory_url}; "
                               "create it first with certops.acme.account (state: present)")
        self.account_url = state.url
        if not self.check_mode and state.url:
            # Orders have used this account through this store: the account task may answer
            # from here when nothing is due (zero requests to the CA).
            self.store.remember_account(transport.directory_url, self.account_key.thumbprint, state.url,
                                        list(state.contact or []))
        return transport

    def _directory_url(self) -> str:
        """The CA's directory URL (given, or the connection's; a connection made to learn it is
        kept for the requests that follow)."""
        if not self.directory:
            transport = self.transport or self._plain
            if transport is None:
                transport = self._plain = self._transport_factory()
            self.directory = transport.directory_url
        return self.directory

    def remembered_outage(self) -> Optional[outages.CaOutage]:
        """The CA's outage record (read once per batch, and only when the CA is needed)."""
        if not self._outage_read:
            self._outage_read = True
            with contextlib.suppress(CertopsError):  # an unreadable record never keeps a CA from being asked
                self._outage = outages.remembered(self.store, self._directory_url())
        return self._outage

    def note_unreachable(self, error: CertopsError) -> None:
        """Remember that the CA could not be reached (not in check mode, once per batch)."""
        if self.check_mode or self._noted:
            return
        self._noted = True
        with contextlib.suppress(CertopsError):
            self._outage = outages.record_failure(self.store, self._directory_url(), str(error), self.now())

    def unauthenticated(self) -> AcmeTransport:
        """A connection for requests that need no account (directory, renewalInfo)."""
        with self._lock:
            if self.transport is not None:
                return self.transport
            if self._plain is None:
                self._plain = self._transport_factory()
            return self._plain

    def request_counts(self) -> dict[str, int]:
        """Requests sent to the CA so far, by kind."""
        counts: dict[str, int] = {}
        for transport in (self.transport, self._plain):
            if transport is not None:
                for kind, count in transport.requests.items():
                    counts[kind] = counts.get(kind, 0) + count
        return counts

    def close(self) -> None:
        for transport in (self.transport, self._plain):
            if transport is not None:
                transport.close()
