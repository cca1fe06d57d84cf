"""Reads of incidents: their timelines and the components each one's cause affects."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, and_, or_, select
from sqlalchemy.engine import Connection, RowMapping

from monitor.store.errors import StoreNotInitialised, StoreSchemaMismatch
from monitor.store.models import (
    Incident,
    IncidentComponent,
    IncidentEvent,
    IncidentOrigin,
    IncidentState,
    Status,
)
from monitor.store.reading.base import ReadBase
from monitor.store.schema import incident_components, incident_events, incidents


class IncidentReads(ReadBase):
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

        return await self._incidents(query, with_events=with_events)

    async def incident(self, incident_id: int) -> Incident | None:
        found = await self._incidents(
            select(incidents).where(incidents.c.id == incident_id), with_events=True
        )
        return found[0] if found else None

    async def open_incident_for(self, target: str, service: str) -> Incident | None:
        """The newest open incident whose cause is this component or whose affected components
        include it (the one an ack, a silence, a reset or a note is written to); None if none.
        Its components, not its events."""
        found = await self._incidents(open_incident_query(target, service), with_events=False)
        return found[0] if found else None

    async def _incidents(self, query: Select[Any], *, with_events: bool) -> list[Incident]:
        """The incidents ``query`` selects (whole rows), each with its components (the cause
        first) and, ``with_events``, its timeline: three statements on one connection, however
        many incidents.

        A store of an older schema, which a status page upgraded before its monitor reads, gives
        what it holds: no ``incident_components`` (before 0005), incidents listing their cause
        alone; no written incidents' columns (before 0006), automatic incidents nobody wrote."""
        try:
            found = await self._read(_IncidentRead(query, with_events, with_components=True))
        except StoreSchemaMismatch:
            # (On PostgreSQL the failed statement spoilt that transaction: read again.)
            found = await self._legacy(query, with_events)
        except StoreNotInitialised:
            found = await self._read(_IncidentRead(query, with_events, with_components=False))
        return incidents_of(found)

    async def _legacy(self, query: Select[Any], with_events: bool) -> Found:
        """The read of a store from before revision 0006: its columns alone."""
        old = query.with_only_columns(*_columns(incidents, _WRITTEN_COLUMNS))
        read = _IncidentRead(old, with_events, with_components=True, legacy=True)
        try:
            return await self._read(read)
        except StoreNotInitialised:
            return await self._read(replace(read, with_components=False))


_WRITTEN_COLUMNS = frozenset({"origin", "phase", "written_by", "postmortem", "postmortem_at"})
"""The columns revision 0006 added to ``incidents`` and (``phase``) ``incident_events``."""


def _columns(table: Table, without: frozenset[str]) -> list[ColumnElement[Any]]:
    return [c for c in table.c if c.name not in without]


def open_incident_query(target: str, service: str) -> Select[Any]:
    """The newest open incident of which (target, service) is the cause or an affected
    component (also what a breaker reset is written to)."""
    affected = select(incident_components.c.incident_id).where(
        incident_components.c.target == target, incident_components.c.service == service
    )
    return (
        select(incidents)
        .where(
            incidents.c.state == IncidentState.OPEN.value,
            or_(
                and_(incidents.c.target == target, incidents.c.service == service),
                incidents.c.id.in_(affected),
            ),
        )
        .order_by(incidents.c.opened_at.desc(), incidents.c.id.desc())
        .limit(1)
    )


Found = tuple[Sequence[RowMapping], Sequence[RowMapping], Sequence[RowMapping]]


def read_incidents(query: Select[Any]) -> _IncidentRead:
    """The read of the incidents ``query`` selects with their events and components, for a
    connection's ``run_sync`` (a writer re-reading what it wrote, in its transaction)."""
    return _IncidentRead(query, with_events=True, with_components=True)


def incidents_of(found: Found) -> list[Incident]:
    """The incidents of one :class:`_IncidentRead`, each with its events and components."""
    rows, event_rows, component_rows = found
    events: dict[int, list[IncidentEvent]] = {}
    for event in event_rows:
        events.setdefault(event["incident_id"], []).append(_event(event))
    components: dict[int, list[IncidentComponent]] = {}
    for c in component_rows:
        components.setdefault(c["incident_id"], []).append(
            IncidentComponent(
                c["target"], c["service"], Status.parse(c["status"]), bool(c["critical"])
            )
        )
    return [
        _incident(row, events.get(row["id"], []), components.get(row["id"], [])) for row in rows
    ]


@dataclass(frozen=True, slots=True)
class _IncidentRead:
    """One read of incidents on one connection: their rows, then their events and components
    each in one statement (``IN`` the ids found), never one per incident."""

    query: Select[Any]
    with_events: bool
    with_components: bool
    legacy: bool = False
    """A store from before 0006: its events have no ``phase``."""

    def __call__(self, connection: Connection) -> Found:
        rows = connection.execute(self.query).mappings().all()
        if not rows:
            return rows, (), ()
        ids = [r["id"] for r in rows]
        events = _children(
            connection,
            self.with_events,
            incident_events,
            ids,
            (incident_events.c.at, incident_events.c.id),
            without=_WRITTEN_COLUMNS if self.legacy else frozenset(),
        )
        components = _children(
            connection,
            self.with_components,
            incident_components,
            ids,
            (incident_components.c.target, incident_components.c.service),
        )
        return rows, events, components


def _children(
    connection: Connection,
    wanted: bool,
    table: Table,
    ids: Sequence[int],
    order: tuple[ColumnElement[Any], ...],
    *,
    without: frozenset[str] = frozenset(),
) -> Sequence[RowMapping]:
    """The rows of ``table`` belonging to the incidents ``ids``, in ``order`` (none when not
    ``wanted``), all their columns but ``without``."""
    if not wanted:
        return ()
    query = select(*_columns(table, without)).where(table.c.incident_id.in_(ids)).order_by(*order)
    return connection.execute(query).mappings().all()


def _event(r: RowMapping) -> IncidentEvent:
    return IncidentEvent(
        at=r["at"],
        kind=r["kind"],
        status=Status.parse(r["status"]) if r["status"] else None,
        text=r["text"],
        public=bool(r["public"]),
        actor=r["actor"],
        phase=r.get("phase"),
    )


def _incident(
    r: RowMapping, events: list[IncidentEvent], components: list[IncidentComponent]
) -> Incident:
    cause = (r["target"], r["service"])
    components.sort(key=lambda c: (c.target, c.service) != cause)  # the cause first (stable)
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
        components=tuple(components),
        origin=IncidentOrigin(r.get("origin") or IncidentOrigin.AUTO.value),
        phase=r.get("phase"),
        written_by=r.get("written_by"),
        postmortem=r.get("postmortem"),
        postmortem_at=r.get("postmortem_at"),
    )
