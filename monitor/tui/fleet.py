"""The fleet as the TUI shows it: each replica's row, a service's breaker across its replicas,
and which monitor leads, as plain values built from the store's.

Replica addresses, instance ids and the leading monitor's id come from outside (DNS, backends,
other hosts): they are made one bounded line of printable characters here, where they enter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from monitor.store import LeaderLease, ReplicaState, Status
from monitor.tui.formatting import bounded

STALE_LEASE_TTLS = 2
"""The lease is stale (no monitor leads) once this TUI has not seen it move for this many ttls."""
MAX_REPLICA_SHOWN = 48
"""Characters shown of a replica's address (``[ipv6]:port`` fits)."""
MAX_INSTANCE_SHOWN = 48
"""Characters shown of a backend's instance id."""
MAX_MONITOR_SHOWN = 48
"""Characters shown of a monitor's id."""
MAX_ERROR_SHOWN = 200
BREAKER_RANK = {"closed": 0, "half_open": 1, "open": 2}
"""Worse is higher; an unknown word ranks with half-open (not closed, not known to be open)."""


def breaker_rank(state: str) -> int:
    return BREAKER_RANK.get(state, 1)


@dataclass(frozen=True, slots=True)
class BreakerSpread:
    """The worst breaker state among a service's replicas, and on how many of them it holds."""

    state: str
    count: int
    total: int


def breaker_spread(states: Sequence[str]) -> BreakerSpread | None:
    if not states:
        return None
    worst = max(states, key=breaker_rank)
    return BreakerSpread(worst, sum(state == worst for state in states), len(states))


@dataclass(frozen=True, slots=True)
class ReplicaRow:
    """One replica of a target as its latest check saw it (its own figures, never mixed)."""

    target: str
    replica: str
    """The store's key (``host:port``): the row's identity, never shown as it is."""
    label: str
    """The address as shown: one bounded line."""
    instance: str | None
    """The answering process's id as shown (bounded), if it said."""
    started_at: float | None
    status: Status
    latency_ms: float | None
    since: float
    checked_at: float
    error: str | None
    breakers: tuple[tuple[str, str], ...] = ()
    """(service, breaker state) from this replica's own samples."""
    reset_services: frozenset[str] = frozenset()
    """Services whose breaker a reset from here closed on this replica, not yet seen by a check."""

    @property
    def key(self) -> str:
        # A component's key is ``target::service``; this one cannot be mistaken for it (target
        # names come from the config, which allows no control characters).
        return f"replica\x1f{self.target}\x1f{self.replica}"

    @property
    def worst_breaker(self) -> tuple[str, str] | None:
        """(service, state) of the breaker in the worst state; None when it reported none."""
        if not self.breakers:
            return None
        return max(self.breakers, key=lambda pair: breaker_rank(pair[1]))

    def matches(self, needle: str) -> bool:
        words = (self.label, self.instance or "", self.status.value)
        return any(needle in word.lower() for word in words)


def replica_row(state: ReplicaState) -> ReplicaRow:
    instance = state.instance
    instance_id = bounded(instance.id, MAX_INSTANCE_SHOWN) if instance is not None else ""
    return ReplicaRow(
        target=state.target,
        replica=state.replica,
        label=bounded(state.replica, MAX_REPLICA_SHOWN),
        instance=instance_id or None,
        started_at=instance.started_at if instance is not None else None,
        status=state.status,
        latency_ms=state.latency_ms,
        since=state.since,
        checked_at=state.checked_at,
        error=bounded(state.error, MAX_ERROR_SHOWN) if state.error else None,
        breakers=tuple(
            (sample.service, sample.breaker_state)
            for sample in state.services
            if sample.breaker_state is not None
        ),
    )


@dataclass(frozen=True, slots=True)
class Leadership:
    """Which monitor leads, for the header: ``stale`` when none does (or none can be seen to)."""

    holder: str
    """The leader's id as shown (bounded); '' when the last leader released the lease, or when
    no monitor ever took it."""
    since: float | None
    """When the holder took the lease (its own wall clock: for people); None when there is no
    lease."""
    quiet_for: float | None
    """Seconds this TUI has watched the lease without seeing it move (on its own monotonic
    clock: at least that long since the last renewal); None when there is no lease."""
    ttl: float | None
    stale: bool


class LeaseWatch:
    """Judges whether a monitor leads the way a standby monitor does (ARCHITECTURE §11): by
    watching the lease's (holder, epoch, beat) move on this process's own monotonic clock.

    The lease's ``renewed_at`` is the leader's wall clock, and the clocks of the hosts need not
    agree: compared with this host's, a TUI a few seconds ahead would always cry that no monitor
    leads, and one behind would hide a dead one. A lease is stale once it has not moved for
    ``STALE_LEASE_TTLS`` × its ttl on this clock; at start-up that takes as long (a lease first
    seen counts as moved then). A released lease, or checks without any lease, is stale at once.
    """

    def __init__(self, monotonic: Callable[[], float]) -> None:
        self.monotonic = monotonic
        self._seen: tuple[str, int, int] | None = None
        self._moved_at = 0.0

    def judge(self, lease: LeaderLease | None, *, has_checks: bool) -> Leadership | None:
        """The header's value; None when there is nothing to say (no lease, no check yet)."""
        now = self.monotonic()
        if lease is None:
            self._seen = None
            if not has_checks:
                return None
            return Leadership("", None, None, None, stale=True)
        state = (lease.holder, lease.epoch, lease.beat)
        if state != self._seen:
            self._seen, self._moved_at = state, now
        quiet = max(0.0, now - self._moved_at)
        holder = bounded(lease.holder, MAX_MONITOR_SHOWN)
        ttl = max(0.0, lease.ttl)
        stale = not holder or quiet > STALE_LEASE_TTLS * ttl
        return Leadership(holder, lease.acquired_at, quiet, ttl, stale=stale)
