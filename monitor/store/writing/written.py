"""Incidents people write (#15): opened by hand, updated with Statuspage's statuses (taking an
automatic incident over on its first update), resolved and re-opened, given a postmortem.

People's writes are unfenced (like an ack or a silence: the CLI or a TUI tab writes them whether
or not its monitor leads). Each is one transaction that also queues what subscribers are told,
and re-reads the incident in it for the caller."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.store.models import (
    PHASES,
    Incident,
    IncidentComponent,
    IncidentEvent,
    IncidentOrigin,
    IncidentState,
    Status,
    component_key,
)
from monitor.store.reading.incidents import incidents_of, read_incidents
from monitor.store.schema import incident_components, incidents
from monitor.store.writing.base import printable
from monitor.store.writing.incidents import TITLE_SIZE, IncidentWrites
from monitor.store.writing.messages import (
    MESSAGE_SIZE,
    NAME_SIZE,
    POSTMORTEM_SIZE,
    bounded,
    queue_message,
)

RESOLVED = "resolved"


def _worst(components: Sequence[IncidentComponent]) -> Status:
    return max((c.status for c in components), key=lambda s: s.severity)


def _phase(phase: str) -> str:
    if phase not in PHASES:
        raise ValueError(f"unknown incident status {phase!r}: one of {', '.join(PHASES)}")
    return phase


class WrittenIncidentWrites(IncidentWrites):
    async def open_written_incident(
        self,
        title: str,
        components: Sequence[IncidentComponent],
        message: str,
        by: str,
        at: float,
    ) -> int:
        """An incident a person opened: origin ``written``, phase ``investigating``, open; its
        cause (``target``/``service``) the first component, its impact the worst component's
        status; its first event a public ``update`` carrying ``message``; the ``opened``
        message queued. ``ValueError`` without components (the caller checks for one)."""
        if not components:
            raise ValueError("a written incident names at least one component")
        first, author = components[0], printable(by, NAME_SIZE)
        text = bounded(message, MESSAGE_SIZE)
        async with self._begin(fenced=False) as connection:
            result = await connection.execute(
                insert(incidents).values(
                    target=first.target,
                    service=first.service,
                    state=IncidentState.OPEN.value,
                    impact=_worst(components).value,
                    title=printable(title, TITLE_SIZE),
                    opened_at=at,
                    resolved_at=None,
                    updated_at=at,
                    origin=IncidentOrigin.WRITTEN.value,
                    phase="investigating",
                    written_by=author,
                )
            )
            incident_id = int(result.inserted_primary_key[0])  # type: ignore[index]
            await self._components(connection, incident_id, components)
            await self._event(
                connection,
                incident_id,
                IncidentEvent(at, "update", None, text, True, actor=author, phase="investigating"),
            )
            await queue_message(
                connection,
                event="opened",
                phase="investigating",
                text=text,
                components=[component_key(c.target, c.service) for c in components],
                at=at,
                incident_id=incident_id,
            )
        return incident_id

    async def update_incident(
        self,
        incident_id: int,
        phase: str,
        message: str,
        by: str,
        at: float,
        components: Sequence[IncidentComponent] | None = None,
    ) -> Incident | None:
        """A person's public update, in one transaction (the row locked on PostgreSQL, so two
        people updating at once take it over once):

        - an automatic incident nobody wrote into yet is taken over: a ``takeover`` event
          (internal) and ``written_by`` set; ``written_by`` otherwise stays who opened it or
          took it over first;
        - ``phase`` set; ``resolved`` resolves it (``resolved_at`` kept if it already was),
          another phase re-opens a resolved one (``resolved_at`` cleared);
        - ``components`` (when given, non-empty): replace the affected components, and the
          impact becomes their worst status;
        - an ``update`` event (public, with the phase and ``message``), ``updated_at``; its
          ``status`` the components' worst when it replaced them (None otherwise): the page
          holds an automatic incident's components at their impact only once a person
          declared it, not at the worst the checks once saw;
        - the ``update`` message queued (``resolved`` when the phase is).

        The incident as it is now; None if there is no such incident. ``ValueError`` for a
        phase not in :data:`PHASES`."""
        phase = _phase(phase)
        author, text = printable(by, NAME_SIZE), bounded(message, MESSAGE_SIZE)
        async with self._begin(fenced=False) as connection:
            row = await self._locked(connection, incident_id)
            if row is None:
                return None
            changes: dict[str, Any] = {"phase": phase, "updated_at": at}
            if row.written_by is None:
                changes["written_by"] = author
                if row.origin == IncidentOrigin.AUTO.value:
                    took = f"Taken over by {author}: updates are written by people from now on."
                    await self._event(
                        connection,
                        incident_id,
                        IncidentEvent(at, "takeover", None, took, False, actor=author),
                    )
            if phase == RESOLVED:
                if row.state != IncidentState.RESOLVED.value:
                    changes.update(state=IncidentState.RESOLVED.value, resolved_at=at)
            elif row.state != IncidentState.OPEN.value:
                changes.update(state=IncidentState.OPEN.value, resolved_at=None)
            if components:
                await connection.execute(
                    delete(incident_components).where(
                        incident_components.c.incident_id == incident_id
                    )
                )
                await self._components(connection, incident_id, components)
                changes["impact"] = _worst(components).value
            await connection.execute(
                update(incidents).where(incidents.c.id == incident_id).values(**changes)
            )
            await self._event(
                connection,
                incident_id,
                IncidentEvent(
                    at,
                    "update",
                    _worst(components) if components else None,
                    text,
                    True,
                    actor=author,
                    phase=phase,
                ),
            )
            await queue_message(
                connection,
                event=RESOLVED if phase == RESOLVED else "update",
                phase=phase,
                text=text,
                components=await self._keys(connection, incident_id),
                at=at,
                incident_id=incident_id,
            )
            return await self._reread(connection, incident_id)

    async def write_postmortem(
        self, incident_id: int, text: str, by: str, at: float
    ) -> Incident | None:
        """Publish (or replace) the incident's postmortem: ``postmortem``, ``postmortem_at``,
        a public ``postmortem`` event carrying the text, the ``postmortem`` message queued. It
        neither takes an automatic incident over nor changes its state. None: no such
        incident."""
        author, body = printable(by, NAME_SIZE), bounded(text, POSTMORTEM_SIZE)
        async with self._begin(fenced=False) as connection:
            row = await self._locked(connection, incident_id)
            if row is None:
                return None
            await connection.execute(
                update(incidents)
                .where(incidents.c.id == incident_id)
                .values(postmortem=body, postmortem_at=at, updated_at=at)
            )
            await self._event(
                connection,
                incident_id,
                IncidentEvent(at, "postmortem", None, body, True, actor=author),
            )
            await queue_message(
                connection,
                event="postmortem",
                phase=row.phase or (RESOLVED if row.state == RESOLVED else None),
                text=body,
                components=await self._keys(connection, incident_id),
                at=at,
                incident_id=incident_id,
            )
            return await self._reread(connection, incident_id)

    async def _locked(self, connection: AsyncConnection, incident_id: int) -> Any:
        """The incident's row, locked until the transaction ends (PostgreSQL; SQLite's write
        transaction holds the whole store); None if there is none."""
        query = (
            select(incidents.c.origin, incidents.c.state, incidents.c.phase, incidents.c.written_by)
            .where(incidents.c.id == incident_id)
            .with_for_update()
        )
        return (await connection.execute(query)).first()

    async def _reread(self, connection: AsyncConnection, incident_id: int) -> Incident | None:
        query: Select[Any] = select(incidents).where(incidents.c.id == incident_id)
        found = await connection.run_sync(read_incidents(query))
        return next(iter(incidents_of(found)), None)
