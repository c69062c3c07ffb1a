"""dns-01 through dns-lexicon (PyPI ``dns-lexicon``), which speaks to 100+ DNS providers'
APIs behind one interface - the library certbot's DNS plugins build on. None is written here.

Each provider takes its own options (``auth_token``, ``pdns_server``...): from
``dns_lexicon.options``, else from lexicon's environment variables
(``LEXICON_<PROVIDER>_<OPTION>``, e.g. ``LEXICON_CLOUDFLARE_AUTH_TOKEN``), which is how an AWX
credential hands them over. Their values never appear in a message: lexicon's and the
provider API's errors are passed on with every option value masked.

The zone is ``dns_lexicon.zone`` when given, else found from the SOA of the record's name
(lexicon's own guess from the public suffix list is not used: it is wrong for delegated
sub-zones and for private suffixes).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
import sys
import threading
from typing import Any, Optional

from ..dns_lookup import Lookup
from ..errors import CertopsError, InputError

_PROVIDER_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MASK = "********"


def available_providers() -> list[str]:
    """The provider names the installed lexicon has."""
    try:
        providers = importlib.import_module("lexicon._private.providers")
    except ImportError:
        try:
            providers = importlib.import_module("lexicon.providers")
        except ImportError:
            return []
    return sorted(m.name for m in pkgutil.iter_modules(providers.__path__) if m.name not in ("base", "auto"))


def _require_lexicon() -> None:
    try:
        importlib.import_module("lexicon.client")
    except ImportError:
        raise InputError("dns_provider", "lexicon needs the Python package dns-lexicon on the controller",
                         f"install it with '{sys.executable} -m pip install dns-lexicon' (for AWX, add it to the "
                         "execution environment's Python requirements)") from None


#: The ``dns_lexicon`` option of the certificate task.
LEXICON_SPEC = {
    "provider": {"type": "str", "required": True},
    "options": {"type": "dict", "no_log": True},
    "zone": {"type": "str"},
}


class LexiconProvider:
    """A DnsProvider (dns01.py) over one lexicon provider; one lexicon client per zone."""

    def __init__(self, provider: str, options: Optional[dict[str, Any]] = None, zone: Optional[str] = None,
                 lookup: Optional[Lookup] = None) -> None:
        _require_lexicon()
        if not isinstance(provider, str) or not _PROVIDER_NAME.fullmatch(provider):
            raise InputError("dns_lexicon.provider", f"{str(provider)[:64]!r} is not a provider name",
                             "e.g. cloudflare, route53, powerdns, gandi")
        known = available_providers()
        if known and provider not in known:
            raise InputError("dns_lexicon.provider", f"lexicon has no provider {provider!r}",
                             f"it has: {', '.join(known)}")
        self.provider = provider
        self.options = {str(k): v for k, v in (options or {}).items() if v is not None}
        self.zone = zone.rstrip(".") + "." if zone else None
        self.lookup = lookup or Lookup()
        self._lock = threading.Lock()

    def _secrets(self) -> list[str]:
        """Every value lexicon may use as this provider's credentials: the task's options and the
        LEXICON_<PROVIDER>_* (and LEXICON_*) environment variables it reads too, as AWX's
        credential types pass them. Longest first, so no secret is left half masked."""
        values = [str(v) for v in self.options.values() if isinstance(v, (str, int))]
        prefix = "LEXICON_"
        values += [v for k, v in os.environ.items() if k.upper().startswith(prefix)]
        return sorted({v for v in values if len(v) >= 4}, key=len, reverse=True)

    def _masked(self, text: str) -> str:
        for value in self._secrets():
            text = text.replace(value, MASK)
        return text[:500]

    def _zone_of(self, record_name: str) -> str:
        return self.zone or self.lookup.zone_for(record_name)

    def _change(self, record_name: str, value: str, add: bool) -> None:
        from lexicon.client import Client  # pylint: disable=import-outside-toplevel
        from lexicon.config import ConfigResolver, DictConfigSource  # pylint: disable=import-outside-toplevel
        zone = self._zone_of(record_name).rstrip(".")
        config = ConfigResolver().with_dict({"provider_name": self.provider, "domain": zone, "ttl": 60,
                                             self.provider: dict(self.options)}).with_env()
        what = "add" if add else "delete"
        try:
            with self._lock:  # providers keep per-client state; calls are few and short
                client = Client(config)
                # Client guesses the zone from the public suffix list; the zone found above wins.
                client.config.add_config_source(DictConfigSource({"domain": zone}), 0)
                with client as operations:
                    if add:
                        operations.create_record("TXT", record_name, value)
                    else:
                        operations.delete_record(None, "TXT", record_name, value)
        # A provider may raise anything (requests errors, its own classes, ValueError...).
        except Exception as error:  # pylint: disable=broad-except
            raise CertopsError(
                f"dns-01 via lexicon provider {self.provider}: cannot {what} the TXT record {record_name} in zone "
                f"{zone}: {self._masked(f'{type(error).__name__}: {error}')}"
                f"{self._option_hint(error)}") from None

    def _option_hint(self, error: Exception) -> str:
        """For errors that look like a missing option: the provider's option names."""
        text = str(error).lower()
        if not any(word in text for word in ("not defined", "missing", "required", "auth", "token", "credential")):
            return ""
        names = provider_options(self.provider)
        if not names:
            return ""
        return (f" (the {self.provider} provider takes: {', '.join(names)}; give them in dns_lexicon.options or "
                f"as LEXICON_{self.provider.upper()}_<OPTION> environment variables)")

    def add_txt(self, record_name: str, value: str) -> None:
        self._change(record_name, value, add=True)

    def delete_txt(self, record_name: str, value: str) -> None:
        self._change(record_name, value, add=False)

    def authoritative_servers(self, record_name: str) -> list[tuple[str, int]]:
        return self.lookup.authoritative_servers(self._zone_of(record_name))


def provider_options(provider: str) -> list[str]:
    """The option names a lexicon provider declares (from its argument parser)."""
    import argparse  # pylint: disable=import-outside-toplevel
    for package in ("lexicon._private.providers", "lexicon.providers"):
        try:
            module = importlib.import_module(f"{package}.{provider}")
        except ImportError:
            continue
        parser = argparse.ArgumentParser(add_help=False)
        try:
            module.Provider.configure_parser(parser)
        except Exception:  # pylint: disable=broad-except
            return []
        return sorted(a.dest for a in parser._actions if a.dest)  # pylint: disable=protected-access
    return []
