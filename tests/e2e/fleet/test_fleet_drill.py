"""The README's drill against a fleet (issue #13, "Done when"): `questcity up --headless
--replicas 3 --monitors 2` in a clean directory — three backend processes sharing one key
directory, database and bucket, two monitors on one PostgreSQL store — then, as an on-call
engineer would:

1. kill -9 the monitor that leads (named by the lease row; its pid from up's record): the other
   one leads within two intervals, and the history has neither a gap longer than two intervals
   nor a check written twice;
2. fail S3 with `questcity chaos`: every replica's s3 breaker shows open in the store, and the
   TUI (driven with Textual's Pilot) says `open on 3/3`;
3. heal S3 and reset from the TUI: every replica's `/detailed` shows the breaker closed at once,
   while each one's own recovery was still seconds away;
4. the status page shows components, never replicas.

Real processes throughout: PostgreSQL, SeaweedFS, the fault proxies, three backends, two
monitors, the status page, each as `up` starts them.
"""

from __future__ import annotations

import html
import itertools
import os
import re
import signal
import time

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.config import MonitorConfig
from monitor.store import HistoryReader, open_engine
from monitor.store.errors import StoreNotInitialised
from monitor.store.models import LeaderLease, ReplicaState
from monitor.store.schema import checks
from monitor.store.writer import HistoryWriter
from monitor.tui.app import MonitorApp
from monitor.tui.screens.confirm import ConfirmModal
from monitor.tui.widgets.components import ComponentsTable
from shared.resilience.presets import S3_CIRCUIT_BREAKER_CONFIG
from tests.monitor.tui.conftest import settle
from tests.support.fleet import FleetStack
from tests.support.polling import eventually

TARGET = "questcity-api"
REPLICAS = 3
INTERVAL = 2.0
"""The check interval of the monitor.toml `up` writes (its health interval)."""
FRESH = 20.0
"""Seconds to each replica's own s3 recovery at the heal: 10 s for the TUI's reset, 10 to spare."""


@pytest.mark.asyncio(loop_scope="package")
async def test_the_fleet_drill(fleet: FleetStack) -> None:
    # The stack (fleet/conftest.py) is shared with test_fleet_healthy, which ran first.
    stack = fleet
    assert len(stack.backends) == REPLICAS
    config = stack.config()
    assert config.storage_url.startswith("postgresql")
    engine = open_engine(config.storage_url)
    try:
        reader = HistoryReader(engine)
        new_leader = await _kill_the_leader(stack, reader, engine)
        await _fail_s3_and_see_it_on_every_replica(stack, config, reader, engine)
        await _heal_and_reset_from_the_tui(stack, config, engine, new_leader)
        await _status_page_shows_components_not_replicas(stack)
    finally:
        await engine.dispose()


async def _kill_the_leader(
    stack: FleetStack, reader: HistoryReader, engine: AsyncEngine
) -> LeaderLease:
    lease: LeaderLease | None = None

    async def somebody_leads() -> bool:
        nonlocal lease
        try:
            lease = await reader.leader()
        except StoreNotInitialised:  # the monitors are still migrating it
            return False
        return lease is not None and lease.holder in ("monitor-1", "monitor-2")

    await eventually(somebody_leads, "a monitor leads", within=30.0, every=0.2)
    assert lease is not None
    await _wait_for_checks(engine, 3)  # the leader is checking
    leader = stack.recorded(lease.holder)
    assert leader.alive
    killed_at = time.time()  # (read first: the takeover is timed from no later than the kill)
    os.kill(leader.pid, signal.SIGKILL)

    successor: LeaderLease | None = None

    async def the_other_leads() -> bool:
        nonlocal successor
        successor = await reader.leader()
        return successor is not None and successor.holder not in ("", lease.holder)

    await eventually(the_other_leads, "the standby takes over", within=6 * INTERVAL, every=0.1)
    assert successor is not None
    assert successor.epoch > lease.epoch
    assert successor.acquired_at - killed_at <= 2 * INTERVAL, (successor, killed_at)

    # The new leader checks at once and on schedule: no gap longer than two intervals; no check
    # written twice; never two monitors checking at once (they would write twice as many).
    await _wait_for_checks(engine, 3, after=successor.acquired_at)
    times = await _check_times(engine)
    around = [t for t in times if killed_at - 4 * INTERVAL <= t]
    assert max(b - a for a, b in itertools.pairwise(around)) <= 2 * INTERVAL, around
    assert min(b - a for a, b in itertools.pairwise(times)) >= INTERVAL / 4, times
    span = times[-1] - times[0]
    assert len(times) - 1 <= span / INTERVAL + 2, (len(times), span)  # (+ the takeover's own)
    return successor


async def _fail_s3_and_see_it_on_every_replica(
    stack: FleetStack, config: MonitorConfig, reader: HistoryReader, engine: AsyncEngine
) -> None:
    assert stack.chaos("s3", "down") == "s3: down (new connections refused)"
    states: list[ReplicaState] = []

    async def open_everywhere() -> bool:
        nonlocal states
        states = await reader.replicas(TARGET)
        return len(states) == REPLICAS and all(_s3_breaker(s) == "open" for s in states)

    await eventually(open_everywhere, "every replica's s3 breaker open in the store", within=60.0)
    assert sorted(s.replica for s in states) == sorted(_keys(stack))
    assert sorted(s.instance.id for s in states if s.instance) == ["api-1", "api-2", "api-3"]

    async with httpx.AsyncClient(timeout=10.0) as http:
        app = _tui(config, engine, stack.token("admin"), http)
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            table = app.screen.query_one(ComponentsTable)
            assert table.cell_text(f"{TARGET}::s3", "breaker") == f"open on {REPLICAS}/{REPLICAS}"


async def _heal_and_reset_from_the_tui(
    stack: FleetStack, config: MonitorConfig, engine: AsyncEngine, leader: LeaderLease
) -> None:
    operator = {"Authorization": f"Bearer {stack.token('operator')}"}
    async with httpx.AsyncClient(timeout=10.0) as http:
        # The reset must be seen to beat each replica's own recovery by 10 s. On a loaded
        # machine step 2 may use up most of an open period (30 s): then, S3 still failing, wait
        # for the next trials to fail and open the breakers afresh, rather than race the clock.
        breaker = S3_CIRCUIT_BREAKER_CONFIG

        async def freshly_open() -> bool:
            now = [await _s3_breaker_of(http, url, operator) for url in stack.backends]
            return all(b["state"] == "open" and float(str(b["retry_after"])) >= FRESH for b in now)

        await eventually(
            freshly_open,
            f"every replica's s3 breaker open with >= {FRESH} s to its recovery",
            within=breaker.recovery_timeout + (breaker.timeout or 0.0) + 4 * INTERVAL,
            every=0.5,
        )
        assert stack.chaos("s3", "heal") == "s3: no fault (connections pass)"
        before = [await _s3_breaker_of(http, url, operator) for url in stack.backends]
        assert [b["state"] for b in before] == ["open"] * REPLICAS, before
        # Each replica's own recovery (its next trial) is still seconds away: a breaker seen
        # closed before then was closed by the reset, not by the passing of time.
        recovery_due = time.monotonic() + min(float(str(b["retry_after"])) for b in before)
        assert recovery_due - time.monotonic() >= 10.0, before

        app = _tui(config, engine, stack.token("admin"), http)
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            assert f"monitor {leader.holder} leads since" in _screen_text(app)
            table = app.screen.query_one(ComponentsTable)
            table.move_cursor(row=table.keys.index(f"{TARGET}::s3"), animate=False)
            await pilot.press("r")
            await settle(pilot)
            assert isinstance(app.screen, ConfirmModal)
            assert f"on {REPLICAS} replicas" in _screen_text(app)
            await pilot.click("#yes")
            await settle(pilot)
            outcome = app.last_result
        after = [await _s3_breaker_of(http, url, operator) for url in stack.backends]
        assert time.monotonic() < recovery_due
    assert [b["state"] for b in after] == ["closed"] * REPLICAS, after
    assert f"{REPLICAS}/{REPLICAS}" in outcome, outcome


async def _status_page_shows_components_not_replicas(stack: FleetStack) -> None:
    async with httpx.AsyncClient(timeout=10.0) as http:
        page = (await http.get(f"{stack.status}/")).text
        summary = (await http.get(f"{stack.status}/api/v2/summary.json")).text
    for shown in (page, summary):
        assert "Photos and avatars" in shown
        for key in _keys(stack):
            assert key not in shown
        for instance in ("api-1", "api-2", "api-3"):
            assert instance not in shown


# -- helpers ---------------------------------------------------------------------------------


def _keys(stack: FleetStack) -> list[str]:
    return [url.removeprefix("http://") for url in stack.backends]


def _s3_breaker(state: ReplicaState) -> str | None:
    return next((s.breaker_state for s in state.services if s.service == "s3"), None)


async def _s3_breaker_of(
    http: httpx.AsyncClient, base: str, headers: dict[str, str]
) -> dict[str, object]:
    answer = await http.get(f"{base}/api/v1/health/detailed", headers=headers)
    assert answer.status_code == 200, answer.text
    breaker: dict[str, object] = answer.json()["checks"]["s3"]["circuit_breaker"]
    return breaker


async def _check_times(engine: AsyncEngine) -> list[float]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(checks.c.at).where(checks.c.target == TARGET).order_by(checks.c.at)
        )
        return [float(at) for (at,) in rows]


async def _wait_for_checks(engine: AsyncEngine, count: int, *, after: float = 0.0) -> None:
    async def written() -> bool:
        return len([t for t in await _check_times(engine) if t >= after]) >= count

    await eventually(written, f"{count} checks written", within=10 * INTERVAL, every=0.2)


def _tui(
    config: MonitorConfig, engine: AsyncEngine, admin_token: str, http: httpx.AsyncClient
) -> MonitorApp:
    return MonitorApp(
        config,
        reader=HistoryReader(engine),
        writer=HistoryWriter(engine),
        http=http,
        environ={"QUESTCITY_ADMIN_TOKEN": admin_token},
        actor="drill",
    )


def _screen_text(app: MonitorApp) -> str:
    """What the screen shows, as plain text (its SVG screenshot's text, unescaped)."""
    svg = app.export_screenshot()
    text = html.unescape("".join(re.findall(r">([^<>]*)</text>", svg)))
    return re.sub(r"\s+", " ", text)
