"""One masking mechanism for every secret a task may hold, whatever route it came by.

Ansible masks a module's ``no_log`` arguments in what the module returns; an action plugin's
results get no such pass, and our secrets also arrive by routes Ansible never sees: environment
variables (AWX credential types), credentials written into a URL, and libraries that put what
they were given into their exceptions. ``secret_values`` gathers them all from one task;
``masked`` replaces each wherever it appears in the result (messages, warnings, nested values),
as Ansible's own ``remove_values`` does for modules.
"""

from __future__ import annotations

import os
import re
from typing import Any, Iterable, Optional
from urllib.parse import urlsplit

from .options import ENVIRONMENT

#: Shorter values are not masked: replacing "root" or "1234" everywhere would garble the
#: output and hide nothing worth hiding.
MIN_SECRET = 6
#: Environment variables of dns-lexicon's providers that hold credentials (LEXICON_<PROVIDER>_*).
_LEXICON_SECRET = re.compile(r"^LEXICON_[A-Z0-9]+_[A-Z0-9_]*(TOKEN|KEY|SECRET|PASSWORD|PASS|AUTH)[A-Z0-9_]*$")
#: Options whose values may be URLs with credentials in them (https://user:password@host/...).
_URL_OPTIONS = ("acme_directory", "vault_url")


#: Within a ``no_log`` mapping (provider settings), the keys that hold credentials; its other
#: values (a provider's name, a zone, a server) are not masked everywhere.
_SECRET_KEY = re.compile(r"(token|key|secret|password|pass|auth|credential)", re.IGNORECASE)


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def _secret_leaves(value: Any) -> Iterable[str]:
    """The credentials in a ``no_log`` value: all of a string or list, and in a mapping the
    values under credential-like keys, at any depth."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)):
                yield from _secret_leaves(item)
            elif _SECRET_KEY.search(str(key)):
                yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _secret_leaves(item)
    else:
        yield from _strings(value)


def _with_lines(value: str) -> list[str]:
    """A multi-line secret (a PEM key) and each of its lines: a line may appear on its own."""
    if "\n" not in value:
        return [value]
    return [value, *(line.strip() for line in value.splitlines() if not line.startswith("-----"))]


def _spec_secrets(args: dict[str, Any], spec: dict[str, dict[str, Any]]) -> Iterable[str]:
    for name, entry in spec.items():
        value = args.get(name)
        if value is None:
            continue
        if entry.get("no_log"):
            yield from _secret_leaves(value)
        elif entry.get("options"):
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, dict):
                    yield from _spec_secrets(item, entry["options"])


def _ca_entries(args: dict[str, Any]) -> list[dict[str, Any]]:
    """The mappings of an ``acme_directory`` list: each may carry its own account key and EAB
    (options.CA_ENTRY_KEYS, named as the task's options) and its URL under ``directory``."""
    raw = args.get("acme_directory")
    return [entry for entry in raw if isinstance(entry, dict)] if isinstance(raw, list) else []


def _url_passwords(args: dict[str, Any]) -> Iterable[str]:
    urls = [url for name in _URL_OPTIONS for url in _strings(args.get(name))]
    urls += [url for entry in _ca_entries(args) for url in _strings(entry.get("directory"))]
    for url in urls:
        try:
            password = urlsplit(url.strip()).password
        except ValueError:
            continue
        if password:
            yield password


def secret_values(args: dict[str, Any], spec: dict[str, dict[str, Any]],
                  environ: Optional[dict[str, str]] = None) -> set[str]:
    """Every secret of one task: its ``no_log`` options (nested ones, and those of each CA in an
    ``acme_directory`` list, too), the secret
    environment variables of options.ENVIRONMENT and dns-lexicon's credential variables, and
    passwords written into its URLs."""
    environ = dict(os.environ) if environ is None else environ
    found = list(_spec_secrets(args, spec)) + list(_url_passwords(args))
    found += [secret for entry in _ca_entries(args) for secret in _spec_secrets(entry, spec)]
    found += [environ[f.variable] for f in ENVIRONMENT if f.secret and environ.get(f.variable)]
    found += [value for name, value in environ.items() if _LEXICON_SECRET.match(name.upper())]
    return {piece for value in found for piece in _with_lines(value) if len(piece) >= MIN_SECRET}


def masked(result: dict[str, Any], secrets: set[str]) -> dict[str, Any]:
    """``result`` with every secret replaced by Ansible's mask wherever it appears."""
    if not secrets:
        return result
    from ansible.module_utils.common.parameters import remove_values  # pylint: disable=import-outside-toplevel
    return remove_values(result, secrets)
