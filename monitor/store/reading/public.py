"""Reads of what the public is told (#15): maintenance windows with their components and events,
subscribers, the queued public messages and the deliveries owed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.engine import Connection, RowMapping

from monitor.store.errors import StoreNotInitialised
from monitor.store.public_models import (
    Delivery,
    DeliveryState,
    Maintenance,
    MaintenanceEvent,
    PublicMessage,
    Subscriber,
    SubscriberKind,
)
from monitor.store.reading.base import ReadBase
from monitor.store.schema import (
    deliveries,
    maintenance_components,
    maintenance_events,
    maintenances,
    public_messages,
    subscribers,
)


class PublicReads(ReadBase):
    async def maintenances(
        self,
        *,
        since: float,
        include_cancelled: bool = False,
        unfinished: bool = False,
        limit: int = 100,
    ) -> list[Maintenance]:
        """Windows that end at or after ``since`` (upcoming, active, and those ended since), by
        start, each with its components (its events only from :meth:`maintenance`): two
        statements on one connection, however many windows. ``unfinished``: also those marked
        started and not completed, however long ago they ended (the leader still owes them
        their completion: they ended while no monitor led).

        A store from before revision 0006 (which a status page upgraded before its monitor
        reads) has no windows: none, rather than an error on every page."""
        recent = maintenances.c.ends_at >= since
        owed = and_(maintenances.c.started_at.is_not(None), maintenances.c.completed_at.is_(None))
        query = (
            select(maintenances)
            .where(or_(recent, owed) if unfinished else recent)
            .order_by(maintenances.c.starts_at, maintenances.c.id)
            .limit(limit)
        )
        if not include_cancelled:
            query = query.where(maintenances.c.cancelled_at.is_(None))
        try:
            return await self._read(MaintenanceRead(query, with_events=False))
        except StoreNotInitialised:
            return []

    async def maintenance(self, maintenance_id: int) -> Maintenance | None:
        """One window with its components and events (oldest first)."""
        query = select(maintenances).where(maintenances.c.id == maintenance_id)
        found = await self._read(MaintenanceRead(query, with_events=True))
        return found[0] if found else None

    async def subscriber(self, subscriber_id: int) -> Subscriber | None:
        rows = await self._mappings(select(subscribers).where(subscribers.c.id == subscriber_id))
        return subscriber_from_row(rows[0]) if rows else None

    async def public_message(self, message_id: int) -> PublicMessage | None:
        rows = await self._mappings(
            select(public_messages).where(public_messages.c.id == message_id)
        )
        return message_from_row(rows[0]) if rows else None

    async def due_deliveries(
        self, *, now: float, limit: int = 100, confirmations: bool | None = None
    ) -> list[Delivery]:
        """Pending deliveries whose ``next_at`` has come, oldest first (by ``next_at``, then
        id): the sender's next batch. ``confirmations``: True, only confirmation requests (no
        message); False, only messages; None, both (the sender reads them apart, messages
        first, so a flood of requests never delays what subscribers are told)."""
        query = (
            select(deliveries)
            .where(
                deliveries.c.state == DeliveryState.PENDING.value,
                deliveries.c.next_at <= now,
            )
            .order_by(deliveries.c.next_at, deliveries.c.id)
            .limit(limit)
        )
        if confirmations is not None:
            column = deliveries.c.message_id
            query = query.where(column.is_(None) if confirmations else column.is_not(None))
        rows = await self._mappings(query)
        return [delivery_from_row(r) for r in rows]


@dataclass(frozen=True, slots=True)
class MaintenanceRead:
    """Windows on one connection: their rows, then the components of all of them in one
    statement (and their events in another), never one per window."""

    query: Select[Any]
    with_events: bool

    def __call__(self, connection: Connection) -> list[Maintenance]:
        rows = connection.execute(self.query).mappings().all()
        if not rows:
            return []
        ids = [r["id"] for r in rows]
        keys: dict[int, list[str]] = {}
        for maintenance_id, component in connection.execute(
            select(maintenance_components.c.maintenance_id, maintenance_components.c.component)
            .where(maintenance_components.c.maintenance_id.in_(ids))
            .order_by(maintenance_components.c.component)
        ):
            keys.setdefault(maintenance_id, []).append(component)
        events: dict[int, list[MaintenanceEvent]] = {}
        if self.with_events:
            for e in connection.execute(
                select(maintenance_events)
                .where(maintenance_events.c.maintenance_id.in_(ids))
                .order_by(maintenance_events.c.at, maintenance_events.c.id)
            ).mappings():
                events.setdefault(e["maintenance_id"], []).append(
                    MaintenanceEvent(at=e["at"], kind=e["kind"], text=e["text"])
                )
        return [
            maintenance_from_row(r, keys.get(r["id"], ()), events.get(r["id"], ())) for r in rows
        ]


def maintenance_from_row(
    r: RowMapping, components: Sequence[str], events: Sequence[MaintenanceEvent] = ()
) -> Maintenance:
    return Maintenance(
        id=r["id"],
        title=r["title"],
        message=r["message"],
        components=tuple(components),
        starts_at=r["starts_at"],
        ends_at=r["ends_at"],
        created_by=r["created_by"],
        created_at=r["created_at"],
        cancelled_at=r["cancelled_at"],
        cancelled_by=r["cancelled_by"],
        started_at=r["started_at"],
        completed_at=r["completed_at"],
        events=tuple(events),
    )


def keys_json(keys: Sequence[str]) -> str:
    """Component keys as the store keeps them in a text column: a compact JSON list."""
    return json.dumps(list(keys), separators=(",", ":"), ensure_ascii=False)


def keys_from_json(text: str | None) -> tuple[str, ...]:
    """The component keys of a ``components`` column: ``''``, ``'[]'`` (or anything that is not
    a JSON list of strings) is none, which for a subscriber means every component."""
    if not text:
        return ()
    try:
        keys = json.loads(text)
    except ValueError:
        return ()
    if not isinstance(keys, list):
        return ()
    return tuple(k for k in keys if isinstance(k, str))


def subscriber_from_row(r: RowMapping) -> Subscriber:
    return Subscriber(
        id=r["id"],
        kind=SubscriberKind(r["kind"]),
        address=r["address"],
        components=keys_from_json(r["components"]),
        language=r["language"],
        created_at=r["created_at"],
        confirmed_at=r["confirmed_at"],
        unsubscribed_at=r["unsubscribed_at"],
    )


def message_from_row(r: RowMapping) -> PublicMessage:
    return PublicMessage(
        id=r["id"],
        incident_id=r["incident_id"],
        maintenance_id=r["maintenance_id"],
        event=r["event"],
        phase=r["phase"],
        text=r["text"],
        components=keys_from_json(r["components"]),
        at=r["at"],
        fanned_out_at=r["fanned_out_at"],
    )


def delivery_from_row(r: RowMapping) -> Delivery:
    return Delivery(
        id=r["id"],
        subscriber_id=r["subscriber_id"],
        message_id=r["message_id"],
        state=DeliveryState(r["state"]),
        attempts=r["attempts"],
        next_at=r["next_at"],
        created_at=r["created_at"],
        done_at=r["done_at"],
        error=r["error"],
    )
