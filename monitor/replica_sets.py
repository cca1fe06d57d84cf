"""Who a target's replicas are, round by round (ARCHITECTURE §11), as the daemon keeps them.

A ``dns:`` entry is looked up again every round, within a share of the target's timeout (the
probes need the rest). A failed lookup keeps the last known set — from this run, or the replicas
the store last saw live (a restart during a DNS outage keeps probing them) — so a DNS hiccup
never retires anything. A replica that leaves the set is retired in the store, not "down".
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from monitor.config import Target, dns_replica, replica_key
from monitor.discovery import LOOKUP_SHARE, Discovery, DiscoveryError, Replica
from monitor.store import HistoryWrite
from shared.resilience import Clock, within

logger = logging.getLogger("monitor")

LOOKUP_TIMED_OUT = "DNS lookup timed out"


class ReplicaSets:
    def __init__(self, discovery: Discovery, writer: HistoryWrite, clock: Clock) -> None:
        self._discovery = discovery
        self._writer = writer
        self._clock = clock
        self.sets: dict[str, list[Replica]] = {}
        """Each target's replicas as last discovered (kept while a lookup fails)."""
        self._stored: dict[str, set[str]] = {}
        """Each target's replica keys live (not retired) in the store: those that leave are
        retired."""
        self._discovery_errors: dict[str, str] = {}

    def stored(self, target: str, replica: str) -> None:
        """A replica the store has live for ``target`` (read at start)."""
        self._stored.setdefault(target, set()).add(replica)

    async def current(self, target: Target) -> list[Replica] | None:
        """The target's replicas this round: as discovered now, else as last known (from this
        run, or from the store's live rows), else None (never known: nothing to probe)."""
        try:
            lookup = self._discovery.replicas(target)
            if any(dns_replica(entry) is not None for entry in target.replicas):
                # Bounded on the daemon's clock too: the probes need the rest of the round.
                found = await within(lookup, target.timeout * LOOKUP_SHARE, self._clock)
            else:
                found = await lookup
        except (DiscoveryError, TimeoutError) as error:
            message = error.message if isinstance(error, DiscoveryError) else LOOKUP_TIMED_OUT
            if self._discovery_errors.get(target.name) != message:
                self._discovery_errors[target.name] = message
                logger.warning(
                    "%s: %s; checking the replicas last known",
                    target.name,
                    message,
                    extra={"event": "discovery_failed", "target": target.name},
                )
            known = self.sets.get(target.name)
            if known is None:
                known = self._from_store(target)
            return known
        if self._discovery_errors.pop(target.name, None) is not None:
            logger.info(
                "%s: replicas discovered again",
                target.name,
                extra={"event": "discovery_recovered", "target": target.name},
            )
        previous = self.sets.get(target.name)
        if previous is not None and previous != found:
            logger.info(
                "%s: %d replica(s), was %d",
                target.name,
                len(found),
                len(previous),
                extra={"event": "replicas_changed", "target": target.name},
            )
        self.sets[target.name] = found
        return found

    def _from_store(self, target: Target) -> list[Replica] | None:
        """Replicas the store last saw live (a restart during a DNS outage keeps probing them):
        a static entry at its own URL, a discovered one at the target's scheme and its key."""
        keys = self._stored.get(target.name)
        if not keys:
            return None
        static = {
            replica_key(entry): entry for entry in target.replicas if dns_replica(entry) is None
        }
        scheme = urlsplit(target.url).scheme or "http"
        return sorted(Replica(key, static.get(key, f"{scheme}://{key}")) for key in keys)

    async def retire(self, target: Target, keys: set[str], at: float) -> None:
        """Retire the replicas that left the target's set since the store last saw them."""
        left = self._stored.get(target.name, set()) - keys
        if left:
            await self._writer.retire_replicas(target.name, sorted(left), at)
            logger.info(
                "%s: %d replica(s) retired",
                target.name,
                len(left),
                extra={"event": "replicas_retired", "target": target.name},
            )
        self._stored[target.name] = keys
