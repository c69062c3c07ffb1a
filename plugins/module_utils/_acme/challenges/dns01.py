"""dns-01: put ``_acme-challenge`` TXT records in place for a whole batch, wait until every
authoritative server serves them, and delete exactly the records we added afterwards.

Providers (how records are changed) plug in through :class:`DnsProvider`:

- :class:`Rfc2136Provider` - dynamic updates signed with TSIG (BIND, Knot, PowerDNS...);
- ``HookProvider`` in plugin_utils/_dns_hook.py (it starts a process, so it stays out of
  module_utils) - an executable called as ``HOOK add|del NAME VALUE`` with the same as JSON
  on stdin, for any other DNS API;
- any Python class with ``add_txt``/``delete_txt``, loaded by ``load_provider``.

A wildcard and its base name share one record name with two values; both are added before
the CA looks and both are removed afterwards.
"""

from __future__ import annotations

import importlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol, Sequence

try:
    import dns.exception
    import dns.message
    import dns.name
    import dns.query
    import dns.rcode
    import dns.rdatatype
    import dns.tsig
    import dns.tsigkeyring
    import dns.update
except ImportError:  # dependencies.require_controller_libraries() names what is missing
    pass

from ..errors import CertopsError, InputError
from . import PendingChallenge
from ..dns_lookup import Lookup
from ..waiting import Deadline

#: TSIG algorithm names as RFC 8945 and BIND spell them (dnspython accepts the text form).
TSIG_ALGORITHMS = ("hmac-sha256", "hmac-sha512", "hmac-sha384")
TXT_TTL = 60


class DnsProvider(Protocol):
    """Adds and removes one TXT value. Raise :class:`CertopsError` with a clear message."""

    def add_txt(self, record_name: str, value: str) -> None: ...

    def delete_txt(self, record_name: str, value: str) -> None: ...


#: The ``dns_rfc2136`` option of the certificate task.
RFC2136_SPEC = {
    # server, key_name and key_secret are required, from here or from $CERTOPS_DNS_RFC2136_*:
    # options.rfc2136_settings checks them once both are merged.
    "server": {"type": "str"},
    "port": {"type": "int"},
    "key_name": {"type": "str"},
    "key_secret": {"type": "str", "no_log": True},
    "key_algorithm": {"type": "str", "choices": ["hmac-sha256", "hmac-sha384", "hmac-sha512"]},
    "zone": {"type": "str"},
}


@dataclass
class Rfc2136Provider:
    server: str
    key_name: str
    key_secret: str
    key_algorithm: str = "hmac-sha256"
    port: int = 53
    zone: Optional[str] = None
    timeout: float = 10.0
    _zones: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.key_algorithm not in TSIG_ALGORITHMS:
            raise InputError("dns_rfc2136.key_algorithm", f"{self.key_algorithm!r} is not supported",
                             f"use one of {', '.join(TSIG_ALGORITHMS)}")
        try:
            self._keyring = dns.tsigkeyring.from_text({self.key_name: self.key_secret})
        except (ValueError, TypeError, dns.exception.DNSException):
            raise InputError("dns_rfc2136.key_secret", "is not a base64 TSIG secret",
                             "copy the secret from the server's key statement") from None

    def zone_for(self, record_name: str) -> str:
        """The zone holding ``record_name``: the ``zone`` option, else found from the SOA."""
        if self.zone:
            return self.zone.rstrip(".") + "."
        name = dns.name.from_text(record_name)
        while True:
            cached = self._zones.get(name.to_text())
            if cached:
                return cached
            query = dns.message.make_query(name, dns.rdatatype.SOA)
            try:
                response = dns.query.udp(query, self.server, port=self.port, timeout=self.timeout)
            except (dns.exception.DNSException, OSError) as error:
                raise CertopsError(f"dns-01: cannot ask {self.server}:{self.port} for the zone of "
                                   f"{record_name}: {error}") from None
            for section in (response.answer, response.authority):
                for rrset in section:
                    if rrset.rdtype == dns.rdatatype.SOA:
                        zone = rrset.name.to_text()
                        self._zones[name.to_text()] = zone
                        return zone
            if name == dns.name.root:
                raise CertopsError(f"dns-01: {self.server} is not authoritative for any zone holding "
                                   f"{record_name}; set dns_rfc2136.zone")
            name = name.parent()

    def _update(self, record_name: str, value: str, add: bool) -> None:
        zone = self.zone_for(record_name)
        update = dns.update.UpdateMessage(zone, keyring=self._keyring, keyname=dns.name.from_text(self.key_name),
                                          keyalgorithm=dns.name.from_text(self.key_algorithm))
        if add:
            update.add(record_name + ".", TXT_TTL, "TXT", f'"{value}"')
        else:
            update.delete(record_name + ".", "TXT", f'"{value}"')
        try:
            response = dns.query.tcp(update, self.server, port=self.port, timeout=self.timeout)
        except (dns.exception.DNSException, OSError) as error:
            raise CertopsError(f"dns-01: update of {record_name} at {self.server}:{self.port} failed: {error}") from None
        if response.rcode() != dns.rcode.NOERROR:
            raise CertopsError(f"dns-01: {self.server} refused the update of {record_name} in zone {zone} "
                               f"({dns.rcode.to_text(response.rcode())}); check the TSIG key and the "
                               "zone's update-policy")

    def add_txt(self, record_name: str, value: str) -> None:
        self._update(record_name, value, add=True)

    def delete_txt(self, record_name: str, value: str) -> None:
        self._update(record_name, value, add=False)

    def authoritative_servers(self, record_name: str) -> list[tuple[str, int]]:
        """Addresses of the zone's NS set (looked up at the update server); the update server
        itself when the NS names cannot be resolved there."""
        zone = self.zone_for(record_name)
        servers: list[tuple[str, int]] = []
        try:
            ns = dns.query.udp(dns.message.make_query(zone, dns.rdatatype.NS), self.server,
                               port=self.port, timeout=self.timeout)
            for rrset in ns.answer:
                for rdata in rrset:
                    target = rdata.target.to_text()
                    answer = dns.query.udp(dns.message.make_query(target, dns.rdatatype.A), self.server,
                                           port=self.port, timeout=self.timeout)
                    servers.extend((a.address, self.port) for rr in answer.answer for a in rr
                                   if rr.rdtype == dns.rdatatype.A)
        except (dns.exception.DNSException, OSError):
            pass
        return sorted(set(servers)) or [(self.server, self.port)]


def load_provider(path: str, options: dict[str, Any]) -> DnsProvider:
    """``package.module:ClassName`` importable on the controller, built with ``options``."""
    module_name, _ignored, class_name = path.partition(":")
    if not module_name or not class_name:
        raise InputError("dns_provider", f"{path!r} is not 'package.module:ClassName'",
                         "or use rfc2136 / hook")
    try:
        provider_class = getattr(importlib.import_module(module_name), class_name)
        return provider_class(**options)
    except (ImportError, AttributeError, TypeError) as error:
        raise InputError("dns_provider", f"cannot load {path}: {error}",
                         "the module must be importable by the controller's Python") from None


def visible_at(server: tuple[str, int], record_name: str, values: set[str], timeout: float = 3.0) -> bool:
    query = dns.message.make_query(record_name, dns.rdatatype.TXT)
    try:
        response = dns.query.udp(query, server[0], port=server[1], timeout=timeout)
    except (dns.exception.DNSException, OSError):
        return False
    seen = {b"".join(r.strings).decode("ascii", "replace") for rr in response.answer
            if rr.rdtype == dns.rdatatype.TXT for r in rr}
    return values <= seen


#: How long removing the batch's TXT records may take, whatever the batch had left.
CLEANUP_SECONDS = 30.0


class Dns01Responder:
    """Deploys a batch's dns-01 records through one provider. With ``cnames`` (a Lookup), each
    ``_acme-challenge`` name is first followed through its CNAME chain and the record written
    at the end of it (the acme-dns delegation pattern: the powerful credentials for the main
    zone stay away, only a small delegated zone is updatable)."""

    def __init__(self, provider: DnsProvider, check_servers: Optional[Sequence[tuple[str, int]]] = None,
                 propagation_timeout: float = 120.0, cnames: Optional[Lookup] = None,
                 propagation_wait: Optional[float] = None) -> None:
        self.provider = provider
        self.check_servers = list(check_servers or [])
        self.propagation_timeout = propagation_timeout
        #: A fixed wait instead of the check (dns_propagation: wait), for DNS the controller
        #: cannot query (split horizon, a firewalled primary); None: check.
        self.propagation_wait = propagation_wait
        self.cnames = cnames
        self._added: list[tuple[str, str]] = []
        self.cleanup_errors: list[str] = []
        self.warnings: list[str] = []
        self._targets: dict[str, str] = {}

    def record_target(self, record_name: str) -> str:
        """Where the record for ``record_name`` is written (see the class docstring). A chain
        that loops or is too long fails its certificates; a lookup that cannot be answered
        keeps the name itself and stops following for the batch, with a warning."""
        if self.cnames is None:
            return record_name
        if record_name not in self._targets:
            try:
                self._targets[record_name] = self.cnames.cname_target(record_name)
            except CertopsError as error:
                if "CNAME chain" in str(error):
                    raise
                self.warnings.append(f"{error}; records are written at their own names (set dns_resolvers to "
                                     "resolvers that answer, or dns_follow_cname: false)")
                self.cnames = None
                return record_name
        return self._targets[record_name]

    def _servers_for(self, record_name: str) -> list[tuple[str, int]]:
        if self.check_servers:
            return self.check_servers
        finder = getattr(self.provider, "authoritative_servers", None)
        return finder(record_name) if finder else []

    def deploy(self, challenges: Sequence[PendingChallenge], deadline: Deadline) -> dict[str, str]:
        failed: dict[str, str] = {}
        wanted: dict[str, set[str]] = {}
        owners: dict[str, set[str]] = {}
        self._bind(deadline)
        for challenge in challenges:
            value = challenge.dns_record_value
            try:
                name = self.record_target(challenge.dns_record_name)
                self.provider.add_txt(name, value)
            except CertopsError as error:
                failed[challenge.certificate] = str(error)
                continue
            self._added.append((name, value))
            wanted.setdefault(name, set()).add(value)
            owners.setdefault(name, set()).add(challenge.certificate)
        if self.propagation_wait is not None:
            if wanted:
                time.sleep(max(0.0, min(self.propagation_wait, deadline.remaining() - 1.0)))
            return failed
        for certificate, why in self._await_propagation(wanted, owners, deadline).items():
            failed.setdefault(certificate, why)  # a record that could not be added says so first
        return failed

    def _await_propagation(self, wanted: dict[str, set[str]], owners: dict[str, set[str]],
                           deadline: Deadline) -> dict[str, str]:
        """Wait until every authoritative server answers every value: a CA may ask any of them."""
        failed: dict[str, str] = {}
        limit = min(self.propagation_timeout, max(1.0, deadline.remaining()))
        backoff = Deadline(limit, "dns-01 propagation").backoff(0.05, 1.5, 2.0)
        missing = {n: self._servers_for(n) for n in wanted}
        while True:
            missing = {n: [s for s in servers if not visible_at(s, n, wanted[n])] for n, servers in missing.items()}
            missing = {n: s for n, s in missing.items() if s}
            if not missing or not backoff.wait():
                break
        for name, servers in missing.items():
            where = ", ".join(f"{h}:{p}" for h, p in servers)
            for certificate in owners[name]:
                failed.setdefault(certificate, f"dns-01: {name} TXT was not served by {where} within "
                                               f"{limit:.0f} s (dns_propagation_timeout)")
        return failed

    def _bind(self, deadline: Deadline) -> None:
        """Providers that can wait (a hook's process) are bounded by the batch's deadline."""
        bind = getattr(self.provider, "bind_deadline", None)
        if bind is not None:
            bind(deadline)

    def cleanup(self, challenges: Sequence[PendingChallenge]) -> None:
        del challenges  # we remove exactly what we added, whatever happened since
        # Cleanup runs after the batch, often at its deadline: it gets a short bound of its own.
        self._bind(Deadline(CLEANUP_SECONDS, "removing dns-01 records"))
        for name, value in self._added:
            try:
                self.provider.delete_txt(name, value)
            except CertopsError as error:
                self.cleanup_errors.append(str(error))
        self._added = []


class Dns01Router:
    """dns-01 over several providers in one batch: each certificate's challenges go to the
    provider its ``dns`` names (``dns_providers``), the others to the task's own. Each provider
    deploys its share and waits for its propagation at the same time as the others."""

    def __init__(self, responders: dict[str, Dns01Responder], choice: dict[str, str]) -> None:
        #: provider name ("" for the task's own) -> responder; certificate -> provider name
        self.responders = responders
        self.choice = choice

    def _groups(self, challenges: Sequence[PendingChallenge]) -> dict[str, list[PendingChallenge]]:
        groups: dict[str, list[PendingChallenge]] = {}
        for challenge in challenges:
            groups.setdefault(self.choice.get(challenge.certificate, ""), []).append(challenge)
        return groups

    def deploy(self, challenges: Sequence[PendingChallenge], deadline: Deadline) -> dict[str, str]:
        failed: dict[str, str] = {}
        work = []
        for name, group in self._groups(challenges).items():
            if name not in self.responders:
                what = f"the DNS provider {name!r}" if name else "a DNS provider (dns_provider)"
                failed.update({c.certificate: f"dns-01: no {what} is set for it" for c in group})
            else:
                work.append((self.responders[name], group))
        with ThreadPoolExecutor(max_workers=max(1, len(work)), thread_name_prefix="certops-dns") as pool:
            for outcome in pool.map(lambda item: item[0].deploy(item[1], deadline), work):
                failed.update(outcome)
        return failed

    def cleanup(self, challenges: Sequence[PendingChallenge]) -> None:
        for name in self._groups(challenges):
            if name in self.responders:
                self.responders[name].cleanup([])

    @property
    def warnings(self) -> list[str]:
        return [w for r in self.responders.values() for w in r.warnings]

    @property
    def cleanup_errors(self) -> list[str]:
        return [e for r in self.responders.values() for e in r.cleanup_errors]
