"""The daemon's part in the signals (issue #14): the backend's word that a service is critical
reaches the store's catalogue (so the page's component list says "Major outage" for a down
database, as its incident does), written once per change; and a store that keeps failing is one
traceback, not one per check."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from monitor.config import parse_config
from monitor.daemon import MonitorDaemon
from monitor.impact import Condition
from monitor.store import Component, Status
from monitor.store_log import STORE_WARN_EVERY
from shared.resilience.testing import FakeClock, settle
from statuspage.model import build_groups
from tests.monitor.fake_backend import FakeBackend, detailed
from tests.monitor.store_refusals import RefusedChecks

T0 = 1_800_000_000.0
INTERVAL = 10.0
TOKEN = "QUESTCITY_MONITOR_TOKEN"
DATABASE = ("questcity-api", "database")


class Stack:
    def __init__(self, tmp_path: Path) -> None:
        self.clock = FakeClock(wall_start=T0)
        self.backend = FakeBackend()
        config = parse_config(
            f"""
[storage]
url = "sqlite:///{tmp_path}/monitor.db"

[[targets]]
name = "questcity-api"
url = "http://backend.test"
interval = {INTERVAL:g}
timeout = 5
token_env = "{TOKEN}"
display_name = "QuestCity API"
services = {{ database = "Database", s3 = "Photos" }}
""",
            tmp_path / "monitor.toml",
        )
        self.daemon = MonitorDaemon(
            config,
            clock=self.clock,
            write_window=0.0,
            transport=self.backend.transport,
            environ={TOKEN: self.backend.token},
        )

    def answer(self, *, database: str, critical: bool | None) -> None:
        document: dict[str, Any] = detailed(
            status="unhealthy" if database == "unhealthy" else "healthy", database=database
        )
        if critical is not None:
            document["checks"]["database"]["critical"] = critical
            document["checks"]["s3"]["critical"] = False
        self.backend.document = document

    async def check(self, times: int = 1) -> None:
        for _ in range(times):
            await self.daemon.check_target(self.daemon.config.targets[0])
            await settle()
            await self.clock.advance(INTERVAL)

    async def component(self, key: tuple[str, str]) -> Component:
        [found] = [c for c in await self.daemon.reader.components() if (c.target, c.service) == key]
        return found


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    stack = Stack(tmp_path)
    await stack.daemon.prepare()
    yield stack
    await stack.daemon.stop()


async def test_a_critical_database_named_in_the_config_is_stored_critical_and_a_major_outage(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[list[Component]] = []
    record_check = stack.daemon.writer.record_check

    async def recording(*args: Any, **kwargs: Any) -> Any:
        writes.append(list(kwargs.get("new_components", ())))
        return await record_check(*args, **kwargs)

    monkeypatch.setattr(stack.daemon.writer, "record_check", recording)
    stack.answer(database="unhealthy", critical=True)
    await stack.check(3)

    assert (await stack.component(DATABASE)).critical
    assert not (await stack.component(("questcity-api", "s3"))).critical
    assert [[(c.service, c.critical) for c in w] for w in writes] == [[("database", True)], [], []]
    # The page's component list, from the store's catalogue: the same words as the incident.
    [group] = build_groups(
        await stack.daemon.reader.components(), {DATABASE: (Status.UNHEALTHY, T0)}
    )
    [database] = [view for view in group.components if view.service == "database"]
    assert database.condition is Condition.MAJOR


async def test_critical_is_written_again_only_when_the_backend_changes_its_word(
    stack: Stack,
) -> None:
    stack.answer(database="healthy", critical=True)
    await stack.check()
    assert (await stack.component(DATABASE)).critical
    stack.answer(database="healthy", critical=None)  # (an answer that does not say)
    await stack.check()
    assert (await stack.component(DATABASE)).critical, "saying nothing changes nothing"
    stack.answer(database="healthy", critical=False)
    await stack.check()
    assert not (await stack.component(DATABASE)).critical


async def test_a_restarted_daemon_knows_what_the_store_has(tmp_path: Path) -> None:
    first = Stack(tmp_path)
    await first.daemon.prepare()
    first.answer(database="healthy", critical=True)
    await first.check()
    await first.daemon.stop()
    second = Stack(tmp_path)
    await second.daemon.prepare()
    try:
        second.answer(database="healthy", critical=True)
        assert (
            second.daemon.catalogue.to_write(second.daemon.config.targets[0], await _record(second))
            == []
        )
    finally:
        await second.daemon.stop()


async def _record(stack: Stack) -> Any:
    from monitor.probe import probe_replica

    target = stack.daemon.config.targets[0]
    check = await probe_replica(
        stack.daemon.client, target, target.url, token=stack.backend.token, clock=stack.clock
    )
    return check.record


async def test_a_store_that_keeps_failing_is_one_traceback_then_a_line_a_minute_and_a_recovery(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = RefusedChecks(stack.daemon.writer, monkeypatch)
    stack.answer(database="healthy", critical=True)
    checks = int(2.5 * STORE_WARN_EVERY / INTERVAL)  # 15 checks over 150 s
    with caplog.at_level(logging.INFO, logger="monitor"):
        await stack.check(checks)
        store.failing = False
        await stack.check(2)
    mine = [r for r in caplog.records if r.name == "monitor"]
    errors = [r for r in mine if getattr(r, "event", "") == "store_error"]
    assert [r.exc_info is not None for r in errors] == [True, False, False], (
        "one traceback as it starts; a line at 60 s and 120 s"
    )
    assert "could not record the check of questcity-api" in errors[0].getMessage()
    assert "still refuses checks (since 08:00:00 UTC): StoreUnavailable" in errors[1].getMessage()
    recovered = [r for r in mine if getattr(r, "event", "") == "store_recovered"]
    assert [r.getMessage() for r in recovered] == [
        "the store takes checks again (after 150 s of failures)"
    ]
    assert stack.daemon.checks == checks + 2
