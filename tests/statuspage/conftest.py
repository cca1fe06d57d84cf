"""Fixtures: a temporary SQLite store written through ``HistoryWriter``, and the app on it with a
frozen clock, driven through httpx's ``ASGITransport`` with its lifespan running."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.store import create_schema, open_engine
from monitor.store.writer import HistoryWriter
from statuspage.app import create_app
from tests.statuspage.scenarios import NOW
from tests.support.store_template import migrate_store

PUBLIC_URL = "https://status.questcity.test"


@dataclass
class Store:
    url: str
    writer: HistoryWriter


@pytest.fixture(scope="session")
def _migrated_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("statuspage-store") / "monitor.db"
    migrate_store(f"sqlite:///{path}")
    return path


@pytest.fixture
async def store(_migrated_store: Path, tmp_path: Path) -> AsyncIterator[Store]:
    """A store at the head revision: a copy of one migrated per session (create_schema finds it
    at head), not every migration per test."""
    path = tmp_path / "monitor.db"
    shutil.copyfile(_migrated_store, path)
    url = f"sqlite:///{path}"
    engine = open_engine(url)
    await create_schema(engine)
    try:
        yield Store(url, HistoryWriter(engine))
    finally:
        await engine.dispose()


Client = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@asynccontextmanager
async def serving(url: str, **options: Any) -> AsyncIterator[httpx.AsyncClient]:
    options = {"clock": lambda: NOW, "revalidate_after": 0.0, **options}
    app = create_app(url, public_url=PUBLIC_URL, **options)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL) as client,
    ):
        yield client


@pytest.fixture
def client(store: Store) -> Client:
    """``async with client() as http:`` — the app over ``store``; options go to create_app."""

    def open_client(**options: Any) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        return serving(store.url, **options)

    return open_client
