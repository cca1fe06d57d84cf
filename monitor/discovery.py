"""Which replicas a target has right now: its ``replicas`` as written, with every ``dns:NAME:PORT``
entry looked up again (a Kubernetes headless Service answers with one address per ready pod).

A DNS answer is outside input: only A and AAAA addresses are kept (dnspython's answer holds the
asked name's records of the asked type, CNAMEs followed; anything else in the message is ignored),
they are parsed as IP addresses, deduplicated, sorted by key and cut at :data:`MAX_REPLICAS`. A
lookup is bounded in time: the smaller of the discovery's timeout and :data:`LOOKUP_SHARE` of the
target's (a check's lookup and probes share one deadline, the target's timeout; the daemon gives
the probes what the lookup left). dnspython is imported at the first lookup.

NXDOMAIN and an empty answer mean "no replicas" (the Service has no ready pod): an empty list. A
lookup that times out or that no server answers properly raises :class:`DiscoveryError`, which
the daemon answers by keeping the set it last knew — a DNS hiccup never retires replicas. A and
AAAA are asked apart: when one fails and the other brought addresses, those are the answer (an
IPv4-only cluster whose resolver times out on AAAA still has its replicas); when the other
brought none, the lookup failed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from monitor.config import MAX_REPLICAS as MAX_REPLICAS
from monitor.config import Target, dns_replica, replica_key

if TYPE_CHECKING:
    import dns.asyncresolver

__all__ = [
    "LOOKUP_SHARE",
    "MAX_REPLICAS",
    "Discovery",
    "DiscoveryError",
    "Replica",
    "replica_key",
]

logger = logging.getLogger("monitor")

DEFAULT_TIMEOUT = 2.0
"""Seconds a lookup may take, at most (it also never outlasts LOOKUP_SHARE of the target's
timeout)."""
LOOKUP_SHARE = 0.5
"""Of a target's timeout, the most its replicas' lookup may take: the lookup and the probes
share the target's timeout (a check ends before the next is due), and the probes of the
replicas last known still need the rest when DNS does not answer."""


@dataclass(frozen=True, slots=True, order=True)
class Replica:
    """One replica of a target: its key (``host:port``) and the base URL it is probed at."""

    key: str
    url: str


class DiscoveryError(Exception):
    """A ``dns:`` lookup failed (timeout, no server answered, a refused query): plain words, for
    the log; the daemon keeps the replicas it last knew."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Discovery:
    def __init__(
        self, nameservers: Sequence[tuple[str, int]] = (), *, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.nameservers = tuple(nameservers)
        self.timeout = timeout
        self._resolver: dns.asyncresolver.Resolver | None = None
        self._capped: set[str] = set()
        """Names whose answer was cut at MAX_REPLICAS, said once each in the log."""

    async def replicas(self, target: Target) -> list[Replica]:
        """The target's replicas now, sorted by key, at most :data:`MAX_REPLICAS`."""
        if not target.replicas:
            return [Replica(replica_key(target.url), target.url)]
        found: dict[str, Replica] = {}
        lookups: list[tuple[str, int]] = []
        for entry in target.replicas:
            named = dns_replica(entry)
            if named is None:
                found.setdefault(replica_key(entry), Replica(replica_key(entry), entry))
            else:
                lookups.append(named)
        if lookups:
            lifetime = min(self.timeout, target.timeout * LOOKUP_SHARE)
            scheme = urlsplit(target.url).scheme or "http"
            answers = await asyncio.gather(*(self._addresses(n, lifetime) for n, _ in lookups))
            for (name, port), addresses in zip(lookups, answers, strict=True):
                for address in addresses:
                    replica = _replica(scheme, address, port)
                    found.setdefault(replica.key, replica)
                if len(found) > MAX_REPLICAS and name not in self._capped:
                    self._capped.add(name)
                    logger.warning(
                        "%s: more than %d replicas; the first %d by address are watched",
                        target.name,
                        MAX_REPLICAS,
                        MAX_REPLICAS,
                        extra={"event": "replicas_capped", "target": target.name},
                    )
        return sorted(found.values())[:MAX_REPLICAS]

    async def _addresses(
        self, name: str, lifetime: float
    ) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        """Every A and AAAA address ``name`` has now (both asked at once); a family whose
        lookup failed counts as empty if the other brought addresses."""
        resolver = self._resolver_now()
        results = await asyncio.gather(
            *(self._query(resolver, name, kind, lifetime) for kind in ("A", "AAAA")),
            return_exceptions=True,
        )
        found: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
        failed: list[DiscoveryError] = []
        for result in results:
            if isinstance(result, DiscoveryError):
                failed.append(result)
            elif isinstance(result, BaseException):
                raise result
            else:
                found.update(result)
        if failed and not found:
            # Nothing to go on: "no replicas" here would retire every replica over a hiccup.
            raise failed[0]
        return sorted(found, key=_order)

    async def _query(
        self, resolver: dns.asyncresolver.Resolver, name: str, kind: str, lifetime: float
    ) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        import dns.exception
        import dns.rdatatype
        import dns.resolver

        wanted = dns.rdatatype.A if kind == "A" else dns.rdatatype.AAAA
        try:
            answer = await resolver.resolve(
                name,
                wanted,
                raise_on_no_answer=False,
                lifetime=lifetime,
                # Short names (a Service in the monitor's namespace) through resolv.conf's search
                # list, as the system resolver does; explicit servers have no search list.
                search=not self.nameservers,
            )
        except dns.resolver.NXDOMAIN:
            return []
        except dns.exception.Timeout:
            raise DiscoveryError(f"DNS lookup of {name} ({kind}) timed out") from None
        except dns.resolver.NoNameservers:
            raise DiscoveryError(
                f"DNS lookup of {name} ({kind}) failed: no server answered it"
            ) from None
        except dns.exception.DNSException as error:
            raise DiscoveryError(
                f"DNS lookup of {name} ({kind}) failed: {type(error).__name__}"
            ) from None
        if answer.rrset is None:
            return []
        addresses: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
        # Parse what the answer says rather than trust its type: an address is an address.
        for record in list(answer.rrset)[: MAX_REPLICAS * 64]:
            if record.rdtype != wanted:
                continue
            try:
                addresses.append(ipaddress.ip_address(str(record.address)))
            except ValueError:
                continue
        return addresses

    def _resolver_now(self) -> dns.asyncresolver.Resolver:
        """The resolver, made on first use: the system's configuration is read once, and a host
        without one (no ``/etc/resolv.conf``) is a DiscoveryError, not a crash at start."""
        if self._resolver is not None:
            return self._resolver
        # dnspython is imported on first use: ``Replica`` alone (the reset, the TUI's rows)
        # should not cost its import.
        import dns.asyncresolver
        import dns.exception
        import dns.nameserver

        try:
            resolver = dns.asyncresolver.Resolver(configure=not self.nameservers)
        except dns.exception.DNSException:
            raise DiscoveryError(
                "no DNS configuration on this host; name servers in [dns] nameservers"
            ) from None
        if self.nameservers:
            resolver.nameservers = [
                dns.nameserver.Do53Nameserver(address, port) for address, port in self.nameservers
            ]
        resolver.timeout = self.timeout
        resolver.lifetime = self.timeout
        resolver.cache = None  # re-resolved every interval: a cached answer would hide changes
        self._resolver = resolver
        return resolver


def _replica(
    scheme: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int
) -> Replica:
    host = f"[{address}]" if address.version == 6 else str(address)
    return Replica(f"{host}:{port}", f"{scheme}://{host}:{port}")


def _order(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> tuple[int, int]:
    return address.version, int(address)
