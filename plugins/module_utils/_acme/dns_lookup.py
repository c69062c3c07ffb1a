"""DNS lookups dns-01 needs besides the update itself: the zone of a name (SOA), the servers
that answer for it (NS), and where ``_acme-challenge`` really lives (a CNAME chain).

Everything goes through one :class:`Lookup` - given resolvers (``dns_resolvers``), else the
system's - bounded in time per query and in the answers kept: DNS is outside input.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Optional, Sequence

try:
    import dns.exception
    import dns.name
    import dns.nameserver
    import dns.rdatatype
    import dns.resolver
except ImportError:  # dependencies.require_controller_libraries() names what is missing
    pass

from .errors import CertopsError, InputError

#: The longest CNAME chain followed from ``_acme-challenge`` (lego and certmagic stop near here).
MAX_CNAME_DEPTH = 10
QUERY_SECONDS = 5.0
#: A resolver: an IPv4 address, an IPv6 one, either with a port (IPv6 then in brackets).
_RESOLVER = re.compile(r"[0-9.]{7,15}(?::[0-9]{1,5})?|[0-9A-Fa-f:.]{2,45}|\[[0-9A-Fa-f:.]{2,45}\](?::[0-9]{1,5})?")


def parse_server(text: str, default_port: int = 53) -> tuple[str, int]:
    """``host``, ``host:port``, a bare IPv6 address or ``[ipv6]:port``."""
    if text.startswith("["):
        host, _ignored, port = text[1:].partition("]")
        return host, int(port.lstrip(":")) if port.lstrip(":") else default_port
    host, _ignored, port = text.rpartition(":") if text.count(":") == 1 else (text, "", "")
    return (host, int(port)) if port else (text, default_port)


@dataclass
class Lookup:
    """Queries through ``servers`` ((address, port)), or the system's resolvers when empty."""

    servers: Sequence[tuple[str, int]] = ()
    timeout: float = QUERY_SECONDS
    _zones: dict[str, str] = field(default_factory=dict, repr=False)
    _resolver: Optional["dns.resolver.Resolver"] = field(default=None, repr=False)

    def resolver(self) -> "dns.resolver.Resolver":
        if self._resolver is None:
            if self.servers:
                resolver = dns.resolver.Resolver(configure=False)
                resolver.nameservers = [dns.nameserver.Do53Nameserver(h, p) for h, p in self.servers]
            else:
                try:
                    resolver = dns.resolver.Resolver()
                except dns.resolver.NoResolverConfiguration:
                    raise CertopsError("dns-01: this controller has no DNS resolver configured; set "
                                       "dns_resolvers") from None
            resolver.timeout = resolver.lifetime = self.timeout
            self._resolver = resolver
        return self._resolver

    def answer(self, name: str, rdtype: str) -> "Optional[dns.resolver.Answer]":
        """The answer for ``name`` (absolute), None for no such name; CertopsError when DNS
        could not say (timeout, SERVFAIL, REFUSED, no resolver)."""
        try:
            return self.resolver().resolve(name, rdtype, raise_on_no_answer=False, search=False)
        except dns.resolver.NXDOMAIN:
            return None
        except (dns.exception.DNSException, OSError) as error:
            raise CertopsError(f"dns-01: cannot look up {name} {rdtype}: {error}") from None

    def zone_for(self, name: str) -> str:
        """The zone (with a trailing dot) holding ``name``: the nearest SOA walking up."""
        current = dns.name.from_text(name)
        while True:
            key = current.to_text()
            if key in self._zones:
                return self._zones[key]
            answer = self.answer(key, "SOA")
            response = answer.response if answer is not None else None
            if response is not None:
                for section in (response.answer, response.authority):
                    for rrset in section:
                        if rrset.rdtype == dns.rdatatype.SOA:
                            zone = rrset.name.to_text()
                            self._zones[key] = zone
                            return zone
            if current == dns.name.root or len(current.labels) <= 2:
                raise CertopsError(f"dns-01: found no zone (SOA) holding {name}; set the provider's zone")
            current = current.parent()

    def txt(self, name: str) -> list[str]:
        """The TXT values at ``name`` (each record's strings joined), [] when there are none."""
        answer = self.answer(name.rstrip(".") + ".", "TXT")
        if answer is None or answer.rrset is None:
            return []
        return [b"".join(r.strings).decode("utf-8", "replace")[:1000] for r in list(answer.rrset)[:32]]

    def cname_target(self, name: str) -> str:
        """Where records for ``name`` must be written: the end of its CNAME chain (``name``
        itself without one). A loop or a chain longer than MAX_CNAME_DEPTH is refused."""
        seen = [name.rstrip(".").lower()]
        while True:
            answer = self.answer(seen[-1] + ".", "CNAME")
            target = None
            if answer is not None and answer.rrset is not None:
                for rdata in list(answer.rrset)[:1]:
                    target = rdata.target.to_text().rstrip(".").lower()
            if target is None:
                return seen[-1]
            if target in seen:
                raise CertopsError(f"dns-01: the CNAME chain from {name} loops ({' -> '.join(seen + [target])}); "
                                   "fix the delegation records")
            seen.append(target)
            if len(seen) > MAX_CNAME_DEPTH + 1:
                raise CertopsError(f"dns-01: the CNAME chain from {name} is longer than {MAX_CNAME_DEPTH} "
                                   f"({' -> '.join(seen[:4])} -> ...); point it at the record's zone directly")

    def authoritative_servers(self, zone: str, port: int = 53) -> list[tuple[str, int]]:
        """Addresses of ``zone``'s NS set (empty when they cannot be found)."""
        servers: set[tuple[str, int]] = set()
        try:
            answer = self.answer(zone, "NS")
            for rdata in list(answer.rrset or [])[:8] if answer is not None else []:
                for rdtype in ("A", "AAAA"):
                    addresses = self.answer(rdata.target.to_text(), rdtype)
                    if addresses is not None and addresses.rrset is not None:
                        servers.update((a.address, port) for a in list(addresses.rrset)[:8])
        except CertopsError:
            return []
        return sorted(servers)


def parse_resolvers(values: Sequence[object], field: str) -> list[tuple[str, int]]:
    """(address, port) of each resolver given; an error names the entry and the fix."""
    servers = []
    for index, text in enumerate(values):
        server = parse_server(text) if isinstance(text, str) and _RESOLVER.fullmatch(text) else None
        try:
            valid = server is not None and bool(ipaddress.ip_address(server[0])) and 0 < server[1] < 65536
        except ValueError:
            valid = False
        if not valid or server is None:
            raise InputError(f"{field}[{index}]", f"{str(text)[:80]!r} is not an IP address with an optional port",
                             "write e.g. 192.0.2.53, 192.0.2.53:5353, 2001:db8::53 or [2001:db8::53]:5353")
        servers.append(server)
    return servers
