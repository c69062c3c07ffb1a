"""One CA as a batch uses it: the connection, and the account behind it.

A batch that keeps everything never reaches the CA. The first order looks the account up
(once, under a lock, for all worker threads); a CA that cannot be reached within
``connect_seconds`` fails every later order of the batch at once with the same error, so one
unreachable CA costs one timeout, not one per certificate. Requests that need no account (the
directory, renewalInfo) share a plain connection, which the account then takes over.
"""

from __future__ import annotations

import threading
from typing import Callable, Optional

from .account import AccountKey, find_account
from .errors import AcmeTransportError, CertopsError, InputError
from .store import CertificateStore
from .transport import AcmeTransport
from .waiting import Deadline


class CaClient:
    def __init__(self, store: CertificateStore, transport_factory: Callable[[], AcmeTransport],
                 account_key: Optional[AccountKey], check_mode: bool = False,
                 connect_seconds: Optional[float] = None) -> None:
        self.store = store
        self.account_key = account_key
        self.check_mode = check_mode
        self.connect_seconds = connect_seconds
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
        transport = self._plain or self._transport_factory()
        self._plain = None
        if self.connect_seconds is not None:
            deadline = Deadline(min(self.connect_seconds, deadline.remaining()),
                                f"reaching the ACME server at {transport.directory_url}")
        try:
            state = find_account(transport, self.account_key, deadline)
        except AcmeTransportError as error:
            self._plain = transport
            self._connect_error = error
            raise
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
