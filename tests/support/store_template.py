"""A monitor store migrated once per session, for fixtures to copy instead of migrating per test.

Running every migration costs each new store ~0.1 s on SQLite and ~0.3-0.7 s on PostgreSQL; a
suite that makes hundreds of stores pays minutes for it. A fixture migrates one store per
session with :func:`migrate_store` and hands each test a copy (a copied file, or a database
made with ``createdb --template``).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from monitor.store import create_schema, open_engine


def migrate_store(url: str) -> None:
    """Bring the store at ``url`` to the head revision, and close every connection to it."""

    async def migrate() -> None:
        engine = open_engine(url)
        try:
            await create_schema(engine)
        finally:
            await engine.dispose()

    # In a thread of its own: asyncio.run on this thread would unset the loop pytest-asyncio set.
    with ThreadPoolExecutor(1) as executor:
        executor.submit(asyncio.run, migrate()).result()
