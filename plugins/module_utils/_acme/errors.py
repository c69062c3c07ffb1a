"""Error types raised by the ACME engine; each carries a message a user can act on."""

from __future__ import annotations

from typing import Any, Optional


class CertopsError(Exception):
    """Base class: ``str(error)`` is the message shown to the user."""


class InputError(CertopsError):
    """Bad input from the playbook: names the field and how to fix it."""

    def __init__(self, field: str, problem: str, fix: str = "") -> None:
        self.field = field
        message = f"{field}: {problem}"
        if fix:
            message += f" ({fix})"
        super().__init__(message)


class StoreError(CertopsError):
    """The controller store could not be read, written or locked."""


class DamagedCertificate(StoreError):
    """The current version of a certificate in the store does not verify (its key does not fit,
    its chain does not link, a field is too large or not text): another writer changed it. It
    is never used or installed; a run orders a new one under the lock, and the damaged version
    stays in the store's history for inspection."""

    def __init__(self, message: str, name: str, version: Optional[str], reason: str) -> None:
        super().__init__(message)
        self.name = name
        self.version = version
        self.reason = reason


class LockLost(StoreError):
    """This run can no longer prove that it holds a certificate's lock: its lease lapsed, the
    lock names another run, or another writer stored the certificate after the lock was taken.
    Nothing irreversible (finalizing an order, storing a certificate) is done for it."""


class AcmeTransportError(CertopsError):
    """The ACME server could not be reached or answered something unusable."""


class AcmeDeadlineError(AcmeTransportError):
    """An operation did not finish within its deadline."""


class OrderError(CertopsError):
    """This certificate could not be issued; the message says which name and why."""


class ProfileRefused(OrderError):
    """The CA does not offer the profile this certificate needs (found before ordering)."""


class CaaForbidden(OrderError):
    """CAA records forbid this CA to issue for a name of the certificate."""


class PersistRecordMissing(CertopsError):
    """The name has no usable _validation-persist record: it must be published first."""


def _short(text: str, limit: int = 500) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + "…"


class AcmeProblem(CertopsError):
    """An RFC 7807 problem document from the CA (or the closest thing it sent).

    CAs in the wild send problems without ``type``, as bare strings, or as HTML; we keep
    whatever text they sent so the user sees the CA's own words.
    """

    PREFIX = "urn:ietf:params:acme:error:"

    def __init__(self, status: int, url: str, document: Any,
                 retry_after: Optional[float] = None) -> None:
        self.status = status
        self.url = url
        self.retry_after = retry_after
        self.type = ""
        self.detail = ""
        self.subproblems: list[dict[str, Any]] = []
        if isinstance(document, dict):
            self.type = str(document.get("type") or "")
            self.detail = _short(str(document.get("detail") or ""))
            subs = document.get("subproblems")
            if isinstance(subs, list):
                self.subproblems = [s for s in subs if isinstance(s, dict)]
        elif document is not None:
            self.detail = _short(str(document))
        super().__init__(self._message())

    @property
    def code(self) -> str:
        """The short ACME error code (``badNonce``, ``rateLimited``…), or ''."""
        return self.type[len(self.PREFIX):] if self.type.startswith(self.PREFIX) else ""

    def _message(self) -> str:
        what = self.code or self.type or f"HTTP {self.status}"
        message = f"ACME server refused {self.url} ({what}, HTTP {self.status})"
        if self.detail:
            message += f": {self.detail}"
        for sub in self.subproblems[:10]:
            ident = sub.get("identifier") or {}
            value = ident.get("value", "?") if isinstance(ident, dict) else "?"
            message += f"; {value}: {_short(str(sub.get('detail', '')), 200)}"
        if self.retry_after is not None:
            message += f" (server asks to retry after {int(self.retry_after)} s)"
        return message
