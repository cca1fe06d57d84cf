"""Writes of incidents: opened with the components their cause affects, those components and
the title kept current, updated with events (state changes, resets, notes), resolved.

Opening and resolving queue what subscribers are told (``opened``, ``resolved``) in their own
transaction (:mod:`monitor.store.writing.messages`). An incident a person took over
(``written_by`` set: :mod:`monitor.store.writing.written`) is theirs: the daemon's writes no
longer resolve it, retitle it nor put public text into it (they land as internal events)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from sqlalchemy import case, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.store.models import (
    IncidentComponent,
    IncidentEvent,
    IncidentState,
    Status,
    component_key,
)
from monitor.store.reading.incidents import open_incident_query
from monitor.store.schema import incident_components, incident_events, incidents
from monitor.store.writing.base import WriteBase
from monitor.store.writing.messages import MESSAGE_SIZE, NAME_SIZE, bounded, queue_message

TITLE_SIZE = 300
"""``incidents.title``."""


class IncidentWrites(WriteBase):
    async def open_incident(
        self,
        target: str,
        service: str,
        status: Status,
        at: float,
        title: str,
        components: Sequence[IncidentComponent] = (),
    ) -> int:
        async with self._begin() as connection:
            result = await connection.execute(
                insert(incidents).values(
                    target=target,
                    service=service,
                    state=IncidentState.OPEN.value,
                    impact=status.value,
                    title=title[:TITLE_SIZE],
                    opened_at=at,
                    resolved_at=None,
                    updated_at=at,
                )
            )
            incident_id = int(result.inserted_primary_key[0])  # type: ignore[index]
            await self._components(connection, incident_id, components)
            await self._event(
                connection,
                incident_id,
                IncidentEvent(
                    at=at,
                    kind="opened",
                    status=status,
                    public=True,
                    text=f"We are investigating: {title}.",
                ),
            )
            keys = [component_key(c.target, c.service) for c in components]
            await queue_message(
                connection,
                event="opened",
                phase="investigating",
                text="",  # the machine's own words are the sender's, in each reader's language
                components=keys or [component_key(target, service)],
                at=at,
                incident_id=incident_id,
            )
        return incident_id

    async def set_incident_components(
        self, incident_id: int, components: Sequence[IncidentComponent], at: float
    ) -> None:
        """Replace the incident's affected components (each with its worst status so far)."""
        async with self._begin() as connection:
            await connection.execute(
                delete(incident_components).where(incident_components.c.incident_id == incident_id)
            )
            await self._components(connection, incident_id, components)
            await connection.execute(
                update(incidents).where(incidents.c.id == incident_id).values(updated_at=at)
            )
            await self._revise(connection, "incidents")

    async def retitle_incident(self, incident_id: int, title: str, impact: Status) -> None:
        """Set the incident's title and public impact (its cause's components changed); the
        title of an incident a person took over stays theirs."""
        async with self._begin() as connection:
            await connection.execute(
                update(incidents)
                .where(incidents.c.id == incident_id)
                .values(
                    title=case(
                        (incidents.c.written_by.is_(None), title[:TITLE_SIZE]),
                        else_=incidents.c.title,
                    ),
                    impact=impact.value,
                )
            )
            await self._revise(connection, "incidents")

    async def _components(
        self,
        connection: AsyncConnection,
        incident_id: int,
        components: Sequence[IncidentComponent],
    ) -> None:
        """Insert the incident's component rows; a component named twice is one row, with the
        worse status (and critical if either says so)."""
        rows: dict[tuple[str, str], IncidentComponent] = {}
        for c in components:
            seen = rows.get((c.target, c.service))
            if seen is not None:
                worse = c.status if c.status.severity > seen.status.severity else seen.status
                c = IncidentComponent(c.target, c.service, worse, c.critical or seen.critical)
            rows[(c.target, c.service)] = c
        if rows:
            await connection.execute(
                insert(incident_components),
                [
                    {
                        "incident_id": incident_id,
                        "target": c.target,
                        "service": c.service,
                        "status": c.status.value,
                        "critical": c.critical,
                    }
                    for c in rows.values()
                ],
            )

    async def add_event(self, incident_id: int, event: IncidentEvent) -> None:
        """Add an event to the timeline (raising the impact to its status if worse). A public
        event of the machine's (no ``actor``) on an incident a person took over is kept
        internal: the public text is theirs."""
        async with self._begin() as connection:
            row = (
                await connection.execute(
                    select(incidents.c.impact, incidents.c.written_by).where(
                        incidents.c.id == incident_id
                    )
                )
            ).first()
            if row is not None and row.written_by is not None and event.actor is None:
                event = replace(event, public=False)
            await self._event(connection, incident_id, event)
            changes: dict[str, object] = {"updated_at": event.at}
            if event.status is not None:
                current = row.impact if row is not None else None
                if current is None or event.status.severity > Status.parse(current).severity:
                    changes["impact"] = event.status.value
            await connection.execute(
                update(incidents).where(incidents.c.id == incident_id).values(**changes)
            )

    async def resolve_incident(self, incident_id: int, at: float, text: str) -> None:
        """The daemon saw the cause recover: resolve the incident, and queue the ``resolved``
        message if it was open. An incident a person took over is theirs to resolve: the
        recovery is recorded as an internal ``state_change`` event and it stays as it is. No
        such incident: nothing is written."""
        async with self._begin() as connection:
            row = (
                await connection.execute(
                    select(incidents.c.state, incidents.c.written_by)
                    .where(incidents.c.id == incident_id)
                    .with_for_update()
                )
            ).first()
            if row is None:
                return
            if row.written_by is not None:
                event = IncidentEvent(at, "state_change", Status.HEALTHY, text, public=False)
                await self._event(connection, incident_id, event)
                await connection.execute(
                    update(incidents).where(incidents.c.id == incident_id).values(updated_at=at)
                )
                return
            await self._event(
                connection,
                incident_id,
                IncidentEvent(
                    at=at,
                    kind="resolved",
                    status=Status.HEALTHY,
                    public=True,
                    text=text,
                ),
            )
            await connection.execute(
                update(incidents)
                .where(incidents.c.id == incident_id)
                .values(state=IncidentState.RESOLVED.value, resolved_at=at, updated_at=at)
            )
            if row.state == IncidentState.OPEN.value:
                await queue_message(
                    connection,
                    event="resolved",
                    phase="resolved",
                    text="",
                    components=await self._keys(connection, incident_id),
                    at=at,
                    incident_id=incident_id,
                )

    async def _keys(self, connection: AsyncConnection, incident_id: int) -> list[str]:
        """The component keys an incident concerns: its affected components, the cause first
        (the cause alone for an incident stored before it listed any)."""
        cause = (
            await connection.execute(
                select(incidents.c.target, incidents.c.service).where(incidents.c.id == incident_id)
            )
        ).first()
        listed = (
            await connection.execute(
                select(incident_components.c.target, incident_components.c.service)
                .where(incident_components.c.incident_id == incident_id)
                .order_by(incident_components.c.target, incident_components.c.service)
            )
        ).all()
        pairs = [(t, s) for t, s in listed]
        if cause is not None:
            first = (cause.target, cause.service)
            pairs.sort(key=lambda pair: pair != first)
            if not pairs:
                pairs = [first]
        return [component_key(t, s) for t, s in pairs]

    async def _event(
        self, connection: AsyncConnection, incident_id: int, event: IncidentEvent
    ) -> None:
        await connection.execute(
            insert(incident_events).values(
                incident_id=incident_id,
                at=event.at,
                kind=event.kind[:20],
                status=event.status.value if event.status is not None else None,
                text=bounded(event.text, MESSAGE_SIZE),
                public=event.public,
                actor=bounded(event.actor, NAME_SIZE) if event.actor is not None else None,
                phase=event.phase,
            )
        )

    async def record_reset(
        self, target: str, service: str, actor: str, previous_state: str, at: float
    ) -> int | None:
        """Put a breaker reset on the open incident of that service (its cause, or a component
        it affects: :func:`~monitor.store.reading.incidents.open_incident_query`); its id, or
        None if none."""
        async with self._connect() as connection:
            incident_id = await connection.scalar(
                open_incident_query(target, service).with_only_columns(incidents.c.id)
            )
        if incident_id is None:
            return None
        await self.add_event(
            int(incident_id),
            IncidentEvent(
                at=at,
                kind="breaker_reset",
                status=None,
                public=False,
                actor=actor,
                text=f"Circuit breaker reset by {actor} (was {previous_state}).",
            ),
        )
        return int(incident_id)

    async def add_note(
        self, incident_id: int, text: str, *, public: bool, actor: str | None, at: float
    ) -> None:
        await self.add_event(
            incident_id,
            IncidentEvent(
                at=at,
                kind="note",
                status=None,
                text=text,
                public=public,
                actor=actor,
            ),
        )
