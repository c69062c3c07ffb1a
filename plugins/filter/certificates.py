# -*- coding: utf-8 -*-
# Copyright: certops.acme contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt)
"""Filters that turn role site lists into one certificate batch (issue once, install everywhere)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

import datetime
import re
import time

from ansible.errors import AnsibleFilterError

from ansible_collections.certops.acme.plugins.module_utils._acme.crypto import KEY_TYPES
from ansible_collections.certops.acme.plugins.module_utils._acme.errors import InputError
from ansible_collections.certops.acme.plugins.module_utils._acme.names import normalize_names
from ansible_collections.certops.acme.plugins.module_utils._acme.spec import SITE_KEYS
from ansible_collections.certops.acme.plugins.module_utils._acme.store import check_certificate_name


def sites_to_certificates(sites: Any) -> list[dict[str, Any]]:
    """The certificates the sites need: one per site, or one per key type of a site with
    ``key_types`` (the list checked_sites made; unchecked sites get their one)."""
    if not isinstance(sites, list):
        raise AnsibleFilterError("sites_to_certificates: expected a list of sites, got %s" % type(sites).__name__)
    certificates: list[dict[str, Any]] = []
    for index, site in enumerate(sites):
        if not isinstance(site, dict) or not site.get("name") or not site.get("domains"):
            raise AnsibleFilterError("sites[%d]: each site needs 'name' and 'domains'" % index)
        for served in site.get("certificates") or site_certificates(site):
            spec = {"name": served["name"], "domains": list(site["domains"])}
            spec.update({k: site[k] for k in SITE_KEYS if site.get(k) is not None})
            if served["key_type"]:
                spec["key_type"] = served["key_type"]
            certificates.append(spec)
    return merge_certificates(certificates)


def key_algorithm(key_type: str) -> str:
    """``ecdsa`` or ``rsa`` for a key type (what a client's offer picks between)."""
    return "ecdsa" if key_type.startswith("ec") else "rsa"


def site_certificates(site: dict[str, Any], where: str = "site") -> list[dict[str, Any]]:
    """The certificates one site is served with: its one certificate, or with ``key_types`` one
    per type, the first under the site's certificate name and the others under
    ``<name>-<key type>``. ``algorithm`` is set only where two are served side by side (the
    proxy picks by what the client offers, and a served check must ask for each)."""
    base = site.get("certificate") or site["name"]
    key_types = site.get("key_types")
    if key_types is None:
        return [{"name": base, "key_type": site.get("key_type") or "", "algorithm": ""}]
    if site.get("key_type") is not None:
        raise AnsibleFilterError("%s.key_types: give key_type or key_types, not both" % where)
    if (not isinstance(key_types, list) or not 1 <= len(key_types) <= 2
            or any(not isinstance(t, str) or t not in KEY_TYPES for t in key_types)):
        raise AnsibleFilterError("%s.key_types: %r must list one or two of %s, e.g. [ec256, rsa2048]"
                                 % (where, key_types, ", ".join(KEY_TYPES)))
    if len(key_types) == 2 and key_algorithm(key_types[0]) == key_algorithm(key_types[1]):
        raise AnsibleFilterError("%s.key_types: %r names two %s types; a proxy serves one ECDSA and one RSA "
                                 "certificate side by side, e.g. [ec256, rsa2048]"
                                 % (where, key_types, key_algorithm(key_types[0]).upper()))
    names = [base] + ["%s-%s" % (base, key_type) for key_type in key_types[1:]]
    for name in names[1:]:
        check_certificate_name(name, where + ".key_types")
    side_by_side = len(key_types) == 2
    return [{"name": name, "key_type": key_type, "algorithm": key_algorithm(key_type) if side_by_side else ""}
            for name, key_type in zip(names, key_types)]


_HOST_PORT = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?):([0-9]{1,5})")
# One configuration line: printable characters only (a newline would start a directive of its own).
_CONFIG_LINE = re.compile(r"[^\x00-\x1f\x7f]{1,1000}")
#: What an inventory value may look like where it is written into a proxy configuration.
SETTING_PATTERNS = {
    # '*', an IPv4 or IPv6 address (bare or bracketed), or a host name
    "bind_address": re.compile(r"\*|[0-9.]{7,15}|\[?[0-9A-Fa-f:.]{2,45}\]?|[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?"),
    "path": re.compile(r"/[A-Za-z0-9._/@%+=,:-]{0,4000}"),
    # nginx listen: a port, or address:port
    "listen": re.compile(r"([0-9.]{7,15}:|\[[0-9A-Fa-f:.]{2,45}\]:|\*:|[A-Za-z0-9.-]{1,253}:)?[0-9]{1,5}"),
    "host_port": _HOST_PORT,
    "inventory_hostname": re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,252}"),
    # pull delivery (the agent's configuration): a refresh interval, the store's address, a unit
    "duration": re.compile(r"[1-9][0-9]{0,6}[smh]"),
    "url": re.compile(r"https?://([A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])(:[0-9]{1,5})?/?"),
    "unit_name": re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,200}"),
    "mount": re.compile(r"[A-Za-z0-9._-]{1,100}(/[A-Za-z0-9._-]{1,100}){0,10}"),
}
_SETTING_FIXES = {
    "bind_address": "use '*', an IP address or a host name",
    "path": "use an absolute path of letters, digits and . _ / @ % + = , : -",
    "listen": "use a port or address:port",
    "host_port": "use host:port, e.g. 10.0.0.5:8080 or [2001:db8::5]:8080",
    "inventory_hostname": "use letters, digits, '.', '_' and '-' in host names that reach a configuration",
    "duration": "use a number with s, m or h, e.g. 5m",
    "url": "use https://host:port (or http://), e.g. https://bao.example.net:8200",
    "unit_name": "use letters, digits, '_', '.', '@' and '-'",
    "mount": "use path segments of letters, digits, '.', '_' or '-', e.g. approle",
}


def invalid_addresses(addresses: Any) -> list[str]:
    """The entries that are not ``host:port`` (IPv6 in brackets) with a port from 1 to 65535."""
    bad = []
    for address in addresses or []:
        match = _HOST_PORT.fullmatch(str(address))
        if not match or not 0 < int(match.group(3)) < 65536:
            bad.append(str(address))
    return bad


def setting_problems(settings: Any) -> list[str]:
    """Check inventory values that are written into proxy configurations: ``settings`` maps a
    variable name to ``[kind, value]`` (kinds: SETTING_PATTERNS). Returns one message per bad
    value, naming the variable and the fix."""
    problems = []
    for variable, (kind, value) in sorted((settings or {}).items()):
        if not SETTING_PATTERNS[kind].fullmatch(str(value)):
            problems.append("%s: %r cannot be written into the configuration; %s" % (variable, str(value),
                                                                                     _SETTING_FIXES[kind]))
    return problems


def checked_sites(sites: Any, variable: str) -> list[dict[str, Any]]:
    """The sites with every value that reaches a proxy configuration checked, and their domains
    in the form that is ordered and served (IDNA, lower case): a raw ``Bücher.Example`` would
    be ordered as ``xn--bcher-kva.example`` but never match the SNI a client sends. Raises an
    error naming ``variable[index].field`` and the fix."""
    if not isinstance(sites, list):
        raise AnsibleFilterError("%s: expected a list of sites, got %s" % (variable, type(sites).__name__))
    checked = []
    for index, site in enumerate(sites):
        where = "%s[%d]" % (variable, index)
        if not isinstance(site, dict) or not site.get("name") or not site.get("domains"):
            raise AnsibleFilterError("%s: each site needs 'name' and 'domains'" % where)
        try:
            check_certificate_name(site["name"], where + ".name")
            if site.get("certificate") is not None:
                check_certificate_name(site["certificate"], where + ".certificate")
            identifiers = normalize_names(site["domains"], where + ".domains")
        except InputError as error:
            raise AnsibleFilterError(str(error)) from None
        brought = [k for k in ("csr_src", "key_src") if site.get(k)]
        if brought:
            raise AnsibleFilterError(
                "%s (site %s).%s: a proxy serving this site needs its key, and a certificate for a key kept "
                "elsewhere never ships one. Drop %s (certops makes and installs the key), or order it with "
                "certops.acme.certificate and place the key yourself; nothing was changed"
                % (where, site["name"], brought[0], brought[0]))
        addresses = [i.value for i in identifiers if i.type == "ip"]
        if addresses:
            # Both layouts choose a certificate (or a backend) by SNI, and a client connecting to an
            # address sends none (RFC 6066 §3): such a site could never be served or routed.
            raise AnsibleFilterError(
                "%s (site %s).domains: %s %s an IP address; sites are told apart by SNI, which clients do not send "
                "for addresses. Order IP certificates with certops.acme.certificate (they get the shortlived "
                "profile) and install them with certops.acme.install; nothing was changed"
                % (where, site["name"], ", ".join(addresses), "is" if len(addresses) == 1 else "are"))
        domains = [i.value for i in identifiers]
        certificates = site_certificates(site, "%s (site %s)" % (where, site["name"]))
        for field in ("backends", "upstream"):
            values = site.get(field)
            if values is None:
                continue
            bad = invalid_addresses(values if isinstance(values, list) else [values])
            if bad:
                raise AnsibleFilterError(
                    "%s (site %s).%s: %s is not host:port (write e.g. 10.0.0.5:8080, app.internal:8080 or "
                    "[2001:db8::5]:8080); nothing was changed" % (where, site["name"], field, ", ".join(map(repr, bad))))
        for field in ("haproxy_options", "nginx_options"):
            for line_index, line in enumerate(site.get(field) or []):
                if not isinstance(line, str) or not _CONFIG_LINE.fullmatch(line):
                    raise AnsibleFilterError("%s.%s[%d]: %r is not one configuration line (no newlines or control "
                                             "characters; give each directive as its own list entry)"
                                             % (where, field, line_index, line))
        checked.append(dict(site, domains=domains, certificates=certificates))
    return checked


def merge_certificates(specs: Any) -> list[dict[str, Any]]:
    """Union of certificate specs by name; the same name with different content is an error,
    because one certificate cannot be two things on two hosts."""
    merged: dict[str, dict[str, Any]] = {}
    for spec in specs or []:
        if not isinstance(spec, dict) or "name" not in spec:
            raise AnsibleFilterError("merge_certificates: every entry needs a 'name'")
        name = spec["name"]
        if name in merged and merged[name] != spec:
            raise AnsibleFilterError(
                "certificate %r is defined twice with different settings (%r vs %r); give the "
                "sites the same domains and options, or different certificate names"
                % (name, merged[name], spec))
        merged[name] = spec
    return list(merged.values())


def passthrough_routes(backends: Any, sites_key: str, address_key: str) -> list[dict[str, Any]]:
    """SNI routes for passthrough proxies from the backends' host variables: each host's sites
    under ``sites_key`` and its address under ``address_key``.

    One route per site name, with every backend address serving it. A name that two
    different sites claim is an error: the proxy could not know where to send it.
    """
    routes: dict[str, dict[str, Any]] = {}
    owner_of: dict[str, str] = {}
    for host in backends or []:
        address = host.get(address_key)
        sites = checked_sites(host.get(sites_key) or [], "%s on %s" % (sites_key, host.get("inventory_hostname", "?")))
        for site in sites:
            if not address:
                raise AnsibleFilterError("%s serves %s but has no %s"
                                         % (host.get("inventory_hostname", "?"), site["name"], address_key))
            domains = sorted(site["domains"])
            route = routes.setdefault(site["name"], {"name": site["name"], "domains": domains, "servers": []})
            if route["domains"] != domains:
                raise AnsibleFilterError("site %r has different domains on different backends (%s vs %s)"
                                         % (site["name"], route["domains"], domains))
            if address not in route["servers"]:
                route["servers"].append(address)
            for domain in domains:
                if owner_of.setdefault(domain, site["name"]) != site["name"]:
                    raise AnsibleFilterError("%s is claimed by sites %r and %r; SNI routing needs one owner"
                                             % (domain, owner_of[domain], site["name"]))
    return list(routes.values())


def merge_stage_results(prepared: Any, completed: Any) -> dict[str, Any]:
    """One certificate result from stage prepare plus stage complete: each certificate keeps its
    prepare result unless it was left pending there, then it takes its complete result."""
    prepared = prepared or {}
    finals = {c["name"]: c for c in (completed or {}).get("certificates", [])}
    merged = [finals.get(c["name"], c) if c.get("action") == "pending" else c
              for c in prepared.get("certificates", [])]
    failed = [c for c in merged if c.get("action") in ("failed", "pending")]
    result = dict(prepared)
    result.update(certificates=merged, changed=any(c.get("changed") for c in merged), failed=bool(failed))
    # The earliest renewal point, not before the earliest time a stage gave (the prepare stage
    # said "now" while challenges were pending); after a failure, that time. UTC ISO strings.
    points = sorted(c["renew_at"] for c in merged if c.get("renew_at"))
    said = sorted(stage["next_run_due_by"] for stage in ((completed or {}), prepared) if stage.get("next_run_due_by"))
    if failed or not points:
        result["next_run_due_by"] = said[0] if failed and said else None
    else:
        result["next_run_due_by"] = max(points[0], said[0]) if said else points[0]
    if failed:
        result["msg"] = "%d of %d certificate(s) failed (%d stored or kept): %s" % (
            len(failed), len(merged), len(merged) - len(failed),
            "; ".join("%s: %s" % (c["name"], c.get("error") or "its challenges were never completed")
                      for c in failed))
    else:
        result.pop("msg", None)
    return result


def installable(wanted: Any, issued: Any) -> list[str]:
    """Names of the ``wanted`` certificates (specs or names) that the certificate task's result
    ``issued`` holds and did not fail or leave pending. A set lookup: a Jinja ``select('in', ...)``
    over the result of a large batch cost seconds per host."""
    usable = {c["name"] for c in (issued or {}).get("certificates") or []
              if c.get("action") not in ("failed", "pending")}
    names = [item["name"] if isinstance(item, Mapping) else item for item in wanted or []]
    return [name for name in names if name in usable]


def _label(value: Any) -> str:
    """A label value in the text exposition format (backslash, quote and newline escaped)."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _timestamp(iso: Any) -> Optional[float]:
    try:
        moment = datetime.datetime.fromisoformat(str(iso))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


#: (metric name, type, help) of what openmetrics writes, in order.
_METRICS = (
    ("certops_acme_certificate_expiry_timestamp_seconds", "gauge", "When the stored certificate expires."),
    ("certops_acme_certificate_days_left", "gauge", "Days of validity left."),
    ("certops_acme_certificate_failed", "gauge", "1 when this run could not issue or renew the certificate."),
    ("certops_acme_certificate_failures", "gauge", "Failed attempts in a row (0 when not failing)."),
    ("certops_acme_certificate_served", "gauge",
     "1 when every checked listener of this host serves the installed certificate, 0 when one does not."),
    ("certops_acme_certificate_run_action", "gauge", "What this run did with the certificate (label action)."),
    ("certops_acme_run_timestamp_seconds", "gauge", "When this run wrote the file."),
)


def openmetrics(status: Any, host: Any, served: Any = None, now: Any = None) -> str:
    """The status rows of the certificates ``host`` wants, in the Prometheus/OpenMetrics text
    format that node_exporter's textfile collector reads; ``served`` is the host's served checks."""
    rows = [row for row in status or [] if host in (row.get("hosts") or [])]
    served_rows: dict[str, list[str]] = {}
    for check in served or []:
        served_rows.setdefault(str(check.get("certificate")), []).append(str(check.get("state")))
    samples: dict[str, list[str]] = {name: [] for name, _type, _help in _METRICS}
    for row in rows:
        label = 'certificate="%s"' % _label(row["name"])
        expiry = _timestamp(row.get("not_after")) if row.get("not_after") else None
        if expiry is not None:
            samples["certops_acme_certificate_expiry_timestamp_seconds"].append("{%s} %d" % (label, expiry))
        if row.get("days_left") is not None:
            samples["certops_acme_certificate_days_left"].append("{%s} %s" % (label, float(row["days_left"])))
        samples["certops_acme_certificate_failed"].append(
            "{%s} %d" % (label, 1 if row.get("action") in ("failed", "pending") else 0))
        samples["certops_acme_certificate_failures"].append("{%s} %d" % (label, int(row.get("failures") or 0)))
        states = served_rows.get(row["name"])
        if states:
            samples["certops_acme_certificate_served"].append(
                "{%s} %d" % (label, 1 if all(state == "match" for state in states) else 0))
        samples["certops_acme_certificate_run_action"].append(
            '{%s,action="%s"} 1' % (label, _label(row.get("action") or "unknown")))
    moment = float(now) if now is not None else time.time()
    samples["certops_acme_run_timestamp_seconds"].append(" %d" % moment)
    lines = []
    for name, kind, text in _METRICS:
        lines += ["# HELP %s %s" % (name, text), "# TYPE %s %s" % (name, kind)]
        lines += [name + sample for sample in samples[name]]
    return "\n".join(lines + ["# EOF"]) + "\n"


def at_risk(status: Any, days: Any) -> list[str]:
    """Lines naming the certificates with fewer than ``days`` days left, or none stored (0 or
    less: none), for a run that fails so cron and AWX alert."""
    limit = float(days or 0)
    if limit <= 0:
        return []
    found = []
    for row in status or []:
        left = row.get("days_left")
        if left is None:
            found.append("%s: no certificate (%s)" % (row["name"], row.get("error") or row.get("action")))
        elif float(left) < limit:
            found.append("%s: %.1f days left, expires %s" % (row["name"], float(left), row.get("not_after")))
    return found


def _listener_address(address: str) -> str:
    """Where a host reaches its own listener bound to ``address``."""
    address = str(address).strip("[]")
    if address in ("*", "", "0.0.0.0"):
        return "127.0.0.1"
    if address == "::":
        return "::1"
    return address


def served_checks(sites: Any, ready: Any, address: Any, port: Any, proxy_protocol: bool = False) -> list[dict[str, Any]]:
    """One served-certificate check per name of every site whose certificate is installed
    (``ready``), against the listener at ``address``:``port`` (a wildcard bind is reached on
    loopback); ``proxy_protocol`` when the listener expects a PROXY header first."""
    checks = []
    for site in sites or []:
        for served in site.get("certificates") or site_certificates(site):
            if served["name"] not in (ready or []):
                continue
            for domain in site.get("domains") or []:
                checks.append({"certificate": served["name"], "server_name": str(domain),
                               "address": _listener_address(str(address)), "port": int(port),
                               "proxy_protocol": bool(proxy_protocol), "key_algorithm": served["algorithm"]})
    return checks


def split_listen(listen: Any) -> dict[str, Any]:
    """``address:port`` (or a bare port, or ``[v6]:port``) of an nginx ``listen`` value."""
    text = str(listen).strip()
    host, _sep, port = text.rpartition(":")
    if not port.isdigit() or not port.isascii():
        raise AnsibleFilterError("split_listen: %r is not address:port or a port" % text)
    return {"address": _listener_address(host), "port": int(port)}


def stale_message(entry: Any, host: Any) -> str:
    """One line naming a listener that does not serve the installed certificate."""
    where = "%s (SNI %s at %s:%s)" % (entry.get("certificate"), entry.get("server_name"),
                                      entry.get("address"), entry.get("port"))
    if entry.get("state") == "differs":
        return "%s: %s serves serial %s, but serial %s is installed" % (
            host, where, entry.get("served_serial"), entry.get("installed_serial"))
    return "%s: %s serves nothing usable (%s), installed serial %s" % (
        host, where, entry.get("error") or entry.get("state"), entry.get("installed_serial") or "-")


def _served_state(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "-"
    stale = sorted({r["host"] for r in rows if r.get("state") != "match"})
    return "yes" if not stale else "NO: " + ",".join(stale)


def certificate_status(certificates: Any, hosts: Any, wanted_key: str, served_key: str) -> list[dict[str, Any]]:
    """One status row per certificate result: what happened, expiry, days left, ARI window, the
    play hosts that want it (the certificate specs under each host's ``wanted_key``) and
    whether they serve it (the served checks under ``served_key``).

    A filter rather than a Jinja loop: looking each certificate up in every host's list is
    quadratic, and with 1000 certificates that took half a minute of templating."""
    hosts_by_name: dict[str, list[str]] = {}
    served_by_name: dict[str, list[dict[str, Any]]] = {}
    for host in hosts or []:
        for spec in host.get(wanted_key) or []:
            hosts_by_name.setdefault(spec["name"], []).append(host.get("inventory_hostname"))
        for check in host.get(served_key) or []:
            served_by_name.setdefault(check.get("certificate"), []).append(
                dict(check, host=host.get("inventory_hostname")))
    return [{"name": cert["name"], "action": cert.get("action"), "domains": list(cert.get("domains") or []),
             "not_after": cert.get("not_after"), "days_left": cert.get("days_left"),
             "hosts": hosts_by_name.get(cert["name"], []), "renewal_window": cert.get("renewal_window"),
             "served": _served_state(served_by_name.get(cert["name"], [])),
             "error": cert.get("error"), "failing_since": cert.get("failing_since"),
             "next_try_at": cert.get("next_try_at"), "failures": cert.get("failures") or 0}
            for cert in certificates or []]


class FilterModule(object):
    def filters(self) -> dict[str, Any]:
        return {"sites_to_certificates": sites_to_certificates, "merge_certificates": merge_certificates,
                "passthrough_routes": passthrough_routes, "merge_stage_results": merge_stage_results, "invalid_addresses": invalid_addresses,
                "certificate_status": certificate_status, "served_checks": served_checks,
                "split_listen": split_listen, "stale_message": stale_message, "checked_sites": checked_sites,
                "setting_problems": setting_problems, "installable": installable, "openmetrics": openmetrics,
                "at_risk": at_risk}
