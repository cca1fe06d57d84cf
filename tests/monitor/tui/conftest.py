"""Fixtures for the TUI tests: a copy of the fixed history per test, and the app wired to it with
a mock HTTP transport and a frozen clock."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

import httpx
import pytest
from textual.pilot import Pilot
from textual.worker import WorkerState

from monitor.config import MonitorConfig
from monitor.store import HistoryReader, open_engine
from monitor.store.writer import HistoryWriter
from monitor.tui.app import MonitorApp
from monitor.tui.identity import Identity
from shared.resilience.testing import FakeClock
from tests.monitor.tui.history import ADMIN_ENV, ADMIN_TOKEN, NOW, build_history, make_config

Handler = Callable[[httpx.Request], httpx.Response]


@dataclass
class Store:
    path: Path
    config: MonitorConfig
    reader: HistoryReader
    writer: HistoryWriter


@pytest.fixture(scope="session")
def history_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tui-history") / "monitor.db"
    asyncio.run(build_history(f"sqlite:///{path}"))
    return path


@pytest.fixture
async def store(history_template: Path, tmp_path: Path) -> AsyncIterator[Store]:
    path = tmp_path / "monitor.db"
    for file in history_template.parent.glob(history_template.name + "*"):
        shutil.copy(file, tmp_path / file.name)
    url = f"sqlite:///{path}"
    reading, writing = open_engine(url, read_only=True), open_engine(url)
    try:
        yield Store(path, make_config(path), HistoryReader(reading), HistoryWriter(writing))
    finally:
        await reading.dispose()
        await writing.dispose()


def refuse(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"unexpected request: {request.method} {request.url}")


@dataclass
class AppFactory:
    store: Store
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def __call__(
        self,
        handler: Handler = refuse,
        *,
        environ: Mapping[str, str] | None = None,
        identity: Identity | None = None,
    ) -> MonitorApp:
        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        self.clients.append(client)
        # Only when given: the tests of other behaviour also run against an app without it.
        extra: dict[str, Any] = {} if identity is None else {"identity": identity}
        return MonitorApp(
            self.store.config,
            reader=self.store.reader,
            writer=self.store.writer,
            http=client,
            clock=FakeClock(wall_start=NOW),
            environ={ADMIN_ENV: ADMIN_TOKEN} if environ is None else environ,
            actor="tester",
            tz=UTC,
            refresh_interval=3600,
            **extra,
        )


@pytest.fixture
async def make_app(store: Store) -> AsyncIterator[AppFactory]:
    factory = AppFactory(store)
    yield factory
    for client in factory.clients:
        await client.aclose()


async def settle(pilot: Pilot[None]) -> None:
    """Wait until every worker (and whatever their messages started) has finished."""
    for _ in range(20):
        await pilot.pause()
        busy = (WorkerState.PENDING, WorkerState.RUNNING)
        if not any(worker.state in busy for worker in pilot.app.workers):
            await pilot.pause()
            return
        await pilot.app.workers.wait_for_complete()
    raise AssertionError("workers kept starting")
