"""One options layer for every ACME-speaking action plugin.

The argument specs here are the single source of truth for the options that
``plugins/doc_fragments/acme.py`` documents; ``account`` and ``certificate`` both use them, so
``module_defaults: {group/certops.acme.acme: ...}`` sets them once for all.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

from .._store_options import store_options
from .ca.account import AccountKey, load_account_key
from .crypto import generate_private_key, load_private_key, private_key_pem
from .errors import InputError
from .store import CertificateStore
from .store.files import ENV_STORE_PATH, FileStore, default_store_path
from .ca.transport import AcmeTransport


def _comma_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class EnvironmentFallback:
    """An environment variable that stands in for an option a task leaves unset (None or ""):
    ``group`` "task" is an option of the task, "dns_rfc2136" a key of that option, "store" a
    store option. A value the task gives always wins."""

    group: str
    option: str
    variable: str
    parse: Callable[[str], Any] = str
    #: Masked in everything a task returns (_acme/masking.py).
    secret: bool = False


#: Every environment variable the collection reads, in one table. This is how AWX credential
#: types (docs/awx/credential-types/) hand secrets to a job without putting them in inventory or
#: extra vars; a unit test holds the credential types and the docs to it.
ENVIRONMENT: tuple[EnvironmentFallback, ...] = (
    EnvironmentFallback("task", "acme_directory", "CERTOPS_ACME_DIRECTORY"),
    EnvironmentFallback("task", "account_key_content", "CERTOPS_ACME_ACCOUNT_KEY", secret=True),
    # A path to the account key, as an AWX credential's file injector gives it: a job in a
    # container gets its environment through podman's --env-file, which keeps only the first
    # line of a value, so a PEM key cannot travel in CERTOPS_ACME_ACCOUNT_KEY there.
    EnvironmentFallback("task", "account_key_src", "CERTOPS_ACME_ACCOUNT_KEY_FILE"),
    EnvironmentFallback("task", "account_key_passphrase", "CERTOPS_ACME_ACCOUNT_KEY_PASSPHRASE", secret=True),
    EnvironmentFallback("task", "account_key_in_store", "CERTOPS_ACME_ACCOUNT_KEY_IN_STORE", _flag),
    EnvironmentFallback("task", "eab_kid", "CERTOPS_ACME_EAB_KID"),
    EnvironmentFallback("task", "eab_hmac_key", "CERTOPS_ACME_EAB_HMAC_KEY", secret=True),
    EnvironmentFallback("dns_rfc2136", "server", "CERTOPS_DNS_RFC2136_SERVER"),
    EnvironmentFallback("dns_rfc2136", "port", "CERTOPS_DNS_RFC2136_PORT"),
    EnvironmentFallback("dns_rfc2136", "key_name", "CERTOPS_DNS_RFC2136_KEY_NAME"),
    EnvironmentFallback("dns_rfc2136", "key_secret", "CERTOPS_DNS_RFC2136_KEY_SECRET", secret=True),
    EnvironmentFallback("dns_rfc2136", "key_algorithm", "CERTOPS_DNS_RFC2136_KEY_ALGORITHM"),
    # The usual Vault client variables (so an AWX HashiCorp Vault credential, or a shell with
    # `bao login`, just works), and ours.
    EnvironmentFallback("store", "store", "CERTOPS_ACME_STORE_BACKEND"),
    EnvironmentFallback("store", "store_path", ENV_STORE_PATH),
    EnvironmentFallback("store", "vault_url", "VAULT_ADDR", _comma_list),
    EnvironmentFallback("store", "vault_token", "VAULT_TOKEN", secret=True),
    EnvironmentFallback("store", "vault_namespace", "VAULT_NAMESPACE"),
    EnvironmentFallback("store", "vault_ca_cert", "VAULT_CACERT"),
    EnvironmentFallback("store", "vault_role_id", "CERTOPS_VAULT_ROLE_ID"),
    EnvironmentFallback("store", "vault_secret_id", "CERTOPS_VAULT_SECRET_ID", secret=True),
    EnvironmentFallback("store", "vault_mount", "CERTOPS_VAULT_MOUNT"),
    EnvironmentFallback("store", "vault_prefix", "CERTOPS_VAULT_PREFIX"),
)


def _unset(value: Any) -> bool:
    return value is None or value == "" or value == []


def environment_variables(group: str) -> dict[str, str]:
    """option -> variable, for one group of the table."""
    return {f.option: f.variable for f in ENVIRONMENT if f.group == group}


def from_environment(group: str, given: dict[str, Any], environ: Optional[dict[str, str]] = None,
                     only: Optional[Any] = None) -> dict[str, Any]:
    """``given`` with each option of ``group`` it leaves unset (None, "" or []) taken from the
    environment, parsed; with ``only``, just the options ``given`` has (a plugin's own)."""
    environ = dict(os.environ) if environ is None else environ
    filled = dict(given)
    for fallback in ENVIRONMENT:
        if fallback.group != group or (only is not None and fallback.option not in only):
            continue
        if _unset(filled.get(fallback.option)) and environ.get(fallback.variable):
            filled[fallback.option] = fallback.parse(environ[fallback.variable])
    return filled


#: The table's variables by option, for messages and tests.
ENVIRONMENT_FALLBACKS = environment_variables("task")
RFC2136_ENVIRONMENT = environment_variables("dns_rfc2136")
STORE_ENVIRONMENT = environment_variables("store")
ENV_ACCOUNT_KEY_FILE = ENVIRONMENT_FALLBACKS["account_key_src"]
ENV_ACCOUNT_KEY_IN_STORE = ENVIRONMENT_FALLBACKS["account_key_in_store"]

CONNECTION_SPEC: dict[str, dict[str, Any]] = {
    # Required, but it may come from $CERTOPS_ACME_DIRECTORY: build_transport checks it. A URL,
    # or a list of CAs in order of preference (ca_entries checks it).
    "acme_directory": {"type": "raw"},
    "validate_certs": {"type": "bool", "default": True},
    "ca_path": {"type": "path"},
    "request_timeout": {"type": "int", "default": 30},
}

ACCOUNT_KEY_SPEC: dict[str, dict[str, Any]] = {
    "account_key_in_store": {"type": "bool"},
    "account_key_src": {"type": "path", "aliases": ["account_key_path"]},
    "account_key_content": {"type": "str", "no_log": True},
    "account_key_passphrase": {"type": "str", "no_log": True},
}

STORE_SPEC: dict[str, dict[str, Any]] = store_options()

#: Environment variables for store options a task leaves unset: the usual Vault client ones
#: (so an AWX HashiCorp Vault credential, or a shell with `bao login`, just works) and ours.
STORE_ENVIRONMENT = {
    "store": "CERTOPS_ACME_STORE_BACKEND",
    "vault_url": "VAULT_ADDR",
    "vault_token": "VAULT_TOKEN",
    "vault_namespace": "VAULT_NAMESPACE",
    "vault_ca_cert": "VAULT_CACERT",
    "vault_role_id": "CERTOPS_VAULT_ROLE_ID",
    "vault_secret_id": "CERTOPS_VAULT_SECRET_ID",
    "vault_mount": "CERTOPS_VAULT_MOUNT",
    "vault_prefix": "CERTOPS_VAULT_PREFIX",
}
STORE_BACKENDS = ("file", "vault")
_VAULT_URL = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+/?")
_VAULT_PATH = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*")


def merged_spec(*parts: dict[str, dict[str, Any]], **extra: dict[str, Any]) -> dict[str, dict[str, Any]]:
    spec: dict[str, dict[str, Any]] = {}
    for part in parts:
        spec.update({k: dict(v) for k, v in part.items()})
    spec.update(extra)
    return spec


def apply_environment(args: dict[str, Any], environ: Optional[dict[str, str]] = None) -> dict[str, Any]:
    """``args`` with the options this plugin has but the task left empty taken from the
    environment (the table's "task" group). A key given by the task keeps the environment's
    keys out, so the two never conflict; with no key from the task,
    $CERTOPS_ACME_ACCOUNT_KEY (the key itself) comes before $CERTOPS_ACME_ACCOUNT_KEY_FILE.
    ``account_key_in_store`` is read where it is decided (account_key_in_store)."""
    environ = dict(os.environ) if environ is None else environ
    key_given = bool(args.get("account_key_src") or args.get("account_key_content"))
    own = set(args) - {"account_key_in_store", "account_key_src"}
    if args.get("account_key_src"):
        own -= {"account_key_content", "account_key_passphrase"}
    filled = from_environment("task", args, environ, only=own)
    if "account_key_src" in args and not key_given and not filled.get("account_key_content"):
        filled = from_environment("task", filled, environ, only={"account_key_src"})
    return filled


def rfc2136_settings(given: Optional[dict[str, Any]], environ: Optional[dict[str, str]] = None) -> dict[str, Any]:
    """The TSIG update settings: the task's ``dns_rfc2136`` keys, else the environment's."""
    environ = dict(os.environ) if environ is None else environ
    settings = from_environment("dns_rfc2136", {}, environ)
    settings = {"port": 53, "key_algorithm": "hmac-sha256", "zone": None, **settings}
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
    if isinstance(directory, list):
        raise InputError("acme_directory", "this operation talks to one CA, not a list",
                         "give the one URL (internal: use options.ca_entries for lists)")
    if not directory:
        raise InputError("acme_directory", "is required",
                         f"set it in the task (module_defaults) or in ${ENVIRONMENT_FALLBACKS['acme_directory']}, "
                         "e.g. https://acme-v02.api.letsencrypt.org/directory")
    if not directory.startswith(("https://", "http://")):
        raise InputError("acme_directory", f"{directory!r} is not a URL",
                         "e.g. https://acme-v02.api.letsencrypt.org/directory")
    return str(directory)


#: What an entry of an ``acme_directory`` list may set for its CA (the rest comes from the task).
CA_ENTRY_KEYS = ("directory", "account_key_src", "account_key_content", "account_key_passphrase",
                 "eab_kid", "eab_hmac_key", "ca_path", "validate_certs")
_ACCOUNT_KEY_OPTIONS = ("account_key_src", "account_key_content", "account_key_passphrase", "account_key_in_store")


def ca_entries(args: dict[str, Any]) -> list[dict[str, Any]]:
    """The task's options once per CA, in order of preference: ``acme_directory`` is a URL (one
    CA), or a list of URLs or mappings (CA_ENTRY_KEYS) whose settings replace the task's for
    that CA (an entry naming an account key replaces the task's key options entirely).

    External account binding is issued by one CA for that CA alone: the task's (or the
    environment's) ``eab_kid``/``eab_hmac_key`` go to the first CA of a list only; any other CA
    gets a binding only from its own entry, never another CA's key id."""
    raw = args.get("acme_directory")
    if not isinstance(raw, list):
        if raw is not None and not isinstance(raw, str):
            raise InputError("acme_directory", f"expected a URL or a list of CAs, got {type(raw).__name__}",
                             "e.g. https://acme-v02.api.letsencrypt.org/directory")
        directory_url(args)
        return [args]
    if not raw:
        raise InputError("acme_directory", "is an empty list", "name at least one CA")
    entries: list[dict[str, Any]] = []
    for index, entry in enumerate(raw):
        where = f"acme_directory[{index}]"
        if isinstance(entry, str):
            entry = {"directory": entry}
        if not isinstance(entry, dict):
            raise InputError(where, f"expected a URL or a mapping, got {type(entry).__name__}",
                             "e.g. {directory: https://ca.example/directory, account_key_src: /path/key.pem}")
        unknown = sorted(str(k) for k in entry if k not in CA_ENTRY_KEYS)
        if unknown:
            raise InputError(where, f"unknown key(s) {', '.join(unknown)}", f"allowed: {', '.join(CA_ENTRY_KEYS)}")
        merged = dict(args)
        if index > 0:
            merged.update(eab_kid=None, eab_hmac_key=None)
        if entry.get("account_key_src") or entry.get("account_key_content"):
            merged.update({k: None for k in _ACCOUNT_KEY_OPTIONS})
        merged.update({k: v for k, v in entry.items() if k != "directory" and v is not None})
        if isinstance(merged.get("account_key_src"), str):
            merged["account_key_src"] = os.path.expanduser(merged["account_key_src"])
        merged["acme_directory"] = entry.get("directory")
        try:
            url = directory_url(merged)
        except InputError as error:
            raise InputError(f"{where}.directory", str(error).split(": ", 1)[1]) from None
        if any(e["acme_directory"] == url for e in entries):
            raise InputError(where, f"{url} is listed twice", "list each CA once")
        entries.append(merged)
    return entries


def build_transport(args: dict[str, Any], pool_size: int = 4) -> AcmeTransport:
    directory = directory_url(args)
    return AcmeTransport(directory, verify=verify_setting(args),
                         timeout=float(args.get("request_timeout") or 30), pool_size=pool_size)


def account_key_in_store(args: dict[str, Any], environ: Optional[dict[str, str]] = None) -> bool:
    """Whether the account key lives in the store: the task's ``account_key_in_store``, else
    ``$CERTOPS_ACME_ACCOUNT_KEY_IN_STORE`` (the shared store's AWX credential sets it)."""
    environ = dict(os.environ) if environ is None else environ
    value = from_environment("task", {"account_key_in_store": args.get("account_key_in_store")}, environ,
                             only={"account_key_in_store"})["account_key_in_store"]
    if value and (args.get("account_key_src") or args.get("account_key_content")):
        raise InputError("account_key_in_store", "cannot be combined with account_key_src or account_key_content",
                         "keep the account key in one place")
    return bool(value)


def build_account_key(args: dict[str, Any], create: bool = False,
                      store: Optional[CertificateStore] = None) -> tuple[AccountKey, bool]:
    """The account key the task names: from a path or content, or kept in the store. ``create``
    makes it when missing (the account task's ``account_key_create``). Returns (key, created)."""
    if store is not None and account_key_in_store(args):
        pem = store.account_key_pem()
        created = False
        if pem is None:
            if not create:
                raise InputError("account_key_in_store", f"the store ({store.describe()}) holds no account key yet",
                                 "create it once with certops.acme.account (account_key_create: true, "
                                 "account_key_in_store: true)")
            fresh = private_key_pem(generate_private_key("ec256"))
            pem = store.keep_account_key(fresh)
            created = pem == fresh
        return AccountKey.from_key(load_private_key(pem, "the store's account key")), created
    return load_account_key(args.get("account_key_src"), args.get("account_key_content"),
                            args.get("account_key_passphrase"), create=create)


def store_settings(args: dict[str, Any], environ: Optional[dict[str, str]] = None) -> dict[str, Any]:
    """The store options with the environment's values for those the task left unset, checked."""
    environ = dict(os.environ) if environ is None else environ
    # store_path's variable is read where the file store picks its default (default_store_path).
    settings = from_environment("store", args, environ, only=set(STORE_ENVIRONMENT) - {"store_path"})
    backend = settings.get("store") or "file"
    if backend not in STORE_BACKENDS:
        raise InputError("store", f"{backend!r} is not a store backend",
                         f"use one of {', '.join(STORE_BACKENDS)} (or set ${STORE_ENVIRONMENT['store']})")
    settings["store"] = backend
    if backend == "vault":
        urls = settings.get("vault_url") or []
        if not urls:
            raise InputError("vault_url", "is required with store: vault",
                             f"give the address of every node, e.g. [https://vault1:8200, https://vault2:8200], "
                             f"or set ${STORE_ENVIRONMENT['vault_url']}")
        for index, url in enumerate(urls):
            if not isinstance(url, str) or not _VAULT_URL.fullmatch(url):
                raise InputError(f"vault_url[{index}]", f"{url!r} is not a Vault address",
                                 "write it as https://HOST:PORT")
        for option, default in (("vault_mount", "secret"), ("vault_prefix", "certops-acme")):
            value = settings.get(option) or default
            if not _VAULT_PATH.fullmatch(value):
                raise InputError(option, f"{value!r} is not a usable KV path",
                                 "use letters, digits, '.', '_' and '-', parts separated by '/'")
            settings[option] = value
        if int(settings.get("vault_lock_lease") or 60) < 2:
            raise InputError("vault_lock_lease", "must be at least 2 seconds", "60 suits most runs")
    return settings


def build_store(args: dict[str, Any], check_mode: bool = False) -> CertificateStore:
    """The store the task names; in check mode it is only read (nothing is created)."""
    settings = store_settings(args)
    if settings["store"] == "vault":
        from .store.vault import VaultStore  # hvac is needed only for this backend
        verify: Union[bool, str] = bool(settings.get("vault_validate_certs", True))
        if verify and settings.get("vault_ca_cert"):
            if not os.path.exists(settings["vault_ca_cert"]):
                raise InputError("vault_ca_cert", f"{settings['vault_ca_cert']} does not exist",
                                 "give the PEM bundle that signs the Vault servers' certificates")
            verify = settings["vault_ca_cert"]
        return VaultStore(settings["vault_url"], token=settings.get("vault_token"),
                          role_id=settings.get("vault_role_id"), secret_id=settings.get("vault_secret_id"),
                          namespace=settings.get("vault_namespace"), mount=settings["vault_mount"],
                          prefix=settings["vault_prefix"], verify=verify,
                          timeout=float(settings.get("vault_timeout") or 30),
                          lock_lease=float(settings.get("vault_lock_lease") or 60), read_only=check_mode)
    path: Optional[str] = settings.get("store_path") or default_store_path()
    return FileStore(path or "", create=not check_mode)
