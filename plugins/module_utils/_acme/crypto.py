"""Keys, CSRs and certificate facts, all through ``cryptography`` (controller only)."""

from __future__ import annotations

import base64
import datetime
import functools
import hashlib
import ipaddress
import re
import ssl
import warnings
from dataclasses import dataclass
from typing import Optional, Sequence, Union

try:
    from cryptography import x509
    from cryptography.x509 import verification
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.x509.oid import NameOID
except ImportError:  # dependencies.require_controller_libraries() names what is missing
    pass

from .errors import InputError
from .names import Identifier

PrivateKey = Union["ec.EllipticCurvePrivateKey", "rsa.RSAPrivateKey"]

#: Key types a certificate may ask for; the first is the default (ECDSA P-256).
KEY_TYPES = ("ec256", "ec384", "rsa2048", "rsa3072", "rsa4096")
DEFAULT_KEY_TYPE = "ec256"


def generate_private_key(key_type: str) -> PrivateKey:
    if key_type == "ec256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ec384":
        return ec.generate_private_key(ec.SECP384R1())
    if key_type in ("rsa2048", "rsa3072", "rsa4096"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[3:]))
    raise InputError("key_type", f"{key_type!r} is not supported", f"use one of {', '.join(KEY_TYPES)}")


def key_type_of(key: object) -> str:
    """The KEY_TYPES name of a private or public key ('' when we do not support it)."""
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return {"secp256r1": "ec256", "secp384r1": "ec384"}.get(key.curve.name, "")
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        size = key.key_size
        return f"rsa{size}" if size in (2048, 3072, 4096) else ""
    return ""


def private_key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_private_key(pem: Union[str, bytes], field: str = "private key",
                     passphrase: Optional[str] = None) -> PrivateKey:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_private_key(
            data, password=passphrase.encode() if passphrase else None)
    except TypeError as error:
        if "encrypted" in str(error).lower() or "password" in str(error).lower():
            raise InputError(field, "the key is protected by a passphrase and none was given",
                             "set the matching *_passphrase option") from None
        raise InputError(field, f"cannot be loaded: {error}") from None
    except ValueError:
        raise InputError(field, "is not a PEM private key we can read (or the passphrase is "
                                "wrong)", "give a PEM RSA or EC key") from None
    if isinstance(key, ed25519.Ed25519PrivateKey) or not key_type_of(key):
        raise InputError(field, f"key type {type(key).__name__} is not supported",
                         f"use one of {', '.join(KEY_TYPES)}")
    return key  # type: ignore[return-value]


def build_csr(key: PrivateKey, identifiers: Sequence[Identifier]) -> bytes:
    """DER CSR with every identifier in subjectAltName and the first DNS name as CN."""
    alt_names: list[x509.GeneralName] = []
    for ident in identifiers:
        if ident.type == "ip":
            alt_names.append(x509.IPAddress(ipaddress.ip_address(ident.value)))
        else:
            alt_names.append(x509.DNSName(ident.value))
    builder = x509.CertificateSigningRequestBuilder()
    first_dns = next((i.value for i in identifiers if i.type == "dns" and len(i.value) <= 64), None)
    if first_dns:
        builder = builder.subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, first_dns)]))
    else:
        builder = builder.subject_name(x509.Name([]))
    builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    csr = builder.sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.DER)


def split_pem_chain(pem: Union[str, bytes]) -> list[x509.Certificate]:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as error:
        raise InputError("certificate", f"not a PEM certificate chain: {error}") from None


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


@dataclass(frozen=True)
class CertificateFacts:
    """What the renewal decision and the results need to know about an issued certificate."""

    serial: str
    sha256: str
    not_before: datetime.datetime
    not_after: datetime.datetime
    identifiers: tuple[Identifier, ...]
    issuer: str
    key_type: str

    @property
    def lifetime(self) -> datetime.timedelta:
        return self.not_after - self.not_before

    def names(self) -> list[str]:
        return [i.value for i in self.identifiers]


def certificate_facts(cert: x509.Certificate) -> CertificateFacts:
    idents: list[Identifier] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        idents.extend(Identifier("dns", n.lower()) for n in san.get_values_for_type(x509.DNSName))
        idents.extend(Identifier("ip", ip.compressed) for ip in san.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        pass
    return CertificateFacts(
        serial=format(cert.serial_number, "x"),
        sha256=hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        identifiers=tuple(idents),
        issuer=cert.issuer.rfc4514_string(),
        key_type=key_type_of(cert.public_key()),
    )


def public_key_matches(key: object, cert: x509.Certificate) -> bool:
    """Whether ``cert`` is for ``key`` (a private key, or a public key such as a CSR's)."""
    def spki(public: object) -> bytes:
        return public.public_bytes(serialization.Encoding.DER,  # type: ignore[attr-defined]
                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    public = key.public_key() if hasattr(key, "public_key") else key
    return spki(public) == spki(cert.public_key())


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when ``issuer``'s key signed ``cert`` (a chain link, not a trust decision)."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


#: Public chains have one to three intermediates; anything much longer is not a chain to serve.
MAX_CHAIN_LENGTH = 8


def without_repeats(chain: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    """The chain with exact repeats dropped (first occurrence kept). Some CAs send their CA
    certificate twice (acme2certifier does); serving it twice helps nobody, refusing the
    certificate for it would help nobody either."""
    seen: set[bytes] = set()
    kept = []
    for cert in chain:
        der = cert.public_bytes(serialization.Encoding.DER)
        if der not in seen:
            seen.add(der)
            kept.append(cert)
    return kept


def chain_problems(leaf: x509.Certificate, chain: Sequence[x509.Certificate]) -> Optional[str]:
    """Check that the chain is of a sane length, each certificate is signed by the next one,
    nothing repeats and the top does not lead back into the chain (a loop of cross-signed
    CAs); return what is wrong, or None. Callers drop exact repeats first (without_repeats)."""
    if len(chain) > MAX_CHAIN_LENGTH:
        return f"the chain has {len(chain)} certificates; more than {MAX_CHAIN_LENGTH} is refused"
    links = [leaf, *chain]
    if len(without_repeats(links)) != len(links):
        return "a certificate appears twice in the chain (a loop)"
    for child, parent in zip(links, links[1:]):
        if not issued_by(child, parent):
            return (f"'{child.subject.rfc4514_string()}' is not signed by the next certificate "
                    f"'{parent.subject.rfc4514_string()}'")
    top = links[-1]
    if any(issued_by(top, lower) for lower in links[1:-1]):
        return f"'{top.subject.rfc4514_string()}' is signed by a certificate below it (a loop)"
    return None


def is_self_signed(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject and issued_by(cert, cert)


def verify_path(leaf: x509.Certificate, chain: Sequence[x509.Certificate],
                anchors: Sequence[x509.Certificate], identifier: Identifier,
                now: datetime.datetime) -> Optional[str]:
    """Verify ``leaf`` as a TLS server certificate for ``identifier`` through ``chain`` up to
    one of ``anchors`` (cryptography's RFC 5280 / CA/B Forum path validation, at ``now``).
    Returns what is wrong, or None."""
    if not anchors:
        return "no trust anchor is known to verify it against"
    if identifier.type == "ip":
        subject: verification.Subject = x509.IPAddress(ipaddress.ip_address(identifier.value))
    else:
        # A wildcard is checked through a name it covers.
        value = "certops-check." + identifier.value[2:] if identifier.is_wildcard else identifier.value
        subject = x509.DNSName(value)
    verifier = (verification.PolicyBuilder().store(verification.Store(list(anchors))).time(now)
                .max_chain_depth(MAX_CHAIN_LENGTH).build_server_verifier(subject))
    try:
        verifier.verify(leaf, list(chain))
    except verification.VerificationError as error:
        return f"does not verify to a trusted root: {error}"
    return None


_PEM_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----")


def load_pem_bundle(path: str) -> list[x509.Certificate]:
    """Every certificate in a PEM file; unparsable entries of a system bundle are skipped."""
    with open(path, "rb") as handle:
        data = handle.read()
    found = []
    with warnings.catch_warnings():
        # Old roots in system bundles trip cryptography's deprecation warnings (a serial that is
        # not positive, say); they say nothing about the certificates we verify.
        warnings.simplefilter("ignore")
        for block in _PEM_CERTIFICATE.findall(data):
            try:
                found.append(x509.load_pem_x509_certificate(block))
            except ValueError:
                continue
    return found


@functools.lru_cache(maxsize=1)
def system_trust() -> tuple[x509.Certificate, ...]:
    """The controller's trusted roots (OpenSSL's default bundle; certifi's when there is none)."""
    paths = [ssl.get_default_verify_paths().cafile or ""]
    try:
        import certifi  # requests depends on it
        paths.append(certifi.where())
    except ImportError:
        pass
    for path in paths:
        try:
            roots = load_pem_bundle(path) if path else []
        except OSError:
            continue
        if roots:
            return tuple(roots)
    return ()


def ari_cert_id(cert: x509.Certificate) -> str:
    """The certificate's ARI identifier (RFC 9773 §4.1): base64url of its Authority Key
    Identifier's keyIdentifier, a dot, and base64url of its serial number's DER content octets
    (with the leading zero a positive INTEGER needs when its top bit is set). Empty when the
    certificate has no AKI keyIdentifier: it cannot be asked about."""
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    except x509.ExtensionNotFound:
        return ""
    if not aki:
        return ""
    serial = cert.serial_number
    serial_bytes = serial.to_bytes((serial.bit_length() + 8) // 8, "big")
    return f"{_b64url(aki)}.{_b64url(serial_bytes)}"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _common_name(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else name.rfc4514_string()


def chain_root(leaf: x509.Certificate, chain: Sequence[x509.Certificate]) -> str:
    """The issuer of the chain's last certificate: the root the chain leads to."""
    return _common_name((chain[-1] if chain else leaf).issuer)


def chain_matches(chain: Sequence[x509.Certificate], preferred: str) -> bool:
    """Whether a chain leads to (or passes through) the CA named ``preferred`` - the common name
    of the issuer of its topmost certificate, or of any certificate in it, like certbot's
    --preferred-chain and lego's --preferred-chain."""
    if not chain:
        return False
    wanted = preferred.strip().lower()
    names = {_common_name(chain[-1].issuer).lower()} | {_common_name(c.subject).lower() for c in chain}
    return wanted in names


def order_key_pem(name: str, key_type: str, reuse_key: bool, stored_key_pem: Optional[bytes]) -> bytes:
    """The certificate key an order is made for: the stored one when it is to be reused and is
    of the wanted type, else a fresh one."""
    if reuse_key and stored_key_pem:
        key = load_private_key(stored_key_pem, f"stored key of {name!r}")
        if key_type_of(key) == key_type:
            return stored_key_pem
    return private_key_pem(generate_private_key(key_type))
