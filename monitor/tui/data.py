"""What the TUI shows, read from the store as plain values.

Screens render these values and never query the store themselves; :class:`OverviewLoader` and
:func:`load_detail` are the only readers. Uptime figures read roll-ups and change slowly, so they
are cached for a minute: a refresh after each new check costs a few indexed queries per component.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from monitor.config import MonitorConfig, Target
from monitor.store import (
    TARGET_COMPONENT,
    Alert,
    ComponentState,
    HistoryRead,
    Incident,
    IncidentState,
    LatencyPoint,
    Status,
    UptimeBar,
)

HOUR = 3600.0
DAY = 86400.0
UPTIME_WINDOWS = (DAY, 7 * DAY, 30 * DAY)
STALE_AFTER_INTERVALS = 3
"""A target whose last check is older than this many intervals has stale figures."""


@dataclass(frozen=True, slots=True)
class ComponentRow:
    """A target (``service == ""``) or one of its services, as the latest check saw it."""

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

    @property
    def key(self) -> str:
        return f"{self.target}::{self.service}"

    @property
    def is_target(self) -> bool:
        return self.service == TARGET_COMPONENT

    @property
    def shown_breaker(self) -> str | None:
        return self.reset_to or self.breaker

    def matches_name(self, needle: str) -> bool:
        return any(needle in word.lower() for word in (self.target, self.service, self.title))

    def matches(self, needle: str) -> bool:
        words = (self.status.value, self.breaker or "")
        return self.matches_name(needle) or any(needle in word.lower() for word in words)


@dataclass(frozen=True, slots=True)
class ResetMark:
    state: str
    at: float


@dataclass(frozen=True, slots=True)
class Overview:
    now: float
    rows: tuple[ComponentRow, ...] = ()
    alerts: tuple[Alert, ...] = ()
    open_incidents: tuple[Incident, ...] = ()
    stale: tuple[str, ...] = ()
    """Titles of targets whose last check is old (is the daemon running?)."""

    def row(self, key: str) -> ComponentRow | None:
        return next((row for row in self.rows if row.key == key), None)

    def open_incident(self, target: str, service: str) -> Incident | None:
        """The open incident of that component; for a target, its own or else any of its own."""
        own = [i for i in self.open_incidents if i.target == target and i.service == service]
        if own or service != TARGET_COMPONENT:
            return own[0] if own else None
        return next((i for i in self.open_incidents if i.target == target), None)

    def with_resets(self, resets: Mapping[tuple[str, str], ResetMark]) -> Overview:
        """Rows whose breaker was reset from here after their last check show the answered state."""
        rows = []
        for row in self.rows:
            mark = resets.get((row.target, row.service))
            if mark is not None and (row.checked_at is None or row.checked_at <= mark.at):
                row = replace(row, reset_to=mark.state)
            rows.append(row)
        return replace(self, rows=tuple(rows))


@dataclass(frozen=True, slots=True)
class Summary:
    """The banner: the worst state of anything watched, in a headline and one line of detail."""

    level: Status
    headline: str
    detail: str


def summarize(overview: Overview) -> Summary:
    checked = [row for row in overview.rows if row.checked_at is not None]
    if not checked:
        return Summary(
            Status.UNKNOWN,
            "NO DATA YET",
            "No checks in the store yet: is `questcity monitor` running with this config?",
        )
    worst = max((row.status for row in checked), key=lambda s: s.severity)
    parts = []
    for target in overview.rows:
        if not target.is_target or target.status in (Status.HEALTHY, Status.UNKNOWN):
            continue
        services = [
            f"{row.title} {row.status.value}"
            for row in overview.rows
            if row.target == target.target
            and not row.is_target
            and row.status not in (Status.HEALTHY, Status.UNKNOWN)
        ]
        parts.append(
            f"{target.title} {target.status.value}"
            + (f" ({', '.join(services)})" if services else "")
        )
    if overview.alerts:
        count = len(overview.alerts)
        parts.append(f"{count} alert{'s' if count != 1 else ''} firing")
    if overview.stale:
        parts.append(f"no recent check of {', '.join(overview.stale)}: is the daemon running?")
    if worst is Status.HEALTHY:
        headline = "ALL SYSTEMS OPERATIONAL"
    elif worst is Status.DEGRADED:
        headline = "DEGRADED"
    else:
        headline = "OUTAGE"
    return Summary(worst, headline, " · ".join(parts) or "Every check passed.")


class OverviewLoader:
    """Reads the main screen's figures for every configured target."""

    def __init__(
        self, reader: HistoryRead, config: MonitorConfig, *, uptime_ttl: float = 60.0
    ) -> None:
        self.reader = reader
        self.config = config
        self.uptime_ttl = uptime_ttl
        self._uptime: dict[tuple[str, str], tuple[float, tuple[float | None, ...]]] = {}

    async def load(self, now: float) -> Overview:
        catalogue: dict[str, list[str]] = {}
        for component in await self.reader.components():
            if component.service != TARGET_COMPONENT:
                catalogue.setdefault(component.target, []).append(component.service)
        rows: list[ComponentRow] = []
        stale: list[str] = []
        states = await self.reader.states()
        for target in self.config.targets:
            target_rows = await self._target_rows(
                target, catalogue.get(target.name, []), states, now
            )
            checked_at = target_rows[0].checked_at
            if checked_at is not None and now - checked_at > STALE_AFTER_INTERVALS * max(
                target.interval, 1.0
            ):
                stale.append(target.title)
            rows.extend(target_rows)
        open_incidents = await self.reader.incidents(state=IncidentState.OPEN, limit=200)
        return Overview(
            now=now,
            rows=tuple(rows),
            alerts=tuple(await self.reader.alerts(active_only=True)),
            open_incidents=tuple(open_incidents),
            stale=tuple(stale),
        )

    async def _target_rows(
        self,
        target: Target,
        catalogued: list[str],
        states: Mapping[tuple[str, str], ComponentState],
        now: float,
    ) -> list[ComponentRow]:
        latest = await self.reader.latest(target.name)
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
            recent=tuple(await self.reader.recent_latencies(target.name)),
            uptime=await self._uptimes(target.name, TARGET_COMPONENT, now),
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
            state = states.get((target.name, service))
            rows.append(
                ComponentRow(
                    target=target.name,
                    service=service,
                    title=target.service_title(service),
                    status=sample.status,
                    breaker=sample.breaker_state,
                    response_ms=sample.response_ms,
                    recent=tuple(await self.reader.recent_latencies(target.name, service)),
                    uptime=await self._uptimes(target.name, service, now),
                    failures=sample.consecutive_failures,
                    since=state.since
                    if state is not None and state.status is sample.status
                    else None,
                    checked_at=record.at,
                    error=str(last_error) if last_error else None,
                    details=sample.details,
                )
            )
        return rows

    async def _uptimes(
        self, target: str, service: str, now: float
    ) -> tuple[float | None, float | None, float | None]:
        cached = self._uptime.get((target, service))
        if cached is not None and 0 <= now - cached[0] < self.uptime_ttl:
            day, week, month = cached[1]
            return day, week, month
        values = [
            await self.reader.uptime(target, service, seconds=window, now=now)
            for window in UPTIME_WINDOWS
        ]
        self._uptime[(target, service)] = (now, tuple(values))
        return values[0], values[1], values[2]


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
