"""Reading the monitor's store: the status page's only door to the monitor.

Everything goes through the store's read port (:class:`monitor.store.ports.HistoryRead`), and
what goes wrong comes back as :mod:`monitor.store.errors`.

The long history is read through the reader's ``series_many`` and ``latency_series_many``: one
query for all components, not one per component.

A store whose tables do not exist yet (the monitor never ran: ``StoreNotInitialised``) reads as
empty.

A status page is upgraded on its own, before or after the monitor, in a rolling deploy, so it
reads stores of older schemas without upgrading them (it never writes). The reader answers the
90 days from the roll-ups where a store has no day strips yet; if the long history cannot be read
at all (a table still missing, or a column: ``StoreSchemaMismatch``), the page keeps serving the
current statuses with empty bars, not a 503: the statuses are what a visitor came for. A store
whose statuses themselves cannot be read is unavailable (503) as ever.

Only public components are read into a board, here and nowhere else (the rule is the store's:
:func:`monitor.store.public_models.public_incident`): every output — the HTML, each ``/api/v2``
document, the Atom feed, the badges, the subscription form — is made from the board, so none of
them names a private ``[[checks]]`` entry. An incident or a maintenance window is shown with its
public components alone, and not at all when none of them is public (an incident's page is then
the 404 of an unknown number). A store from before revision 0007 holds no checks: every
component in it is public.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from typing import TypeVar

from monitor.store.errors import StoreNotInitialised, StoreSchemaMismatch
from monitor.store.models import TARGET_COMPONENT, BarSeries, Component, IncidentState, Status
from monitor.store.ports import HistoryRead
from monitor.store.public_models import (
    Maintenance,
    private_keys,
    public_incident,
    public_window,
)
from statuspage.incidents import build_incident
from statuspage.maintenance import build_maintenance, with_declared
from statuspage.model import (
    Board,
    ComponentHistory,
    ComponentView,
    IncidentView,
    PageInfo,
    build_groups,
    build_history,
    critical_days,
)

Key = tuple[str, str]
T = TypeVar("T")
"""(target, service) of a component."""

HISTORY_DAYS = 90
DAY = 86400
LATENCY_HOURS = 24
INCIDENT_LIMIT = 50
MAINTENANCE_DAYS = 30
"""Ended and cancelled windows stay in ``scheduled-maintenances.json`` this long."""
MAINTENANCE_LIMIT = 50
"""Statuspage's "the 50 most recent scheduled maintenances"."""


class StoreSource:
    def __init__(
        self,
        reader: HistoryRead,
        page: PageInfo,
        *,
        stale_after: float,
    ) -> None:
        self.reader = reader
        self.page = page
        self.stale_after = stale_after

    async def change_token(self) -> float:
        """Grows whenever a check, an incident event or an alert is written."""
        try:
            return await self.reader.last_change()
        except StoreNotInitialised:
            return 0.0

    async def board(self, now: float) -> Board:
        try:
            return await self._board(now)
        except StoreNotInitialised:
            return Board(self.page, now, None, (), (), self.stale_after)

    async def _board(self, now: float) -> Board:
        # Four independent reads at once, each on its own pooled connection.
        catalogue, current, listed, windows = await asyncio.gather(
            self.reader.components(),
            self.reader.states(),
            self.reader.incidents(limit=INCIDENT_LIMIT, with_events=True, and_open=True),
            self._maintenances(now),
        )
        if not catalogue:  # a daemon that wrote no catalogue: its targets, by their own names
            targets = sorted(t for t, service in current if service == TARGET_COMPONENT)
            catalogue = [Component(t, TARGET_COMPONENT, t, "", n) for n, t in enumerate(targets)]
        # Private checks left out here, once, for every output (see the module's docstring).
        private = private_keys(catalogue)
        if private:
            catalogue = [c for c in catalogue if c.public]
            listed = [p for i in listed if (p := public_incident(i, private)) is not None]
            windows = [m for w in windows if (m := public_window(w, private)) is not None]
        states: dict[tuple[str, str], tuple[Status, float | None]] = {}
        for component in catalogue:
            target = current.get((component.target, TARGET_COMPONENT))
            if target is None:  # never checked
                continue
            key = (component.target, component.service)
            state = current.get(key)
            if state is not None and state.checked_at >= target.checked_at:
                states[key] = (state.status, state.since)
            elif target.status is Status.UNREACHABLE:  # nothing behind it answers
                states[key] = (Status.UNREACHABLE, target.since)
        groups = with_declared(build_groups(catalogue, states), listed, windows, now)
        components = {c.key: c for g in groups for c in g.components}
        open_ = [i for i in listed if i.state is IncidentState.OPEN]
        incidents = [*open_, *(i for i in listed if i.state is not IncidentState.OPEN)]
        views = tuple(components.values())
        checked = (current.get((t, TARGET_COMPONENT)) for t in {c.target for c in catalogue})
        data_at = max((state.checked_at for state in checked if state is not None), default=None)
        return Board(
            page=self.page,
            now=now,
            data_at=data_at,
            groups=groups,
            incidents=tuple(build_incident(i, components) for i in incidents),
            stale_after=self.stale_after,
            maintenances=tuple(build_maintenance(w, views, now) for w in windows),
            private=private,
        )

    async def _maintenances(self, now: float) -> list[Maintenance]:
        """Upcoming, active and recent windows (the most recent :data:`MAINTENANCE_LIMIT` by
        start), cancelled ones too; none from a store of an older schema (the page still
        serves its statuses, as with the long history)."""
        since = now - MAINTENANCE_DAYS * DAY
        try:
            windows = await self.reader.maintenances(since=since, include_cancelled=True, limit=200)
        except (StoreNotInitialised, StoreSchemaMismatch):
            return []
        return sorted(windows, key=lambda w: (w.starts_at, w.id))[-MAINTENANCE_LIMIT:]

    async def history(self, board: Board) -> dict[str, ComponentHistory]:
        """The 90 daily bars of every component, and the 24 h response times of targets."""
        now = board.now
        components = board.components
        # Two queries at once: each runs on its own connection (and, on SQLite, its own thread).
        days, latency = await asyncio.gather(
            _unless_older(
                self.reader.series_many([c.key for c in components], count=HISTORY_DAYS, now=now)
            ),
            _unless_older(
                self.reader.latency_series_many(
                    [c.key for c in components if c.is_target], hours=LATENCY_HOURS, now=now
                )
            ),
        )
        first = (int(now // DAY) - (HISTORY_DAYS - 1)) * DAY
        start = int(now // 3600) * 3600 - (LATENCY_HOURS - 1) * 3600.0
        blank = BarSeries.blank(first, DAY, HISTORY_DAYS)  # only read
        services: dict[str, list[tuple[BarSeries, bool]]] = {}  # per target, for its bars
        for c in components:
            if not c.is_target and c.critical and c.key in days:
                services.setdefault(c.target, []).append((days[c.key], True))
        return {
            c.id: build_history(
                series := days.get(c.key, blank),
                latency.get(c.key, []),
                start,
                critical_days(c, series, services.get(c.target, ())),
            )
            for c in components
        }

    async def incident(self, incident_id: int, board: Board) -> IncidentView | None:
        try:
            incident = await self.reader.incident(incident_id)
        except StoreNotInitialised:
            return None
        if incident is not None:
            incident = public_incident(incident, board.private)
        if incident is None:  # unknown, or about private components alone: not found
            return None
        components: dict[tuple[str, str], ComponentView] = {c.key: c for c in board.components}
        return build_incident(incident, components)


async def _unless_older(
    read: Awaitable[Mapping[Key, T]],
) -> Mapping[Key, T]:
    """What ``read`` answers; nothing for a store of an older schema (no bars rather than no
    page: see the module's docstring)."""
    try:
        return await read
    except (StoreNotInitialised, StoreSchemaMismatch):
        return {}
