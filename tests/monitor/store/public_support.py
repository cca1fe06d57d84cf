"""For the tests of the store's public side (#15): the messages queued, row counts, and
subscriber rows as the page's inbox writes them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select

from monitor.store import DECLARED_IMPACTS
from monitor.store.schema import address_key, public_messages, subscribers
from tests.monitor.store.support import DAY0, Store

T = DAY0
MAJOR = DECLARED_IMPACTS["major"]
MINOR = DECLARED_IMPACTS["minor"]
BACKENDS = ["sqlite", "postgresql"]
"""Both databases; the threaded reader reads nothing here that the others do not."""


async def messages(store: Store) -> list[tuple[Any, ...]]:
    """(event, phase, text, components, incident_id, maintenance_id) of every message queued."""
    async with store.engine.connect() as connection:
        rows = await connection.execute(
            select(
                public_messages.c.event,
                public_messages.c.phase,
                public_messages.c.text,
                public_messages.c.components,
                public_messages.c.incident_id,
                public_messages.c.maintenance_id,
            ).order_by(public_messages.c.id)
        )
        return [tuple(r) for r in rows]


async def count(store: Store, table: Any, *where: Any) -> int:
    async with store.engine.connect() as connection:
        return int(
            await connection.scalar(select(func.count()).select_from(table).where(*where)) or 0
        )


async def add_subscriber(
    store: Store,
    address: str,
    *,
    components: str = "",
    confirmed: float | None = T,
    unsubscribed: float | None = None,
    created: float = T,
    sent: float | None = None,
) -> int:
    """A subscriber row as the page's inbox writes it (``monitor.store.inbox`` is the web's)."""
    async with store.engine.begin() as connection:
        result = await connection.execute(
            insert(subscribers).values(
                kind="email",
                address=address,
                address_key=None if unsubscribed is not None else address_key(address),
                components=components,
                language="en",
                created_at=created,
                confirmed_at=confirmed,
                unsubscribed_at=unsubscribed,
                confirm_sent_at=sent,
            )
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]
