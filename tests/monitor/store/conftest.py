"""One store per test, on each backend: a SQLite file in the test's tmp directory, and a fresh
database on the session's PostgreSQL server (``postgres_server``), dropped after the test.

Every test that asks for ``store`` runs three times: ``[sqlite]`` and ``[postgresql]`` through the
async drivers, and ``[sqlite-threaded]``, whose reader runs each read whole in a worker thread on
a plain SQLite engine (what the status page does). That is the whole contract, one suite over
every implementation.

A test that asks for ``store`` gets a copy of a store migrated once per session (the fixtures in
``tests/monitor/conftest.py``; a copied SQLite file; a PostgreSQL database made with ``createdb
--template``, emptied after its test and reused when its schema is still the template's): running
every migration per test cost each PostgreSQL case ~0.3-0.7 s of set-up, and creating and
dropping a database per test ~0.15 s. ``create_schema`` still runs on the copy (it finds the
schema at head). A test that asks only for ``store_url`` gets an empty store, as before.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from monitor.store import HistoryReader, create_schema, open_engine
from monitor.store.engine import thread_engine
from monitor.store.writer import HistoryWriter
from tests.monitor.store.support import Store, empty_store_url, migrated_store_url

BACKENDS = ("sqlite", "sqlite-threaded", "postgresql")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def store_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL naming a store: empty (a new SQLite file, a new PostgreSQL database), or, when the
    test also asks for ``store``, a copy of the session's migrated one."""
    if "store" not in request.fixturenames:
        yield from empty_store_url(backend, request, tmp_path)
    else:
        yield from migrated_store_url(backend, request, tmp_path)


@pytest.fixture
async def store(store_url: str, backend: str) -> AsyncIterator[Store]:
    """A fresh store with its schema, a writer and a reader; the engines are disposed after."""
    engine = open_engine(store_url)
    threaded = thread_engine(store_url) if backend == "sqlite-threaded" else None
    await create_schema(engine)
    try:
        yield Store(
            backend=engine.dialect.name,
            url=store_url,
            engine=engine,
            writer=HistoryWriter(engine),
            reader=HistoryReader(engine, threaded=threaded),
        )
    finally:
        await engine.dispose()
        if threaded is not None:
            threaded.dispose()
