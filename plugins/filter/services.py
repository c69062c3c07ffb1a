# -*- coding: utf-8 -*-
# Copyright: certops.acme contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt)
"""The services of a host that use its certificates (certops.acme.certificates role).

An entry of ``certops_certificates_list`` may say, besides what is ordered, where the host's
services serve it (``serve``: listeners, with the STARTTLS dialect of each), how the service
that uses it reloads (``reload``) and which extra files it wants (``formats``: PKCS#12, DER, a
combined PEM). Those are the host's own: two hosts that share a certificate
reload different daemons. So the entries are split here: what is ordered (the same on every
host, merged for the play) and what each host does with it. Every value reaches a command line
or a connection, so each is checked with an anchored pattern and fails naming the field.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.certops.acme.plugins.module_utils._starttls import PROTOCOLS

#: Keys of a certificate entry that belong to the host, not to the order.
HOST_KEYS = ("serve", "reload", "formats")
LISTENER_KEYS = frozenset({"port", "address", "starttls", "server_name"})
#: One word of a reload command: no shell syntax (the command runs without a shell).
_WORD = re.compile(r"\A[A-Za-z0-9_./:=@%+,-]{1,256}\Z")
_NAME = re.compile(r"\A(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]{0,252})\Z")
MAX_WORDS = 32
MAX_LISTENERS = 32


def _field(index: int, *path: Any) -> str:
    steps = "".join(".%s" % step if isinstance(step, str) else "[%d]" % step for step in path)
    return "certops_certificates_list[%d]%s" % (index, steps)


def certificate_specs(entries: Any) -> list[Any]:
    """The entries as the certificate task takes them: without the host's own keys."""
    return [{k: v for k, v in entry.items() if k not in HOST_KEYS} if isinstance(entry, dict) else entry
            for entry in entries or []]


def reload_command(value: Any, where: str) -> str:
    """A reload command as the command module runs it (split like a shell would, run without
    one), refused unless every word is plain."""
    words = value if isinstance(value, list) else (shlex.split(value) if isinstance(value, str) else None)
    if not words or len(words) > MAX_WORDS or not all(isinstance(w, str) and _WORD.match(w) for w in words):
        raise AnsibleFilterError(
            "%s: %r is not a command certops runs; give the program and its arguments (up to %d words of "
            "letters, digits and _./:=@%%+,-, no shell syntax), e.g. 'systemctl reload postfix'"
            % (where, value, MAX_WORDS))
    return " ".join(words)


def _listener(raw: Any, entry: dict[str, Any], where: str) -> dict[str, Any]:
    if not isinstance(raw, dict) or not set(raw) <= LISTENER_KEYS or "port" not in raw:
        raise AnsibleFilterError("%s: give a mapping with port and, optionally, address, starttls and server_name; "
                                 "got %r" % (where, raw))
    port = raw["port"]
    if isinstance(port, bool) or not isinstance(port, (int, str)) or not str(port).isdigit() \
            or not 0 < int(port) < 65536:
        raise AnsibleFilterError("%s.port: %r is not a TCP port (1-65535)" % (where, port))
    address = str(raw.get("address") or "127.0.0.1")
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise AnsibleFilterError("%s.address: %r is not an IP address; give the address the host's service listens "
                                 "on, as the host reaches it (127.0.0.1 for a wildcard bind)" % (where, address)) from None
    starttls = str(raw.get("starttls") or "none")
    if starttls not in PROTOCOLS:
        raise AnsibleFilterError("%s.starttls: %r is not one of %s" % (where, starttls, ", ".join(PROTOCOLS)))
    domains = [str(d) for d in entry.get("domains") or []]
    server_name = str(raw.get("server_name") or next((d for d in domains if not d.startswith("*.")),
                                                     domains[0] if domains else ""))
    if not _NAME.match(server_name):
        raise AnsibleFilterError("%s.server_name: %r is not a DNS name" % (where, server_name))
    return {"certificate": str(entry.get("name")), "server_name": server_name, "address": address,
            "port": int(port), "starttls": starttls}


def certificate_services(entries: Any) -> dict[str, Any]:
    """What the host does with its certificates: ``checks`` (one per listener, as the served
    module takes them) and ``reloads`` ({certificate: command})."""
    checks: list[dict[str, Any]] = []
    reloads: dict[str, str] = {}
    for index, entry in enumerate(entries or []):
        if not isinstance(entry, dict):
            continue  # the certificate task names what is wrong with it
        serve = entry.get("serve") or []
        if not isinstance(serve, list) or len(serve) > MAX_LISTENERS:
            raise AnsibleFilterError("%s: give a list of up to %d listeners" % (_field(index, "serve"), MAX_LISTENERS))
        checks.extend(_listener(raw, entry, _field(index, "serve", position)) for position, raw in enumerate(serve))
        if entry.get("reload"):
            reloads[str(entry.get("name"))] = reload_command(entry["reload"], _field(index, "reload"))
    return {"checks": checks, "reloads": reloads}


def reloads_for(reloads: Any, certificates: Any) -> list[str]:
    """The commands that reload the services of ``certificates``, each once, in a stable order."""
    wanted = set(certificates or [])
    return sorted({command for name, command in (reloads or {}).items() if name in wanted})


def with_formats(items: Any, entries: Any) -> list[Any]:
    """``items`` (names, or mappings with a name) as the install task takes them: each with the
    ``formats`` its entry in ``entries`` (this host's list) gives, if any. The formats are
    checked by the install task, which names the field."""
    formats = {str(e.get("name")): e["formats"] for e in entries or [] if isinstance(e, dict) and e.get("formats")}
    out: list[Any] = []
    for item in items or []:
        name = str(item.get("name")) if isinstance(item, dict) else str(item)
        if name in formats:
            out.append({**(item if isinstance(item, dict) else {"name": name}), "formats": formats[name]})
        else:
            out.append(item)
    return out


def command_error(result: Any) -> str:
    """One line saying which command failed and what it said (a registered command result)."""
    result = result if isinstance(result, dict) else {}
    command = result.get("cmd")
    command = " ".join(command) if isinstance(command, list) else str(command or result.get("item") or "?")
    said = str(result.get("stderr") or result.get("msg") or result.get("stdout") or "").strip().splitlines()
    return "%s (rc %s): %s" % (command[:200], result.get("rc", "?"), (said[-1] if said else "no output")[:300])


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"certificate_specs": certificate_specs, "certificate_services": certificate_services,
                "reloads_for": reloads_for, "command_error": command_error, "with_formats": with_formats}
