"""The monitor's history as values: what one check saw, and what readers get back.

Statuses are the backend's words (``healthy``, ``degraded``, ``unhealthy``, ``unknown``) plus
``unreachable`` for a target that did not answer its health API at all.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple


class Status(enum.StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    UNREACHABLE = "unreachable"
    UNKNOWN = "unknown"

    @property
    def severity(self) -> int:
        """Worse is higher: roll-ups keep the worst state of a period."""
        return _SEVERITY[self]

    @classmethod
    def parse(cls, value: object) -> Status:
        try:
            return cls(str(value))
        except ValueError:
            return cls.UNKNOWN

    @classmethod
    def from_severity(cls, severity: int) -> Status:
        return _BY_SEVERITY.get(severity, cls.UNKNOWN)


_SEVERITY = {
    Status.UNKNOWN: 0,
    Status.HEALTHY: 1,
    Status.DEGRADED: 2,
    Status.UNHEALTHY: 3,
    Status.UNREACHABLE: 4,
}
_BY_SEVERITY = {v: k for k, v in _SEVERITY.items()}

TARGET_COMPONENT = ""
"""The service name under which a target's own reachability and overall status are kept."""


def component_key(target: str, service: str) -> str:
    """The component's key (DESIGN §3): ``TARGET`` for a target, ``TARGET/SERVICE`` for a
    service of it (``questcity-api``, ``questcity-api/s3``)."""
    return f"{target}/{service}" if service else target


def split_component_key(key: str) -> tuple[str, str]:
    """``(target, service)`` of a component key; the service is ``""`` for a target itself."""
    target, _, service = key.partition("/")
    return target, service


@dataclass(frozen=True, slots=True)
class ServiceSample:
    """One service as one check saw it (from ``/detailed``, or only a status from ``/``)."""

    service: str
    status: Status
    response_ms: float | None = None
    consecutive_failures: int | None = None
    breaker_state: str | None = None
    details: dict[str, object] = field(default_factory=dict)
    """Breaker counters, pool figures: shown to operators, never on the status page."""


@dataclass(frozen=True, slots=True)
class CheckRecord:
    """One probe of one target."""

    target: str
    at: float
    """Wall-clock time of the probe (seconds since the epoch)."""
    status: Status
    latency_ms: float | None
    http_status: int | None
    error: str | None
    """A sanitised error class ("timeout", "connection refused", "bad JSON"); never a host."""
    services: tuple[ServiceSample, ...] = ()
    manual: bool = False
    """A check an engineer asked for (the TUI's ``c``): stored and shown to staff, and it sets
    the component's current state, but it never enters roll-ups, uptime or public charts (a
    cold check on demand is not the service's latency)."""


@dataclass(frozen=True, slots=True)
class LatestCheck:
    record: CheckRecord
    since: float | None
    """When the target's status last changed to what it is now (None if unknown)."""


@dataclass(frozen=True, slots=True)
class ComponentState:
    """A component's status as of its latest check, and since when it has held."""

    status: Status
    since: float
    checked_at: float
    """When the component was last seen: a service's is older than its target's when the
    target's latest check could not reach it."""


class UptimeBar(NamedTuple):
    """One period (a day, an hour) of one component. A named tuple rather than a frozen
    dataclass: a 90-day page of 50 components makes 4,500 of them, and it is built 3× faster."""

    start: float
    checks: int
    up: int
    """Checks in which the component was healthy or degraded (it served)."""
    worst: Status
    avg_latency_ms: float | None

    @property
    def uptime(self) -> float | None:
        return 100.0 * self.up / self.checks if self.checks else None


@dataclass(slots=True)
class BarSeries:
    """Consecutive periods of one component as columns, one list per figure, oldest first.

    What :class:`UptimeBar` says period by period, without an object per period: a 90-day page
    of 50 components is 4,500 days, and a page built from columns allocates 200 lists instead.
    A period nothing was checked in has 0 checks, severity 0 (unknown) and no average. Not
    frozen: a reader fills the columns in place.
    """

    first: int
    """Start of the first period."""
    length: int
    """Seconds per period."""
    checks: list[int]
    up: list[int]
    worst: list[int]
    """Severities (:attr:`Status.severity`)."""
    average: list[float | None]
    """Average response time in ms."""

    def __len__(self) -> int:
        return len(self.checks)

    def put(
        self, start: int, checks: int, up: int, worst: int, latency_sum: float, latency_count: int
    ) -> None:
        """One period's roll-up figures, in place."""
        at = (start - self.first) // self.length
        self.checks[at], self.up[at], self.worst[at] = checks, up, worst
        self.average[at] = latency_sum / latency_count if latency_count else None

    @property
    def starts(self) -> range:
        return range(self.first, self.first + len(self.checks) * self.length, self.length)

    @property
    def uptime(self) -> float | None:
        """Over all periods: percentage of checks in which the component served."""
        checks = sum(self.checks)
        return 100.0 * sum(self.up) / checks if checks else None

    def figures(self) -> Iterator[tuple[int, int, int, int]]:
        """Each period's start, checks, up and worst severity (plain tuples: fast to hash)."""
        return zip(self.starts, self.checks, self.up, self.worst, strict=True)

    def bars(self) -> list[UptimeBar]:
        return [
            UptimeBar(float(start), checks, up, Status.from_severity(worst), average)
            for start, checks, up, worst, average in zip(
                self.starts, self.checks, self.up, self.worst, self.average, strict=True
            )
        ]

    @classmethod
    def blank(cls, first: int, length: int, count: int) -> BarSeries:
        """``count`` periods nothing was checked in."""
        return cls(first, length, [0] * count, [0] * count, [0] * count, [None] * count)


@dataclass(frozen=True, slots=True)
class LatencyPoint:
    start: float
    avg_ms: float
    max_ms: float


@dataclass(frozen=True, slots=True)
class Component:
    """A thing users know by name: a target (``service == ""``) or one of its services.

    The daemon writes the catalogue from ``monitor.toml``, so readers need no config of their own.
    """

    target: str
    service: str
    display_name: str
    group: str
    position: int
    critical: bool = False
    """A service the backend marks ``critical`` (the database): down, it is a major outage."""
    kind: str | None = None
    """A ``[[checks]]`` entry's kind (``http``, ``tcp``, ``dns``, ``tls``, ``postgres``); None for
    a target of the health API and its services."""
    public: bool = True
    """On the status page. A check is public only when its config says so; targets always are."""


class IncidentState(enum.StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class IncidentEvent:
    at: float
    kind: str
    """``opened``, ``state_change``, ``breaker_reset``, ``note``, ``resolved``; written by people
    (issue #15): ``update`` (a public update with its ``phase``), ``takeover`` (a person took an
    automatic incident over), ``postmortem``; and the engineers' ``ack``, ``silence``."""
    status: Status | None
    text: str
    public: bool
    actor: str | None = None
    phase: str | None = None
    """For ``update`` events: the Statuspage status the update set (:data:`PHASES`)."""


class IncidentOrigin(enum.StrEnum):
    AUTO = "auto"
    """Opened by the daemon, by cause (issue #14); a person may take it over."""
    WRITTEN = "written"
    """Opened by a person (``questcity incident open``, the TUI)."""


PHASES = ("investigating", "identified", "monitoring", "resolved")
"""Statuspage's incident statuses a person sets (``questcity incident update --status``);
``resolved`` closes the incident."""

DECLARED_IMPACTS = {
    "minor": Status.DEGRADED,
    "major": Status.UNHEALTHY,
    "critical": Status.UNREACHABLE,
}
"""A written incident's ``--impact`` as the status its components are listed with, so the one
rule of :mod:`monitor.impact` words it: minor is degraded performance (indicator ``minor``),
major a partial outage (``major``), critical a major outage (``critical``)."""


@dataclass(frozen=True, slots=True)
class Incident:
    id: int
    target: str
    service: str
    state: IncidentState
    impact: Status
    """The worst status seen during the incident."""
    title: str
    opened_at: float
    resolved_at: float | None
    updated_at: float
    events: tuple[IncidentEvent, ...] = ()
    components: tuple[IncidentComponent, ...] = ()
    """Every component the incident's cause (``target``/``service``) affects, the cause first,
    each with the worst status it had during the incident (issue #14: one incident per cause).
    A written incident lists the components its author named, each with the declared impact's
    status (:data:`DECLARED_IMPACTS`); its ``target``/``service`` are the first's."""
    origin: IncidentOrigin = IncidentOrigin.AUTO
    phase: str | None = None
    """The Statuspage status a person last set (:data:`PHASES`); None while nobody wrote into
    it (an automatic incident's status then follows its cause)."""
    written_by: str | None = None
    """Who opened it (written) or took it over (automatic); None: the machine alone."""
    postmortem: str | None = None
    postmortem_at: float | None = None

    @property
    def taken_over(self) -> bool:
        """A person writes it: its public status and texts are theirs from then on."""
        return self.written_by is not None


@dataclass(frozen=True, slots=True)
class IncidentComponent:
    """One component an incident affects, with its impact (``monitor.impact`` words it)."""

    target: str
    service: str
    status: Status
    """The worst status it had during the incident."""
    critical: bool = False


class AlertState(enum.StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    rule: str
    target: str
    service: str
    state: AlertState
    summary: str
    started_at: float
    resolved_at: float | None
    notified: AlertState | None = None
    """The state whose notice was handled (delivered, or given up on after retries); a notice
    is owed while this is not ``state``."""
    updated_at: float | None = None
    """When ``summary`` was last re-written with the current figures (None: never since firing)."""
    acked_at: float | None = None
    acked_by: str | None = None
    """Who acknowledged it (stops reminders; the alert keeps firing until its condition clears)."""

    @property
    def component(self) -> str:
        return component_key(self.target, self.service)


@dataclass(frozen=True, slots=True)
class Silence:
    """A component's alerts kept quiet until ``ends_at``: still recorded and shown as silenced,
    not sent to notifiers. Expires on its own; ``questcity alert silence`` writes one."""

    id: int
    component: str
    """A component key (DESIGN §3); a target's key silences its services' alerts too."""
    starts_at: float
    ends_at: float
    created_by: str
    reason: str | None = None

    def covers(self, target: str, service: str, at: float) -> bool:
        silenced_target, silenced_service = split_component_key(self.component)
        if not self.starts_at <= at < self.ends_at or silenced_target != target:
            return False
        return not silenced_service or silenced_service == service


@dataclass(frozen=True, slots=True)
class Instance:
    """Which backend process answered: ``instance`` in ``/detailed`` (ARCHITECTURE §6)."""

    id: str
    started_at: float | None
    """When that process started (seconds since the epoch), if it said."""


@dataclass(frozen=True, slots=True)
class ReplicaCheck:
    """One probe of one replica of a target: its own figures, never mixed with another's."""

    replica: str
    """The replica's address, ``host:port`` of its base URL (``10.0.0.5:8000``): its key
    within the target. No scheme, no user info, no path."""
    record: CheckRecord
    """What this replica alone answered (``record.target`` is the target's name)."""
    instance: Instance | None = None
    """None when the replica did not say (no token, an older backend, unreachable)."""
    token_refused: int | None = None
    """The HTTP status (401, 403) with which the replica's ``/detailed`` refused the monitor's
    token (the check then stands on the summary): None when it took it, or none was sent."""


@dataclass(frozen=True, slots=True)
class ReplicaState:
    """A replica as its latest check saw it (the TUI's replica rows)."""

    target: str
    replica: str
    instance: Instance | None
    status: Status
    since: float
    """When its status last changed to what it is now."""
    checked_at: float
    latency_ms: float | None
    error: str | None
    services: tuple[ServiceSample, ...]
    retired_at: float | None = None
    """Set when the replica left the target's replica set (gone from DNS, or from the config):
    retired, not down."""


@dataclass(frozen=True, slots=True)
class LeaderLease:
    """The monitors' leadership lease (ARCHITECTURE §9): who leads, under which fencing epoch."""

    holder: str
    """The leading monitor's id; empty when the last leader released the lease on stopping."""
    epoch: int
    """The fencing token: one more at every change of leader. A write of a monitor whose
    epoch is not the current one is refused."""
    beat: int
    """Counts renewals; a standby watches it move (on its own clock, so the monitors' clocks
    need not agree)."""
    acquired_at: float
    """When ``holder`` took the lease (its own wall clock; for people)."""
    renewed_at: float
    """When it last renewed (its own wall clock; for people)."""
    ttl: float
    """Seconds without a renewal after which a standby takes over."""
