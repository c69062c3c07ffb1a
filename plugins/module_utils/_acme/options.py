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

#: Environment variables that stand in for options a task leaves unset. This is how AWX
#: credential types (docs/awx/credential-types/) hand secrets to a job without putting them in
#: inventory or extra vars. A value the task gives always wins.
ENVIRONMENT_FALLBACKS = {
    "acme_directory": "CERTOPS_ACME_DIRECTORY",
    "account_key_content": "CERTOPS_ACME_ACCOUNT_KEY",
    "account_key_passphrase": "CERTOPS_ACME_ACCOUNT_KEY_PASSPHRASE",
    "eab_kid": "CERTOPS_ACME_EAB_KID",
    "eab_hmac_key": "CERTOPS_ACME_EAB_HMAC_KEY",
}

#: The same for the keys of ``dns_rfc2136`` (the TSIG credential type).
RFC2136_ENVIRONMENT = {
    "server": "CERTOPS_DNS_RFC2136_SERVER",
    "port": "CERTOPS_DNS_RFC2136_PORT",
    "key_name": "CERTOPS_DNS_RFC2136_KEY_NAME",
    "key_secret": "CERTOPS_DNS_RFC2136_KEY_SECRET",
    "key_algorithm": "CERTOPS_DNS_RFC2136_KEY_ALGORITHM",
}

CONNECTION_SPEC: dict[str, dict[str, Any]] = {
    # Required, but it may come from $CERTOPS_ACME_DIRECTORY: build_transport checks it.
    "acme_directory": {"type": "str"},
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


def apply_environment(args: dict[str, Any], environ: Optional[dict[str, str]] = None) -> dict[str, Any]:
    """``args`` with the options this plugin has but the task left empty taken from the
    environment (ENVIRONMENT_FALLBACKS). An account key path given by the task keeps the
    environment's key content out, so the two never conflict."""
    environ = dict(os.environ) if environ is None else environ
    filled = dict(args)
    for option, variable in ENVIRONMENT_FALLBACKS.items():
        if option not in filled or filled[option] or not environ.get(variable):
            continue
        if option in ("account_key_content", "account_key_passphrase") and filled.get("account_key_src"):
            continue
        filled[option] = environ[variable]
    return filled


def rfc2136_settings(given: Optional[dict[str, Any]], environ: Optional[dict[str, str]] = None) -> dict[str, Any]:
    """The TSIG update settings: the task's ``dns_rfc2136`` keys, else the environment's."""
    environ = dict(os.environ) if environ is None else environ
    settings = {"port": 53, "key_algorithm": "hmac-sha256", "zone": None}
    for key, variable in RFC2136_ENVIRONMENT.items():
        if environ.get(variable):
            settings[key] = environ[variable]
    settings.update({k: v for k, v in (given or {}).items() if v not in (None, "")})
    for key in ("server", "key_name", "key_secret"):
        if not settings.get(key):
            raise InputError(f"dns_rfc2136.{key}", "is required with dns_provider: rfc2136",
                             f"set it in the task or in ${RFC2136_ENVIRONMENT[key]}")
    try:
        settings["port"] = int(settings["port"])
    except (TypeError, ValueError):
        raise InputError("dns_rfc2136.port", f"{settings['port']!r} is not a port number",
                         f"give an integer (task or ${RFC2136_ENVIRONMENT['port']})") from None
    return settings


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


def directory_url(args: dict[str, Any]) -> str:
    """The ACME directory URL the task names, checked."""
    directory = args.get("acme_directory") or ""
    if not directory:
        raise InputError("acme_directory", "is required",
                         f"set it in the task (module_defaults) or in ${ENVIRONMENT_FALLBACKS['acme_directory']}, "
                         "e.g. https://acme-v02.api.letsencrypt.org/directory")
    if not directory.startswith(("https://", "http://")):
        raise InputError("acme_directory", f"{directory!r} is not a URL",
                         "e.g. https://acme-v02.api.letsencrypt.org/directory")
    return str(directory)


def build_transport(args: dict[str, Any], pool_size: int = 4) -> AcmeTransport:
    directory = directory_url(args)
    return AcmeTransport(directory, verify=verify_setting(args),
                         timeout=float(args.get("request_timeout") or 30), pool_size=pool_size)


def build_account_key(args: dict[str, Any], create: bool = False) -> tuple[AccountKey, bool]:
    return load_account_key(args.get("account_key_src"), args.get("account_key_content"),
                            args.get("account_key_passphrase"), create=create)


def build_store(args: dict[str, Any], check_mode: bool = False) -> CertificateStore:
    """The store the task names; in check mode it is only read (nothing is created)."""
    path: Optional[str] = args.get("store_path") or default_store_path()
    return CertificateStore(path or "", create=not check_mode)
