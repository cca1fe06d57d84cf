"""Writes of what the public is told (#15): maintenance windows (scheduled and cancelled by
people, unfenced; marked started and completed by the leading monitor, fenced), and the sender's
side of subscriptions: public messages fanned out into deliveries, deliveries finished.

The page's side (subscription requests, confirmations, unsubscribing) is
:mod:`monitor.store.inbox`, which the status page may import and this module may not be."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.store.public_models import (
    DeliveryState,
    Maintenance,
    MaintenanceEvent,
    follows,
    public_component_keys,
)
from monitor.store.reading.public import MaintenanceRead, keys_from_json
from monitor.store.schema import components as catalogue
from monitor.store.schema import (
    deliveries,
    maintenance_components,
    maintenance_events,
    maintenances,
    public_messages,
    subscribers,
)
from monitor.store.writing.base import WriteBase, printable
from monitor.store.writing.messages import (
    MESSAGE_SIZE,
    NAME_SIZE,
    bounded,
    bounded_keys,
    queue_message,
)
from monitor.store.writing.retention import SQLITE_PAUSE

WINDOW_TITLE_SIZE = 200
EVENT_TEXT_SIZE = 500
ERROR_SIZE = 100
MARKS = ("started", "completed")
FAN_OUT_CHUNK = 5_000
"""Deliveries inserted in one transaction at most: a message to 50,000 subscribers is ten short
fenced transactions, not one that holds the store (see ``RETENTION_CHUNK``)."""


class PublicWrites(WriteBase):
    fan_out_chunk: int = FAN_OUT_CHUNK
    """Deliveries per transaction of :meth:`fan_out` (tests make it small)."""

    # -- maintenance windows

    async def schedule_maintenance(
        self,
        title: str,
        components: Sequence[str],
        starts_at: float,
        ends_at: float,
        message: str | None,
        by: str,
        at: float,
    ) -> int:
        """A window (unfenced: a person's), its components, the ``scheduled`` message; its id.
        Texts are cut to their columns, never refused."""
        keys = bounded_keys(components)
        text = bounded(message, MESSAGE_SIZE) if message is not None else None
        async with self._begin(fenced=False) as connection:
            result = await connection.execute(
                insert(maintenances).values(
                    title=printable(title, WINDOW_TITLE_SIZE),
                    message=text,
                    starts_at=starts_at,
                    ends_at=ends_at,
                    created_by=printable(by, NAME_SIZE),
                    created_at=at,
                )
            )
            maintenance_id = int(result.inserted_primary_key[0])  # type: ignore[index]
            if keys:
                await connection.execute(
                    insert(maintenance_components),
                    [{"maintenance_id": maintenance_id, "component": key} for key in keys],
                )
            await queue_message(
                connection,
                event="scheduled",
                text=text or "",
                components=keys,
                at=at,
                maintenance_id=maintenance_id,
            )
            await self._revise(connection, "maintenances")
        return maintenance_id

    async def cancel_maintenance(
        self, maintenance_id: int, by: str, at: float
    ) -> Maintenance | None:
        """Cancel a window (unfenced): ``cancelled_at``/``cancelled_by``, a ``cancelled`` event
        and message. A window already cancelled, completed (``completed_at`` set) or over
        (``ends_at <= at``) is returned unchanged (``cancelled_at`` tells which happened: None
        means refused, as it is over). None: no such window."""
        async with self._begin(fenced=False) as connection:
            window = await self._window(connection, maintenance_id, lock=True)
            if window is None:
                return None
            over = window.completed_at is not None or window.ends_at <= at
            if window.cancelled_at is not None or over:
                return window
            author = printable(by, NAME_SIZE)
            await connection.execute(
                update(maintenances)
                .where(maintenances.c.id == maintenance_id)
                .values(cancelled_at=at, cancelled_by=author)
            )
            await self._maintenance_event(
                connection, maintenance_id, MaintenanceEvent(at, "cancelled", f"By {author}.")
            )
            await queue_message(
                connection,
                event="cancelled",
                text="",
                components=window.components,
                at=at,
                maintenance_id=maintenance_id,
            )
            await self._revise(connection, "maintenances")
            return await self._window(connection, maintenance_id)

    async def mark_maintenance(self, maintenance_id: int, kind: str, at: float) -> bool:
        """The leading monitor saw the window ``started`` or ``completed`` (fenced): one
        conditional UPDATE sets that time if it is not set yet and the window is not
        cancelled, so of two monitors (or two runs) only one marks it; that one writes the
        event and queues the message. True if this call marked it. ``ValueError`` for another
        kind."""
        if kind not in MARKS:
            raise ValueError(f"a window is marked {' or '.join(MARKS)}, not {kind!r}")
        column = maintenances.c.started_at if kind == "started" else maintenances.c.completed_at
        async with self._begin() as connection:
            marked = await connection.execute(
                update(maintenances)
                .where(
                    maintenances.c.id == maintenance_id,
                    column.is_(None),
                    maintenances.c.cancelled_at.is_(None),
                )
                .values({column.name: at})
            )
            if marked.rowcount != 1:
                return False
            await self._maintenance_event(
                connection, maintenance_id, MaintenanceEvent(at, kind, "")
            )
            keys = (
                await connection.scalars(
                    select(maintenance_components.c.component)
                    .where(maintenance_components.c.maintenance_id == maintenance_id)
                    .order_by(maintenance_components.c.component)
                )
            ).all()
            await queue_message(
                connection,
                event=kind,
                text="",
                components=keys,
                at=at,
                maintenance_id=maintenance_id,
            )
            await self._revise(connection, "maintenances")
        return True

    async def add_maintenance_event(self, maintenance_id: int, event: MaintenanceEvent) -> None:
        """Put an event on a window's timeline (fenced: the daemon's ``held_alert``,
        ``held_incident``, ``incident_opened``); its text cut to 500 characters."""
        async with self._begin() as connection:
            await self._maintenance_event(connection, maintenance_id, event)
            await self._revise(connection, "maintenances")

    async def _maintenance_event(
        self, connection: AsyncConnection, maintenance_id: int, event: MaintenanceEvent
    ) -> None:
        await connection.execute(
            insert(maintenance_events).values(
                maintenance_id=maintenance_id,
                at=event.at,
                kind=event.kind[:20],
                text=printable(event.text, EVENT_TEXT_SIZE),
            )
        )

    async def _window(
        self, connection: AsyncConnection, maintenance_id: int, *, lock: bool = False
    ) -> Maintenance | None:
        query = select(maintenances).where(maintenances.c.id == maintenance_id)
        if lock:
            query = query.with_for_update()
        found = await connection.run_sync(MaintenanceRead(query, with_events=True))
        return found[0] if found else None

    # -- the sender's side of subscriptions

    async def fan_out(self, now: float, *, limit: int = 100) -> int:
        """Turn up to ``limit`` queued messages (oldest first) into one ``pending`` delivery
        (``next_at = now``) per active subscriber that follows them; returns the messages
        fanned out.

        Fenced, in short transactions: the active subscribers' keys are read once; each
        message's deliveries go in :attr:`fan_out_chunk` at a time, each chunk its own
        transaction, ``ON CONFLICT DO NOTHING`` on (message, subscriber); the last one sets
        ``fanned_out_at``. A fan-out cut short leaves the message queued with some deliveries
        made, and the next run adds the others and no second one of any.

        Private checks (#16) are left out of whom a message concerns: a message about private
        components alone (queued while its check was public, or naming a check made private
        since) is fanned out to nobody — not to everyone, as a message about no component in
        particular is."""
        async with self._connect() as connection:
            queued = (
                await connection.execute(
                    select(public_messages.c.id, public_messages.c.components)
                    .where(public_messages.c.fanned_out_at.is_(None))
                    .order_by(public_messages.c.id)
                    .limit(limit)
                )
            ).all()
            if not queued:
                return 0
            followers = (
                await connection.execute(
                    select(subscribers.c.id, subscribers.c.components)
                    .where(
                        subscribers.c.confirmed_at.is_not(None),
                        subscribers.c.unsubscribed_at.is_(None),
                    )
                    .order_by(subscribers.c.id)
                )
            ).all()
            hidden = select(catalogue.c.target, catalogue.c.service).where(
                catalogue.c.public.is_(False)
            )
            private = frozenset((t, s) for t, s in (await connection.execute(hidden)).all())
        active = [(sid, keys_from_json(keys)) for sid, keys in followers]
        done = 0
        for message_id, about in queued:
            keys = public_component_keys(keys_from_json(about), private)
            told = [] if keys is None else [sid for sid, f in active if follows(f, keys)]
            await self._fan_out_one(message_id, told, now)
            done += 1
        return done

    async def _fan_out_one(self, message_id: int, subscriber_ids: list[int], now: float) -> None:
        chunk = max(self.fan_out_chunk, 1)
        statement = self._insert(deliveries).on_conflict_do_nothing(
            index_elements=["message_id", "subscriber_id"]
        )
        parts = [subscriber_ids[i : i + chunk] for i in range(0, len(subscriber_ids), chunk)]
        for number, part in enumerate(parts or [[]], start=1):
            async with self._begin() as connection:
                if part:
                    await connection.execute(
                        statement,
                        [
                            {
                                "subscriber_id": sid,
                                "message_id": message_id,
                                "state": DeliveryState.PENDING.value,
                                "attempts": 0,
                                "next_at": now,
                                "created_at": now,
                            }
                            for sid in part
                        ],
                    )
                if number == len(parts) or not parts:
                    await connection.execute(
                        update(public_messages)
                        .where(public_messages.c.id == message_id)
                        .values(fanned_out_at=now)
                    )
            if number < len(parts) and self._dialect == "sqlite":
                await self.clock.sleep(SQLITE_PAUSE)

    async def finish_delivery(
        self,
        delivery_id: int,
        state: DeliveryState,
        at: float,
        *,
        error: str | None = None,
        next_at: float | None = None,
    ) -> None:
        """Record one attempt (fenced; ``attempts`` + 1): ``SENT``/``FAILED`` end it
        (``done_at``); ``PENDING`` waits until ``next_at`` (``at`` if None) for the next try.
        ``error`` (a sanitised class) cut to 100 characters."""
        changes: dict[str, object] = {
            "state": state.value,
            "attempts": deliveries.c.attempts + 1,
            "error": printable(error, ERROR_SIZE) if error is not None else None,
        }
        if state is DeliveryState.PENDING:
            changes["next_at"] = next_at if next_at is not None else at
        else:
            changes["done_at"] = at
        async with self._begin() as connection:
            await connection.execute(
                update(deliveries).where(deliveries.c.id == delivery_id).values(**changes)
            )
