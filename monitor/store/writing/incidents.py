"""Writes of incidents: opened, updated with events (state changes, resets, notes), resolved."""

from __future__ import annotations

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.store.models import IncidentEvent, IncidentState, Status
from monitor.store.schema import incident_events, incidents
from monitor.store.writing.base import WriteBase


class IncidentWrites(WriteBase):
    async def open_incident(
        self, target: str, service: str, status: Status, at: float, title: str
    ) -> int:
        async with self._begin() as connection:
            result = await connection.execute(
                insert(incidents).values(
                    target=target,
                    service=service,
                    state=IncidentState.OPEN.value,
                    impact=status.value,
                    title=title,
                    opened_at=at,
                    resolved_at=None,
                    updated_at=at,
                )
            )
            incident_id = int(result.inserted_primary_key[0])  # type: ignore[index]
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
        return incident_id

    async def add_event(self, incident_id: int, event: IncidentEvent) -> None:
        async with self._begin() as connection:
            await self._event(connection, incident_id, event)
            changes: dict[str, object] = {"updated_at": event.at}
            if event.status is not None:
                current = await connection.scalar(
                    select(incidents.c.impact).where(incidents.c.id == incident_id)
                )
                if current is None or event.status.severity > Status.parse(current).severity:
                    changes["impact"] = event.status.value
            await connection.execute(
                update(incidents).where(incidents.c.id == incident_id).values(**changes)
            )

    async def resolve_incident(self, incident_id: int, at: float, text: str) -> None:
        async with self._begin() as connection:
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

    async def _event(
        self, connection: AsyncConnection, incident_id: int, event: IncidentEvent
    ) -> None:
        await connection.execute(
            insert(incident_events).values(
                incident_id=incident_id,
                at=event.at,
                kind=event.kind,
                status=event.status.value if event.status is not None else None,
                text=event.text,
                public=event.public,
                actor=event.actor,
            )
        )

    async def record_reset(
        self, target: str, service: str, actor: str, previous_state: str, at: float
    ) -> int | None:
        """Put a breaker reset on the open incident of that service; its id, or None if none."""
        async with self._connect() as connection:
            incident_id = await connection.scalar(
                select(incidents.c.id)
                .where(
                    incidents.c.target == target,
                    incidents.c.service == service,
                    incidents.c.state == IncidentState.OPEN.value,
                )
                .order_by(incidents.c.opened_at.desc())
                .limit(1)
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
