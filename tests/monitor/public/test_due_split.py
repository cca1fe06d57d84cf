"""The store's due deliveries read apart (#15 review), on SQLite: the sender asks for what carries
a message and for confirmation requests separately, so a flood of requests queued earlier never
fills the batch a real message needs."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import insert

from monitor.store import HistoryReader, Status, create_schema, open_engine
from monitor.store.schema import deliveries
from monitor.store.writer import HistoryWriter
from tests.monitor.store.public_support import T, add_subscriber
from tests.monitor.store.support import Store, sqlite_url


async def test_due_deliveries_read_messages_and_confirmations_apart(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "history.db")
    engine = open_engine(url)
    await create_schema(engine)
    try:
        store = Store("sqlite", url, engine, HistoryWriter(engine), HistoryReader(engine))
        fan = await add_subscriber(store, "fan@example.org")
        asking = [
            await add_subscriber(store, f"new{n}@example.org", confirmed=None) for n in range(3)
        ]
        async with engine.begin() as connection:  # requests queued before the incident
            await connection.execute(
                insert(deliveries),
                [
                    {"subscriber_id": s, "message_id": None, "state": "pending", "attempts": 0,
                     "next_at": T - 10, "created_at": T - 10}
                    for s in asking
                ],
            )  # fmt: skip
        await store.writer.open_incident("api", "", Status.UNHEALTHY, T, "Down")
        await store.writer.fan_out(T)
        reader = store.reader

        both = await reader.due_deliveries(now=T + 1, limit=3)
        told = await reader.due_deliveries(now=T + 1, limit=3, confirmations=False)
        asked = await reader.due_deliveries(now=T + 1, limit=2, confirmations=True)

        assert [d.message_id for d in both] == [None, None, None]  # oldest first: no room
        assert [(d.subscriber_id, d.message_id is not None) for d in told] == [(fan, True)]
        assert [d.subscriber_id for d in asked] == asking[:2]
    finally:
        await engine.dispose()
