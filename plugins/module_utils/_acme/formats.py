"""Extra files a certificate is installed as, besides the PEM bundle: PKCS#12, DER, a combined PEM.

Java and Windows applications read PKCS#12 (``pkcs12``: the modern encryption by default,
AES-256-CBC with PBKDF2 and a SHA-256 MAC; ``encryption: legacy``, 3DES with SHA-1, for old Java
and Windows), some daemons a DER certificate (``der``) or one PEM with the key first, then the
certificate and its chain (``pem_combined``). They are built on the controller from the stored
certificate (targets stay standard-library only) and shipped with the bundle.

A PKCS#12 file is never the same twice (a fresh salt and IV each build), so what identifies an
extra file is its source: a digest of what it is built from and how (``source``). The host keeps
each source in its manifest (_bundle_formats.py); the controller computes the same digest without
building anything, and the bundle fingerprint both sides compare covers them. The passphrase
enters the source only through an HMAC keyed with the bundle's fingerprint.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any, Optional

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.serialization import pkcs12
except ImportError:  # dependencies.require_controller_libraries() names what is missing
    pass

from .. import _bundle_formats
from .crypto import load_private_key, split_pem_chain
from .errors import InputError

TYPES = ("pkcs12", "der", "pem_combined")
DEFAULT_FILES = {"pkcs12": "certificate.p12", "der": "cert.der", "pem_combined": "combined.pem"}
#: Files holding the private key get 0600 unless told otherwise; a DER certificate is public.
DEFAULT_MODES = {"pkcs12": 0o600, "der": 0o644, "pem_combined": 0o600}
ENCRYPTIONS = ("modern", "legacy")
KEYS = frozenset({"type", "file", "mode", "owner", "group", "passphrase", "encryption"})
MAX_FORMATS = 8
_MODE = re.compile(r"\A0?[0-7]{3}\Z")
_ACCOUNT = re.compile(r"\A([a-z_][a-z0-9_.-]{0,31}|[0-9]{1,10})\Z")
MAX_PASSPHRASE = 1024


@dataclass(frozen=True)
class ExtraFormat:
    type: str
    file: str
    mode: int
    owner: Optional[str] = None
    group: Optional[str] = None
    passphrase: str = ""
    encryption: str = "modern"

    def needs_key(self) -> bool:
        return self.type != "der"

    def source(self, fingerprint: str) -> str:
        """What this file is built from and how, as a digest (stable across builds)."""
        described = {"type": self.type, "file": self.file, "mode": self.mode, "owner": self.owner,
                     "group": self.group, "encryption": self.encryption if self.type == "pkcs12" else None,
                     "passphrase": hmac.new(fingerprint.encode("ascii"), self.passphrase.encode("utf-8"),
                                            hashlib.sha256).hexdigest() if self.passphrase else None,
                     "bundle": fingerprint}
        return "sha256:" + hashlib.sha256(json.dumps(described, sort_keys=True).encode("ascii")).hexdigest()

    def build(self, name: str, key_pem: bytes, cert_pem: str, chain_pem: str) -> bytes:
        leaf = x509.load_pem_x509_certificate(cert_pem.encode("ascii"))
        if self.type == "der":
            return leaf.public_bytes(serialization.Encoding.DER)
        if self.type == "pem_combined":
            return key_pem + cert_pem.encode("ascii") + chain_pem.encode("ascii")
        chain = split_pem_chain(chain_pem) if chain_pem.strip() else []
        return pkcs12.serialize_key_and_certificates(
            name.encode("utf-8"), load_private_key(key_pem, f"stored key of {name!r}"), leaf, chain or None,
            self._encryption())

    def _encryption(self) -> serialization.KeySerializationEncryption:
        builder = serialization.PrivateFormat.PKCS12.encryption_builder()
        if self.encryption == "legacy":
            builder = builder.key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC).hmac_hash(hashes.SHA1())
        else:
            builder = builder.key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC).hmac_hash(hashes.SHA256())
        return builder.build(self.passphrase.encode("utf-8"))


def parse_formats(raw: Any, where: str, owner: Optional[str] = None,
                  group: Optional[str] = None) -> list[ExtraFormat]:
    """A certificate's ``formats`` as given (``where`` names it in errors). An extra file without
    its own owner and group takes the task's (``owner``, ``group``)."""
    if raw in (None, []):
        return []
    if not isinstance(raw, list) or len(raw) > MAX_FORMATS:
        raise InputError(where, f"give a list of up to {MAX_FORMATS} formats", "e.g. [{type: pkcs12, passphrase: ...}]")
    parsed = [_one(item, f"{where}[{index}]", owner, group) for index, item in enumerate(raw)]
    files = [f.file for f in parsed]
    if len(set(files)) != len(files):
        raise InputError(where, f"names a file more than once ({', '.join(sorted({f for f in files if files.count(f) > 1}))})",
                         "give each format its own file")
    return parsed


def _one(item: Any, where: str, owner: Optional[str], group: Optional[str]) -> ExtraFormat:
    if not isinstance(item, dict) or not set(item) <= KEYS or item.get("type") not in TYPES:
        raise InputError(where, f"{_shown(item)} is not a format",
                         f"give a mapping with type ({', '.join(TYPES)}) and optionally {', '.join(sorted(KEYS - {'type'}))}")
    kind = item["type"]
    file = item.get("file") or DEFAULT_FILES[kind]
    if not _bundle_formats.usable_file_name(file):
        raise InputError(f"{where}.file", f"{file!r} is not a file name for it",
                         "give a plain name (letters, digits, ._-) that is not one of the bundle's own files")
    mode = item.get("mode")
    if mode is not None and not (isinstance(mode, str) and _MODE.match(mode)):
        raise InputError(f"{where}.mode", f"{mode!r} is not a file mode", "write it quoted in octal, e.g. '0640'")
    for field, value in (("owner", item.get("owner")), ("group", item.get("group"))):
        if value is not None and not (isinstance(value, str) and _ACCOUNT.match(value)):
            raise InputError(f"{where}.{field}", "is not a user or group name", "give a name or a numeric id")
    passphrase = item.get("passphrase")
    encryption = item.get("encryption") or "modern"
    if kind == "pkcs12":
        if not isinstance(passphrase, str) or not passphrase or len(passphrase) > MAX_PASSPHRASE:
            raise InputError(f"{where}.passphrase", "is required for pkcs12 (1 to 1024 characters)",
                             "give the passphrase the application opens the file with (from a vault)")
        if encryption not in ENCRYPTIONS:
            raise InputError(f"{where}.encryption", f"{encryption!r} is not one of {', '.join(ENCRYPTIONS)}",
                             "use modern (AES-256, PBKDF2), or legacy for Java before 8u301 and old Windows")
    elif passphrase is not None or item.get("encryption") is not None:
        raise InputError(where, f"passphrase and encryption apply to pkcs12 only, not {kind}", "drop them")
    return ExtraFormat(kind, file, int(mode, 8) if mode else DEFAULT_MODES[kind], item.get("owner") or owner,
                       item.get("group") or group, passphrase or "", encryption)


def _shown(item: Any) -> str:
    """An entry as an error shows it: without its passphrase."""
    if isinstance(item, dict):
        return repr({k: ("(hidden)" if k == "passphrase" else v) for k, v in item.items()})
    return repr(item)


def sources(formats: list[ExtraFormat], fingerprint: Optional[str]) -> dict[str, str]:
    return {f.file: f.source(fingerprint) for f in formats} if fingerprint else {}


def expected_fingerprint(fingerprint: Optional[str], formats: list[ExtraFormat]) -> Optional[str]:
    """The fingerprint a host holding this bundle with these extras reports."""
    return _bundle_formats.with_extras(fingerprint, sources(formats, fingerprint))


def shipped(name: str, formats: list[ExtraFormat], key_pem: bytes, cert_pem: str, chain_pem: str,
            fingerprint: str) -> dict[str, dict[str, Any]]:
    """The extra files as the install module takes them (with the keys: never logged)."""
    if not key_pem and any(f.needs_key() for f in formats):
        raise InputError("formats", f"certificate {name!r}: its key is kept elsewhere (csr_src, key_src), so "
                                    "only der can be built for it", "drop pkcs12 and pem_combined for it")
    return {f.file: {"data": base64.b64encode(f.build(name, key_pem, cert_pem, chain_pem)).decode("ascii"),
                     "mode": f.mode, "owner": f.owner, "group": f.group, "source": f.source(fingerprint)}
            for f in formats}


def passphrases(formats_by_name: dict[str, list[ExtraFormat]]) -> set[str]:
    return {f.passphrase for formats in formats_by_name.values() for f in formats if f.passphrase}
