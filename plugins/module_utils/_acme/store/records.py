"""What a store hands back and takes: a certificate version as stored and verified, a reading
that may be damaged, the fingerprint an installer compares, and the fence a save carries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from ... import _host_files
from ..crypto import CertificateFacts
from ..errors import DamagedCertificate


@dataclass(frozen=True)
class StoredCertificate:
    name: str
    key_pem: bytes
    cert_pem: str
    chain_pem: str
    meta: dict[str, Any]
    facts: CertificateFacts
    version: str
    #: The backend's own revision of the record read (a KV version), when it keeps one: a save
    #: fenced on this reading is first tried on exactly that revision, with no read before it.
    revision: Optional[int] = field(default=None, compare=False)

    @property
    def fullchain_pem(self) -> str:
        return self.cert_pem + self.chain_pem

    def files(self) -> dict[str, bytes]:
        """The file set every installer writes (_host_files.BUNDLE_FILES)."""
        return _host_files.bundle_files(self.cert_pem.encode("ascii"), self.chain_pem.encode("ascii"), self.key_pem)

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


@dataclass(frozen=True)
class Reading:
    """One certificate as read from the store: ``stored`` when its current version verifies,
    ``damaged`` when it does not, neither when there is none. ``fence`` is the version current
    either way, which a save replacing it must find."""

    stored: Optional[StoredCertificate] = None
    damaged: Optional[DamagedCertificate] = None

    @property
    def fence(self) -> Fence:
        if self.stored is not None:
            return Fence(self.stored.version, self.stored.revision)
        if self.damaged is not None:
            return Fence(self.damaged.version)
        return Fence(None, revision=0)  # nothing stored: a save may only create the record


@dataclass(frozen=True)
class StoredFingerprint:
    """What an installer needs to know of a stored certificate without loading it."""

    name: str
    fingerprint: str
    meta: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        """The public facts the metadata records (the same keys as StoredCertificate.summary)."""
        return {key: self.meta.get(key) for key in ("serial", "sha256", "not_after", "domains", "issuer")}


@dataclass(frozen=True)
class VersionData:
    """What a backend keeps for one version of a certificate."""

    key_pem: bytes
    cert_pem: str
    chain_pem: str
    meta: dict[str, Any]
    version: str
    #: The backend's revision of the record it was read from (StoredCertificate.revision).
    revision: Optional[int] = None


@dataclass(frozen=True)
class Fence:
    """The version of a certificate that was current when its lock was taken (None: there was
    none). A save carrying it lands only if that version is still current: another writer that
    stored meanwhile (one that took a lost lock over) is never overwritten."""

    version: Optional[str]
    #: The backend's revision of what was read (0: no record), if it keeps revisions. Only a hint
    #: for the first write attempt: on a conflict the save reads again and ``version`` decides.
    revision: Optional[int] = field(default=None, compare=False)
