"""Reads of incidents and their timelines."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, or_, select
from sqlalchemy.engine import Connection, RowMapping

from monitor.store.models import Incident, IncidentEvent, IncidentState, Status
from monitor.store.reading.base import ReadBase
from monitor.store.schema import incident_events, incidents


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
