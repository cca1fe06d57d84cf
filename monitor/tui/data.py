"""What the TUI shows, read from the store as plain values.

Screens render these values and never query the store themselves; :class:`OverviewLoader` and
:func:`load_detail` are the only readers. Uptime figures read roll-ups and change slowly, so they
are cached for a minute. Every read is made for all the targets at once (a fleet's refresh is a
dozen statements, not a few queries per component).

A target with several replicas also gets a :class:`ReplicaRow` per replica, read in one query for
every target, and its service rows carry each replica's own breaker state (the aggregate's is the
worst of them; the table says how many agree). Replica addresses, instance ids and the leading
monitor's id come from outside: monitor.tui.fleet makes them one bounded line as they enter.
What the banner says about these values is :mod:`monitor.tui.summary`'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from monitor.checks.spec import Check
from monitor.config import MonitorConfig, Target
from monitor.store import (
    TARGET_COMPONENT,
    Alert,
    ComponentState,
    HistoryRead,
    Incident,
    IncidentState,
    LatencyPoint,
    LatestCheck,
    Maintenance,
    ReplicaState,
    Status,
    UptimeBar,
)
from monitor.tui.fleet import (
    BreakerSpread,
    Leadership,
    LeaseWatch,
    ReplicaRow,
    breaker_rank,
    breaker_spread,
    replica_row,
)
from monitor.tui.uptimes import UptimeCache, Uptimes

__all__ = [
    "BreakerSpread",
    "ComponentRow",
    "Detail",
    "Leadership",
    "Overview",
    "OverviewLoader",
    "ReplicaRow",
    "ResetMark",
    "breaker_rank",
    "load_detail",
]

STALE_AFTER_INTERVALS = 3
"""A target whose last check is older than this many intervals has stale figures."""


@dataclass(frozen=True, slots=True)
class ComponentRow:
    """A target (``service == ""``), one of its services, or a ``[[checks]]`` entry
    (:attr:`kind` set), as the latest check saw it."""

    target: str
    service: str
    title: str
    status: Status
    breaker: str | None = None
    response_ms: float | None = None
    recent: tuple[float | None, ...] = ()
    uptime: tuple[float | None, float | None, float | None] = (None, None, None)
    failures: int | None = None
    since: float | None = None
    checked_at: float | None = None
    error: str | None = None
    details: Mapping[str, object] = field(default_factory=dict)
    reset_to: str | None = None
    """The breaker state a reset from this TUI answered, until a newer check shows the state."""
    replica_breakers: tuple[tuple[str, str], ...] = ()
    """A service of a target with replica rows: (replica, breaker state) from each replica's own
    sample; empty for a one-replica target (whose row reads as it always has)."""
    replicas_reset: int = 0
    """Replicas whose breaker a reset from here closed, not yet seen by a check."""
    maintenance: Maintenance | None = None
    """The active maintenance window covering it when the overview was read (the status page
    shows it ``under_maintenance``; its checks and :attr:`status` go on as measured)."""
    kind: str | None = None
    """A ``[[checks]]`` entry's kind (``http``, ``tls``…): a component of its own, with no
    services, replicas or breakers. None for a target of the health API and its services."""
    public: bool = True
    """On the status page: targets always; a check only when its config says so."""
    http_status: int | None = None
    """The latest check's HTTP status, if it made an HTTP request (the detail screen's)."""

    @property
    def key(self) -> str:
        return f"{self.target}::{self.service}"

    @property
    def is_target(self) -> bool:
        return self.service == TARGET_COMPONENT

    @property
    def is_check(self) -> bool:
        return self.kind is not None

    @property
    def warning(self) -> bool:
        """A check that passed with something to say (a certificate expiring within
        ``warn_days``): the store keeps that text where a failure's error goes."""
        return self.is_check and self.status is Status.HEALTHY and bool(self.error)

    @property
    def shown_breaker(self) -> str | None:
        return self.reset_to or self.breaker

    @property
    def spread(self) -> BreakerSpread | None:
        """How the replicas' breakers stand (None for a one-replica target)."""
        return breaker_spread([state for _, state in self.replica_breakers])

    def matches_name(self, needle: str) -> bool:
        return any(needle in word.lower() for word in (self.target, self.service, self.title))

    def matches(self, needle: str) -> bool:
        words = (
            self.status.value,
            self.breaker or "",
            "maintenance" if self.maintenance else "",
            self.kind or "",
            "private" if not self.public else "",
        )
        return self.matches_name(needle) or any(needle in word.lower() for word in words)


@dataclass(frozen=True, slots=True)
class ResetMark:
    state: str
    at: float
    replicas: frozenset[str] = frozenset()
    """The replicas that answered the reset (empty: the target's only one)."""


@dataclass(frozen=True, slots=True)
class Overview:
    now: float
    rows: tuple[ComponentRow, ...] = ()
    alerts: tuple[Alert, ...] = ()
    open_incidents: tuple[Incident, ...] = ()
    stale: tuple[str, ...] = ()
    """Titles of targets and checks whose last check is old (is the daemon running?)."""
    replicas: Mapping[str, tuple[ReplicaRow, ...]] = field(default_factory=dict)
    """Replica rows of each target that has them (several replicas, or ``replicas`` set)."""
    leadership: Leadership | None = None
    hold_down: float = 30.0
    """Seconds an alert's condition must stay clear before it resolves (``[alerts]``)."""

    def row(self, key: str) -> ComponentRow | None:
        return next((row for row in self.rows if row.key == key), None)

    def open_incident(self, target: str, service: str) -> Incident | None:
        """The open incident of that component; for a target, its own or else any of its own."""
        own = [i for i in self.open_incidents if i.target == target and i.service == service]
        if own or service != TARGET_COMPONENT:
            return own[0] if own else None
        return next((i for i in self.open_incidents if i.target == target), None)

    def with_resets(self, resets: Mapping[tuple[str, str], ResetMark]) -> Overview:
        """Rows whose breaker was reset from here after their last check show the answered state
        (on a target with replicas, on the replicas that answered it)."""
        if not resets:
            return self
        rows = []
        for row in self.rows:
            mark = resets.get((row.target, row.service))
            if mark is not None and (row.checked_at is None or row.checked_at <= mark.at):
                row = _reset_row(row, mark)
            rows.append(row)
        replicas = {
            target: tuple(_reset_replica(replica, resets) for replica in members)
            for target, members in self.replicas.items()
        }
        return replace(self, rows=tuple(rows), replicas=replicas)


def _reset_row(row: ComponentRow, mark: ResetMark) -> ComponentRow:
    if not row.replica_breakers:
        return replace(row, reset_to=mark.state)
    breakers = tuple(
        (replica, mark.state if replica in mark.replicas else state)
        for replica, state in row.replica_breakers
    )
    reset = sum(replica in mark.replicas for replica, _ in row.replica_breakers)
    everywhere = reset == len(breakers)
    return replace(
        row,
        replica_breakers=breakers,
        replicas_reset=reset,
        reset_to=mark.state if everywhere else None,
    )


def _reset_replica(replica: ReplicaRow, resets: Mapping[tuple[str, str], ResetMark]) -> ReplicaRow:
    breakers, done = [], set()
    for service, state in replica.breakers:
        mark = resets.get((replica.target, service))
        if mark is not None and replica.replica in mark.replicas and replica.checked_at <= mark.at:
            breakers.append((service, mark.state))
            done.add(service)
        else:
            breakers.append((service, state))
    if not done:
        return replica
    return replace(replica, breakers=tuple(breakers), reset_services=frozenset(done))


class OverviewLoader:
    """Reads the main screen's figures for every configured target: a few reads, each for every
    target at once (a fleet of 1,000 targets is the same dozen statements as one of ten, not
    one query per component)."""

    def __init__(
        self,
        reader: HistoryRead,
        config: MonitorConfig,
        *,
        uptime_ttl: float = 600.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reader = reader
        self.config = config
        self.uptime_ttl = uptime_ttl
        self.watch = LeaseWatch(monotonic)
        self._uptime = UptimeCache(ttl=uptime_ttl)

    async def load(self, now: float) -> Overview:
        catalogue: dict[str, list[str]] = {}
        for component in await self.reader.components():
            if component.service != TARGET_COMPONENT:
                catalogue.setdefault(component.target, []).append(component.service)
        states = await self.reader.states()
        fleet = self._fleet(await self.reader.replicas())
        names = [target.name for target in self.config.targets]
        latest = await self.reader.latest_many([*names, *(c.name for c in self.config.checks)])
        checked = [
            (name, service)
            for name, found in latest.items()
            for service in (TARGET_COMPONENT, *(s.service for s in found.record.services))
        ]
        figures = Figures(
            states,
            await self.reader.recent_latencies_many(checked),
            await self._uptime.read(self.reader, checked, states, now),
        )
        rows: list[ComponentRow] = []
        stale: list[str] = []
        for target in self.config.targets:
            target_rows = _target_rows(
                target, catalogue.get(target.name, []), latest.get(target.name), figures
            )
            members = fleet.get(target.name, ())
            if target.replicas or len(members) > 1:
                target_rows = _with_replica_breakers(target_rows, members)
            else:
                fleet.pop(target.name, None)
            checked_at = target_rows[0].checked_at
            if checked_at is not None and now - checked_at > STALE_AFTER_INTERVALS * max(
                target.interval, 1.0
            ):
                stale.append(target.title)
            rows.extend(target_rows)
        for check in self.config.checks:
            row = _check_row(check, latest.get(check.name), figures)
            if row.checked_at is not None and now - row.checked_at > STALE_AFTER_INTERVALS * max(
                check.interval, 1.0
            ):
                stale.append(check.title)
            rows.append(row)
        rows = _in_maintenance(rows, await self.reader.maintenances(since=now), now)
        open_incidents = await self.reader.incidents(state=IncidentState.OPEN, limit=200)
        has_checks = any(row.checked_at is not None for row in rows)
        return Overview(
            now=now,
            rows=tuple(rows),
            alerts=tuple(await self.reader.alerts(active_only=True)),
            open_incidents=tuple(open_incidents),
            stale=tuple(stale),
            replicas=fleet,
            leadership=self.watch.judge(await self.reader.leader(), has_checks=has_checks),
            hold_down=self.config.alerts.hold_down,
        )

    async def load_leadership(self, *, has_checks: bool) -> Leadership | None:
        """The header alone: read on every tick, since a lease that stops moving writes nothing
        that :meth:`HistoryRead.last_change` would see."""
        return self.watch.judge(await self.reader.leader(), has_checks=has_checks)

    @staticmethod
    def _fleet(states: Sequence[ReplicaState]) -> dict[str, tuple[ReplicaRow, ...]]:
        grouped: dict[str, list[ReplicaRow]] = {}
        for state in states:
            if state.retired_at is None:
                grouped.setdefault(state.target, []).append(replica_row(state))
        return {target: tuple(members) for target, members in grouped.items()}


@dataclass(frozen=True, slots=True)
class Figures:
    """What the loader read for every component at once, for the rows to take theirs from."""

    states: Mapping[tuple[str, str], ComponentState]
    recent: Mapping[tuple[str, str], list[float | None]]
    uptimes: Mapping[tuple[str, str], Uptimes]


def _target_rows(
    target: Target, catalogued: list[str], latest: LatestCheck | None, figures: Figures
) -> list[ComponentRow]:
    if latest is None:
        head = ComponentRow(target.name, TARGET_COMPONENT, target.title, Status.UNKNOWN)
        services = [
            ComponentRow(target.name, s, target.service_title(s), Status.UNKNOWN)
            for s in catalogued
        ]
        return [head, *services]
    record = latest.record
    head = ComponentRow(
        target=target.name,
        service=TARGET_COMPONENT,
        title=target.title,
        status=record.status,
        response_ms=record.latency_ms,
        recent=tuple(figures.recent.get((target.name, TARGET_COMPONENT), ())),
        uptime=figures.uptimes.get((target.name, TARGET_COMPONENT), (None, None, None)),
        since=latest.since,
        checked_at=record.at,
        error=record.error,
    )
    rows = [head]
    seen = {sample.service: sample for sample in record.services}
    order = catalogued + sorted(s for s in seen if s not in catalogued)
    for service in order:
        sample = seen.get(service)
        if sample is None:
            rows.append(
                ComponentRow(
                    target.name,
                    service,
                    target.service_title(service),
                    Status.UNKNOWN,
                    checked_at=record.at,
                )
            )
            continue
        last_error = sample.details.get("last_error") or sample.details.get("reason")
        state = figures.states.get((target.name, service))
        rows.append(
            ComponentRow(
                target=target.name,
                service=service,
                title=target.service_title(service),
                status=sample.status,
                breaker=sample.breaker_state,
                response_ms=sample.response_ms,
                recent=tuple(figures.recent.get((target.name, service), ())),
                uptime=figures.uptimes.get((target.name, service), (None, None, None)),
                failures=sample.consecutive_failures,
                since=state.since if state is not None and state.status is sample.status else None,
                checked_at=record.at,
                error=str(last_error) if last_error else None,
                details=sample.details,
            )
        )
    return rows


def _check_row(check: Check, latest: LatestCheck | None, figures: Figures) -> ComponentRow:
    """A check's one row: a component of its own, keyed by its name like a target's row."""
    row = ComponentRow(
        check.name,
        TARGET_COMPONENT,
        check.title,
        Status.UNKNOWN,
        kind=check.kind.value,
        public=check.public,
    )
    if latest is None:
        return row
    record, key = latest.record, (check.name, TARGET_COMPONENT)
    return replace(
        row,
        status=record.status,
        response_ms=record.latency_ms,
        recent=tuple(figures.recent.get(key, ())),
        uptime=figures.uptimes.get(key, (None, None, None)),
        since=latest.since,
        checked_at=record.at,
        error=record.error,
        http_status=record.http_status,
    )


def _in_maintenance(
    rows: list[ComponentRow], windows: Sequence[Maintenance], now: float
) -> list[ComponentRow]:
    """Each row an active window covers, with that window (the first by start)."""
    active = [window for window in windows if window.active(now)]
    if not active:
        return rows
    return [
        replace(row, maintenance=window)
        if (window := next((w for w in active if w.covers(row.target, row.service, now)), None))
        else row
        for row in rows
    ]


def _with_replica_breakers(
    rows: list[ComponentRow], replicas: Sequence[ReplicaRow]
) -> list[ComponentRow]:
    """Each service row with every replica's own breaker state for it (the replicas that
    reported the service with a breaker)."""
    states: dict[str, list[tuple[str, str]]] = {}
    for replica in replicas:
        for service, state in replica.breakers:
            states.setdefault(service, []).append((replica.replica, state))
    return [
        row if row.is_target else replace(row, replica_breakers=tuple(states.get(row.service, ())))
        for row in rows
    ]


@dataclass(frozen=True, slots=True)
class Detail:
    """Everything the detail screen shows about one component."""

    row: ComponentRow
    recent: tuple[float | None, ...]
    hourly: tuple[LatencyPoint, ...]
    hours: tuple[UptimeBar, ...]
    days: tuple[UptimeBar, ...]
    incidents: tuple[Incident, ...]

    @property
    def breaker(self) -> Mapping[str, object]:
        value = self.row.details.get("circuit_breaker")
        return value if isinstance(value, dict) else {}

    @property
    def pool(self) -> Mapping[str, object]:
        value = self.row.details.get("details")
        if not isinstance(value, dict):
            return {}
        pool = value.get("pool")
        return pool if isinstance(pool, dict) else value


async def load_detail(reader: HistoryRead, row: ComponentRow, now: float) -> Detail:
    incidents = [
        incident
        for incident in await reader.incidents(limit=200, with_events=True)
        if incident.target == row.target and incident.service == row.service
    ]
    return Detail(
        row=row,
        recent=tuple(await reader.recent_latencies(row.target, row.service, limit=120)),
        hourly=tuple(await reader.latency_series(row.target, row.service, hours=24, now=now)),
        hours=tuple(await reader.bars(row.target, row.service, period="hour", count=24, now=now)),
        days=tuple(await reader.bars(row.target, row.service, period="day", count=30, now=now)),
        incidents=tuple(incidents),
    )
