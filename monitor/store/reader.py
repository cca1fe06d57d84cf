"""The read side of the store: what the TUI and the status page show.

The status page imports this module (and :mod:`monitor.store.models`) and nothing else of the
monitor. Long windows read roll-ups only: a 90-day view of 50 services is 4,500 daily rows, not
millions of raw checks.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from operator import itemgetter
from typing import Any, TypeVar

from sqlalchemy import Select, and_, func, inspect, or_, select
from sqlalchemy.engine import Connection, Engine, Row, RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.store.engine import open_engine, thread_engine
from monitor.store.models import (
    TARGET_COMPONENT,
    Alert,
    AlertState,
    BarSeries,
    CheckRecord,
    Component,
    ComponentState,
    Incident,
    IncidentEvent,
    IncidentState,
    LatencyPoint,
    LatestCheck,
    ServiceSample,
    Status,
    UptimeBar,
)
from monitor.store.schema import (
    alerts,
    checks,
    component_states,
    components,
    day_strips,
    incident_events,
    incidents,
    revisions,
    rollups,
    service_checks,
)
from monitor.store.strips import decode as decode_strip

T = TypeVar("T")
Columns = tuple[Any, ...]

HOUR = 3600
DAY = 86400
_PERIODS = {"hour": HOUR, "day": DAY}
STRIP_DAYS = 120
"""Days a day strip holds (a 90-day view, and a month to spare)."""


ROLLUP_FIGURES = (
    rollups.c.target,
    rollups.c.service,
    rollups.c.start,
    rollups.c.checks,
    rollups.c.up,
    rollups.c.worst,
    rollups.c.latency_sum,
    rollups.c.latency_count,
)
"""What a roll-up row gives a :class:`BarSeries` (``put``), after its component's key."""


def settled_day(now: float) -> int:
    """The start of the newest day a day strip may hold: the day before yesterday, whose
    roll-ups no check still in flight or in a write window can change."""
    return int(now // DAY) * DAY - 2 * DAY


@asynccontextmanager
async def open_reader(url: str) -> AsyncIterator[HistoryReader]:
    """A reader of the store at ``url`` for a process that only reads it (the status page, the
    TUI): read-only engines, reads of a SQLite file each whole in a worker thread; both engines
    disposed of on the way out."""
    engine = open_engine(url, read_only=True)
    threaded = thread_engine(url)
    try:
        yield HistoryReader(engine, threaded=threaded)
    finally:
        try:
            await engine.dispose()
        finally:
            if threaded is not None:
                threaded.dispose()


class HistoryReader:
    """Reads the store. Each method is one read on one connection.

    ``threaded``: a plain (synchronous) engine on the same SQLite file (:func:`thread_engine`).
    With it each read runs whole in a worker thread: one hand-off between threads per read.
    Without it a read runs through the async driver, and aiosqlite hands every call over to its
    connection's thread and back (cursor, execute, fetch, close, rollback: five hand-offs for one
    query). A cold status page makes ~10 queries; the hand-offs were most of its time.
    """

    def __init__(self, engine: AsyncEngine, *, threaded: Engine | None = None) -> None:
        self.engine = engine
        self.threaded = threaded
        # Each component's strip as read last, and decoded: a strip's text changes once a day
        # (the daemon's rebuild) and a status page reads them every few seconds.
        self._strips: dict[tuple[str, str], tuple[str, BarSeries]] = {}
        self._strip_table = False

    def clear_memos(self) -> None:
        """Forget decoded strips (a benchmark's first read after start)."""
        self._strips.clear()

    async def _read(self, read: Callable[[Connection], T]) -> T:
        if self.threaded is not None:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(_executor(), _read_with, self.threaded, read)
        async with self.engine.connect() as connection:
            return await connection.run_sync(read)

    def _has_strip_table(self, connection: Connection) -> bool:
        """False in a store whose daemon has not been upgraded yet (its roll-ups answer alone);
        asked until the table is there."""
        if not self._strip_table:
            self._strip_table = inspect(connection).has_table(day_strips.name)
        return self._strip_table

    def _strip(self, key: tuple[str, str], text: str) -> BarSeries:
        """The strip ``text`` decoded (only read: see :func:`_overlay`)."""
        known = self._strips.get(key)
        if known is None or known[0] != text:
            known = self._strips[key] = (text, decode_strip(text))
        return known[1]

    async def _rows(self, query: Select[*Columns]) -> Sequence[Row[*Columns]]:
        return await self._read(lambda connection: connection.execute(query).all())

    async def _mappings(self, query: Select[*Columns]) -> Sequence[RowMapping]:
        return await self._read(lambda connection: connection.execute(query).mappings().all())

    async def targets(self) -> list[str]:
        """Every target that has been checked."""
        rows = await self._rows(
            select(component_states.c.target).where(component_states.c.service == TARGET_COMPONENT)
        )
        return sorted(row[0] for row in rows)

    async def states(self) -> dict[tuple[str, str], ComponentState]:
        """Every component's current status and since when, keyed by (target, service)."""
        rows = await self._rows(
            select(
                component_states.c.target,
                component_states.c.service,
                component_states.c.status,
                component_states.c.since,
                component_states.c.checked_at,
            )
        )
        return {
            (target, service): ComponentState(Status.parse(status), since, checked_at)
            for target, service, status, since, checked_at in rows
        }

    async def components(self) -> list[Component]:
        """The catalogue the daemon wrote from its config, in display order."""
        rows = await self._mappings(select(components).order_by(components.c.position))
        return [
            Component(r["target"], r["service"], r["display_name"], r["group_name"], r["position"])
            for r in rows
        ]

    async def latest(self, target: str) -> LatestCheck | None:
        """The target's last check, its services, and since when its status has been what it is."""

        def read(
            connection: Connection,
        ) -> tuple[RowMapping, Sequence[RowMapping], float | None] | None:
            row = (
                connection.execute(
                    select(checks)
                    .where(checks.c.target == target)
                    .order_by(checks.c.at.desc(), checks.c.id.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
            if row is None:
                return None
            samples = (
                connection.execute(
                    select(service_checks)
                    .where(service_checks.c.check_id == row["id"])
                    .order_by(service_checks.c.service)
                )
                .mappings()
                .all()
            )
            last_other = connection.scalar(
                select(func.max(checks.c.at)).where(
                    checks.c.target == target, checks.c.status != row["status"]
                )
            )
            since = connection.scalar(
                select(func.min(checks.c.at)).where(
                    checks.c.target == target,
                    checks.c.at > (last_other if last_other is not None else -1.0),
                )
            )
            return row, samples, since

        found = await self._read(read)
        if found is None:
            return None
        row, samples, since = found
        record = CheckRecord(
            target=target,
            at=row["at"],
            status=Status.parse(row["status"]),
            latency_ms=row["latency_ms"],
            http_status=row["http_status"],
            error=row["error"],
            services=tuple(
                ServiceSample(
                    service=s["service"],
                    status=Status.parse(s["status"]),
                    response_ms=s["response_ms"],
                    consecutive_failures=s["consecutive_failures"],
                    breaker_state=s["breaker_state"],
                    details=json.loads(s["details"]) if s["details"] else {},
                )
                for s in samples
            ),
        )
        return LatestCheck(record, since)

    async def service_since(self, target: str, service: str, status: Status) -> float | None:
        """Since when ``service`` has been ``status`` without a break (None if never seen)."""

        def read(connection: Connection) -> float | None:
            last_other = connection.scalar(
                select(func.max(service_checks.c.at)).where(
                    service_checks.c.target == target,
                    service_checks.c.service == service,
                    service_checks.c.status != status.value,
                )
            )
            since = connection.scalar(
                select(func.min(service_checks.c.at)).where(
                    service_checks.c.target == target,
                    service_checks.c.service == service,
                    service_checks.c.at > (last_other if last_other is not None else -1.0),
                )
            )
            return float(since) if since is not None else None

        return await self._read(read)

    async def recent_latencies(
        self, target: str, service: str = TARGET_COMPONENT, *, limit: int = 30
    ) -> list[float | None]:
        """The latest ``limit`` response times, oldest first (for sparklines)."""
        if service == TARGET_COMPONENT:
            query = (
                select(checks.c.latency_ms)
                .where(checks.c.target == target)
                .order_by(checks.c.at.desc())
                .limit(limit)
            )
        else:
            query = (
                select(service_checks.c.response_ms)
                .where(
                    service_checks.c.target == target,
                    service_checks.c.service == service,
                )
                .order_by(service_checks.c.at.desc())
                .limit(limit)
            )
        return [row[0] for row in reversed(await self._rows(query))]

    async def bars(
        self,
        target: str,
        service: str = TARGET_COMPONENT,
        *,
        period: str = "day",
        count: int = 90,
        now: float,
    ) -> list[UptimeBar]:
        """One bar per period for the last ``count`` periods (oldest first; empty periods too)."""
        length = _PERIODS[period]
        last = int(now // length) * length
        first = last - (count - 1) * length
        rows = await self._mappings(
            select(rollups).where(
                rollups.c.target == target,
                rollups.c.service == service,
                rollups.c.period == period,
                rollups.c.start >= first,
            )
        )
        return _bars({row["start"]: row for row in rows}, first, last, length)

    async def bars_many(
        self,
        components: Sequence[tuple[str, str]],
        *,
        period: str = "day",
        count: int = 90,
        now: float,
    ) -> dict[tuple[str, str], list[UptimeBar]]:
        """:meth:`bars` for many components at once (see :meth:`series_many`)."""
        series = await self.series_many(components, period=period, count=count, now=now)
        return {key: figures.bars() for key, figures in series.items()}

    async def series_many(
        self,
        components: Sequence[tuple[str, str]],
        *,
        period: str = "day",
        count: int = 90,
        now: float,
    ) -> dict[tuple[str, str], BarSeries]:
        """What :meth:`bars` answers, for many components at once and as columns (a status
        page's 90 days of 50): daily figures from each component's day strip where it has one,
        and from the roll-ups for the days after it (and for components without one)."""
        if not components:
            return {}
        length = _PERIODS[period]
        last = int(now // length) * length
        first = last - (count - 1) * length

        def read(connection: Connection) -> dict[tuple[str, str], BarSeries]:
            found = {key: BarSeries.blank(first, length, count) for key in components}
            covered: dict[tuple[str, str], int] = {}
            if period == "day" and count <= STRIP_DAYS and self._has_strip_table(connection):
                strips = connection.execute(
                    select(
                        day_strips.c.target,
                        day_strips.c.service,
                        day_strips.c.last_day,
                        day_strips.c.days,
                    )
                )
                for target, service, last_day, days in strips:
                    series = found.get((target, service))
                    if series is not None:
                        _overlay(series, self._strip((target, service), days))
                        covered[(target, service)] = last_day
            since = max(first, min(covered.get(key, first - length) for key in found) + length)
            rows = connection.execute(
                select(*ROLLUP_FIGURES).where(
                    rollups.c.period == period,
                    rollups.c.start >= since,
                    rollups.c.start <= last,
                )
            )
            # The roll-ups are the truth: where both have a day, theirs wins.
            for target, service, start, checks_, up, worst, latency_sum, latency_count in rows:
                series = found.get((target, service))
                if series is not None:
                    series.put(start, checks_, up, worst, latency_sum, latency_count)
            return found

        return await self._read(read)

    async def latency_series_many(
        self, components: Sequence[tuple[str, str]], *, hours: int = 24, now: float
    ) -> dict[tuple[str, str], list[LatencyPoint]]:
        """:meth:`latency_series` for many components in one query."""
        if not components:
            return {}
        first = int(now // HOUR) * HOUR - (hours - 1) * HOUR
        rows = await self._rows(
            select(
                rollups.c.target,
                rollups.c.service,
                rollups.c.start,
                rollups.c.latency_sum,
                rollups.c.latency_count,
                rollups.c.latency_max,
            ).where(
                # Coarse (exact below), and what lets the primary key lead the search.
                rollups.c.target.in_({target for target, _ in components}),
                rollups.c.service.in_({service for _, service in components}),
                rollups.c.period == "hour",
                rollups.c.start >= first,
                rollups.c.latency_count > 0,
            )
            # Sorted here, not by the query: with ORDER BY, SQLite walks the (period, start)
            # index over every component's hours instead of the primary key over these.
        )
        series: dict[tuple[str, str], list[LatencyPoint]] = {key: [] for key in components}
        for target, service, start, latency_sum, latency_count, latency_max in sorted(
            rows, key=itemgetter(2)
        ):
            points = series.get((target, service))
            if points is not None:
                points.append(LatencyPoint(float(start), latency_sum / latency_count, latency_max))
        return series

    async def uptime(
        self, target: str, service: str = TARGET_COMPONENT, *, seconds: float, now: float
    ) -> float | None:
        """Percentage of checks in which the component served, over the window (roll-ups only:
        hourly for windows up to two days, daily beyond)."""
        period = "hour" if seconds <= 2 * DAY else "day"
        length = _PERIODS[period]
        # The first period that lies wholly inside the window.
        first = math.ceil((now - seconds) / length) * length
        rows = await self._rows(
            select(func.sum(rollups.c.checks), func.sum(rollups.c.up)).where(
                rollups.c.target == target,
                rollups.c.service == service,
                rollups.c.period == period,
                rollups.c.start >= first,
            )
        )
        if not rows or not rows[0][0]:
            return None
        return 100.0 * float(rows[0][1]) / float(rows[0][0])

    async def latency_series(
        self, target: str, service: str = TARGET_COMPONENT, *, hours: int = 24, now: float
    ) -> list[LatencyPoint]:
        """Hourly average and maximum response time over the last ``hours`` (oldest first)."""
        first = int(now // HOUR) * HOUR - (hours - 1) * HOUR
        rows = await self._mappings(
            select(rollups)
            .where(
                rollups.c.target == target,
                rollups.c.service == service,
                rollups.c.period == "hour",
                rollups.c.start >= first,
                rollups.c.latency_count > 0,
            )
            .order_by(rollups.c.start)
        )
        return [
            LatencyPoint(float(r["start"]), r["latency_sum"] / r["latency_count"], r["latency_max"])
            for r in rows
        ]

    async def incidents(
        self,
        *,
        state: IncidentState | None = None,
        since: float | None = None,
        limit: int = 50,
        with_events: bool = False,
        and_open: bool = False,
    ) -> list[Incident]:
        """The newest ``limit`` incidents that match, newest first; ``and_open``: every open
        incident that matches too (up to ``limit`` of them), however old (a status page lists
        those first)."""
        conditions = []
        if state is not None:
            conditions.append(incidents.c.state == state.value)
        if since is not None:
            conditions.append(incidents.c.updated_at >= since)
        query = (
            select(incidents)
            .where(and_(True, *conditions))
            .order_by(incidents.c.opened_at.desc())
            .limit(limit)
        )
        if and_open:
            newest = query.with_only_columns(incidents.c.id)
            open_ = newest.where(incidents.c.state == IncidentState.OPEN.value)
            query = (
                select(incidents)
                .where(or_(incidents.c.id.in_(newest), incidents.c.id.in_(open_)))
                .order_by(incidents.c.opened_at.desc())
            )

        def read(connection: Connection) -> tuple[Sequence[RowMapping], Sequence[RowMapping]]:
            rows = connection.execute(query).mappings().all()
            if not (with_events and rows):
                return rows, ()
            events = connection.execute(
                select(incident_events)
                .where(incident_events.c.incident_id.in_([r["id"] for r in rows]))
                .order_by(incident_events.c.at, incident_events.c.id)
            )
            return rows, events.mappings().all()

        rows, event_rows = await self._read(read)
        events: dict[int, list[IncidentEvent]] = {}
        for event in event_rows:
            events.setdefault(event["incident_id"], []).append(_event(event))
        return [_incident(row, events.get(row["id"], [])) for row in rows]

    async def incident(self, incident_id: int) -> Incident | None:
        def read(connection: Connection) -> tuple[RowMapping, Sequence[RowMapping]] | None:
            row = (
                connection.execute(select(incidents).where(incidents.c.id == incident_id))
                .mappings()
                .first()
            )
            if row is None:
                return None
            events = connection.execute(
                select(incident_events)
                .where(incident_events.c.incident_id == incident_id)
                .order_by(incident_events.c.at, incident_events.c.id)
            )
            return row, events.mappings().all()

        found = await self._read(read)
        if found is None:
            return None
        row, events = found
        return _incident(row, [_event(e) for e in events])

    async def alerts(self, *, active_only: bool = True, limit: int = 100) -> list[Alert]:
        query = select(alerts).order_by(alerts.c.started_at.desc()).limit(limit)
        if active_only:
            query = query.where(alerts.c.state == AlertState.FIRING.value)
        rows = await self._mappings(query)
        return [
            Alert(
                id=r["id"],
                rule=r["rule"],
                target=r["target"],
                service=r["service"],
                state=AlertState(r["state"]),
                summary=r["summary"],
                started_at=r["started_at"],
                resolved_at=r["resolved_at"],
            )
            for r in rows
        ]

    async def last_change(self) -> float:
        """A value that grows whenever anything is written (for caches and live refresh).

        Each table's newest id is read on its own: ``max()`` over a join of empty and non-empty
        tables would be NULL until every table had a row."""
        newest = [
            select(func.coalesce(func.max(table.c.id), 0)).scalar_subquery()
            for table in (checks, incident_events, alerts)
        ]
        newest.append(select(func.coalesce(func.sum(revisions.c.value), 0)).scalar_subquery())
        rows = await self._rows(select(*newest))
        return float(sum(rows[0])) if rows else 0.0


_READ_THREADS = 4
"""Worker threads for threaded reads, their own: a read stuck on a locked store (up to its busy
timeout) must not hold up what else runs in asyncio's default pool (DNS lookups, for one)."""
_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(_READ_THREADS, thread_name_prefix="store-read")
    return _pool


def _read_with(engine: Engine, read: Callable[[Connection], T]) -> T:
    """``read`` on a connection of a synchronous engine (in a worker thread)."""
    with engine.connect() as connection:
        return read(connection)


def _overlay(series: BarSeries, strip: BarSeries) -> None:
    """Copy the days ``series`` and ``strip`` share into ``series`` (as slices, not day by day)."""
    skip = (series.first - strip.first) // series.length  # days of the strip before the series
    lo = max(0, -skip)
    hi = min(len(series), len(strip) - skip)
    if lo >= hi:
        return
    theirs = slice(lo + skip, hi + skip)
    series.checks[lo:hi] = strip.checks[theirs]
    series.up[lo:hi] = strip.up[theirs]
    series.worst[lo:hi] = strip.worst[theirs]
    series.average[lo:hi] = strip.average[theirs]


def _bars(found: dict[int, RowMapping], first: int, last: int, length: int) -> list[UptimeBar]:
    bars = []
    for start in range(first, last + 1, length):
        row = found.get(start)
        bars.append(
            _blank(start)
            if row is None
            else _bar(
                start,
                row["checks"],
                row["up"],
                row["worst"],
                row["latency_sum"],
                row["latency_count"],
            )
        )
    return bars


def _bar(
    start: int, checks: int, up: int, worst: int, latency_sum: float, latency_count: int
) -> UptimeBar:
    """One roll-up row as a bar."""
    average = latency_sum / latency_count if latency_count else None
    return UptimeBar(float(start), checks, up, Status.from_severity(worst), average)


def _blank(start: int) -> UptimeBar:
    """A period nothing was checked in."""
    return UptimeBar(float(start), 0, 0, Status.UNKNOWN, None)


def _event(r: RowMapping) -> IncidentEvent:
    return IncidentEvent(
        at=r["at"],
        kind=r["kind"],
        status=Status.parse(r["status"]) if r["status"] else None,
        text=r["text"],
        public=bool(r["public"]),
        actor=r["actor"],
    )


def _incident(r: RowMapping, events: list[IncidentEvent]) -> Incident:
    return Incident(
        id=r["id"],
        target=r["target"],
        service=r["service"],
        state=IncidentState(r["state"]),
        impact=Status.parse(r["impact"]),
        title=r["title"],
        opened_at=r["opened_at"],
        resolved_at=r["resolved_at"],
        updated_at=r["updated_at"],
        events=tuple(events),
    )
