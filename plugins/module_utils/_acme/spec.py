"""The certificate spec, written once: one entry of the ``certificates`` option.

The action plugin gives it to Ansible's argument validation as the ``options`` of the list,
so wrong types, unknown keys and bad choices are refused for the whole task before anything
happens; ``batch.parse_specs`` keeps only the checks of meaning (names, a wildcard with
http-01, webroot with another challenge), which fail one certificate. The role filters take
from a site exactly the keys a certificate has (``SITE_KEYS``). The module documentation
(plugins/modules/certificate.py) describes these same keys; a unit test holds the two equal.
"""

from __future__ import annotations

from typing import Any

from .crypto import KEY_TYPES

CHALLENGES = ("http-01", "dns-01", "tls-alpn-01", "dns-persist-01")

CERTIFICATE_OPTIONS: dict[str, dict[str, Any]] = {
    "name": {"type": "str", "required": True},
    "domains": {"type": "list", "elements": "str", "required": True},
    "key_type": {"type": "str", "choices": list(KEY_TYPES)},
    "challenge": {"type": "str", "choices": list(CHALLENGES)},
    "webroot": {"type": "path"},
    "renew_remaining_days": {"type": "float"},
    "renew_remaining_fraction": {"type": "float"},
    "force": {"type": "bool", "default": False},
    "reuse_key": {"type": "bool", "default": False},
    "profile": {"type": "str"},
    "preferred_chain": {"type": "str"},
    "dns": {"type": "str"},
    "csr_src": {"type": "path"},
    "key_src": {"type": "path"},
}

SPEC_KEYS = frozenset(CERTIFICATE_OPTIONS)

#: What a site of the edge and passthrough roles hands on to its certificate (its name and
#: domains are the site's own; force and webroot are the certificates role's business; a
#: proxy needs the key, which a csr_src/key_src certificate never ships).
SITE_KEYS = tuple(k for k in CERTIFICATE_OPTIONS
                  if k not in ("name", "domains", "force", "webroot", "csr_src", "key_src"))
