"""Checks of a certificate version read back from the store, as strict as those of what a CA
sends (orders._verified_chain): the store may be shared, and another writer may have changed
it. Used by store.CertificateStore for every backend.

A version passes when each field is ASCII text within MAX_FIELD_BYTES, its metadata is a
mapping, its certificate field holds exactly one certificate, the chain links the leaf to its
top (crypto.chain_problems: length, signatures, no loops) and, unless the key is kept
elsewhere, the key parses and fits the leaf.
"""

from __future__ import annotations

from typing import Any, Optional

try:
    from cryptography import x509
except ImportError:  # dependencies.require_controller_libraries() names what is missing
    pass

from ..crypto import chain_problems, load_private_key, public_key_matches, split_pem_chain
from ..errors import CertopsError

#: The most a stored field may hold (a leaf is about 2 KiB, a chain of 8 about 16, a key under 4,
#: the metadata a few): larger is another writer's mistake, or an attack on the controller.
MAX_FIELD_BYTES = 64 * 1024


def checked_version(name: str, key_pem: Any, cert_pem: Any, chain_pem: Any, meta: Any,
                    keyless: bool) -> tuple[Optional["x509.Certificate"], str]:
    """(the leaf, "") when the version verifies, else (None, why not). ``keyless``: a
    certificate whose key certops never held (csr_src, key_src), so there is no key to fit."""
    fields = {"certificate": cert_pem, "chain": chain_pem, "key": key_pem}
    for field, value in fields.items():
        if not isinstance(value, (str, bytes)) or not value.isascii():
            return None, f"its {field} is not ASCII text"
        if len(value) > MAX_FIELD_BYTES:
            return None, f"its {field} holds {len(value)} bytes, more than {MAX_FIELD_BYTES}"
    if not isinstance(meta, dict):
        return None, "its metadata is not a mapping"
    try:
        certs = split_pem_chain(cert_pem)
        chain = split_pem_chain(chain_pem) if chain_pem.strip() else []
    except (CertopsError, ValueError) as error:
        return None, f"its certificate or chain does not parse ({error})"
    if len(certs) != 1:
        return None, f"its certificate field holds {len(certs)} certificates, not one"
    problem = chain_problems(certs[0], chain)
    if problem:
        return None, f"its chain does not link: {problem}"
    if not keyless:
        try:
            key = load_private_key(key_pem, f"stored key of {name!r}")
        except (CertopsError, ValueError, TypeError):
            return None, "its key does not parse"
        if not public_key_matches(key, certs[0]):
            return None, "its key does not fit its certificate"
    return certs[0], ""


__all__ = ["MAX_FIELD_BYTES", "checked_version"]
