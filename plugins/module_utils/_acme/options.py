"""One options layer for every ACME-speaking action plugin.

The argument specs here are the single source of truth for the options that
``plugins/doc_fragments/acme.py`` documents; ``account`` and ``certificate`` both use them, so
``module_defaults: {group/certops.acme.acme: ...}`` sets them once for all.
"""

from __future__ import annotations

import os
from typing import Any, Optional, Union

from .account import AccountKey, load_account_key
from .errors import InputError
from .store import CertificateStore, default_store_path
from .transport import AcmeTransport

CONNECTION_SPEC: dict[str, dict[str, Any]] = {
    "acme_directory": {"type": "str", "required": True},
    "validate_certs": {"type": "bool", "default": True},
    "ca_path": {"type": "path"},
    "request_timeout": {"type": "int", "default": 30},
}

ACCOUNT_KEY_SPEC: dict[str, dict[str, Any]] = {
    "account_key_src": {"type": "path", "aliases": ["account_key_path"]},
    "account_key_content": {"type": "str", "no_log": True},
    "account_key_passphrase": {"type": "str", "no_log": True},
}

STORE_SPEC: dict[str, dict[str, Any]] = {
    "store_path": {"type": "path"},
}


def merged_spec(*parts: dict[str, dict[str, Any]], **extra: dict[str, Any]) -> dict[str, dict[str, Any]]:
    spec: dict[str, dict[str, Any]] = {}
    for part in parts:
        spec.update({k: dict(v) for k, v in part.items()})
    spec.update(extra)
    return spec


def verify_setting(args: dict[str, Any]) -> Union[bool, str]:
    """What ``requests`` gets as ``verify``: a CA bundle path, True, or False."""
    if not args.get("validate_certs", True):
        return False
    ca_path = args.get("ca_path")
    if ca_path:
        if not os.path.exists(ca_path):
            raise InputError("ca_path", f"{ca_path} does not exist",
                             "give the PEM bundle that signs the ACME server's HTTPS certificate")
        return ca_path
    return True


def build_transport(args: dict[str, Any], pool_size: int = 4) -> AcmeTransport:
    directory = args.get("acme_directory") or ""
    if not directory.startswith(("https://", "http://")):
        raise InputError("acme_directory", f"{directory!r} is not a URL",
                         "e.g. https://acme-v02.api.letsencrypt.org/directory")
    return AcmeTransport(directory, verify=verify_setting(args),
                         timeout=float(args.get("request_timeout") or 30), pool_size=pool_size)


def build_account_key(args: dict[str, Any], create: bool = False) -> tuple[AccountKey, bool]:
    return load_account_key(args.get("account_key_src"), args.get("account_key_content"),
                            args.get("account_key_passphrase"), create=create)


def build_store(args: dict[str, Any]) -> CertificateStore:
    path: Optional[str] = args.get("store_path") or default_store_path()
    return CertificateStore(path or "")
