"""The fleet on the on-call screen (#13): replica rows under a target, folded and unfolded and
kept so across refreshes; a service's breaker across its replicas (``open on 2/3``); which
monitor leads, and loudly when none does; a reset that reaches every replica the target has now.

Each test runs the app (Textual's Pilot) over a real SQLite store whose rows were written by the
store's own writer, with a frozen clock and the backends behind an httpx MockTransport.
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path

import httpx
import pytest
from rich.text import Text

from monitor.config import MonitorConfig, Target, parse_config
from monitor.discovery import Discovery, DiscoveryError, Replica
from monitor.store import (
    TARGET_COMPONENT,
    CheckRecord,
    Component,
    HistoryReader,
    Instance,
    ReplicaCheck,
    ServiceSample,
    Status,
    create_schema,
    open_engine,
)
from monitor.store.leases import LeaseStore
from monitor.store.writer import HistoryWriter
from monitor.tui.app import MonitorApp
from monitor.tui.screens import ConfirmModal, MainScreen, ResetOutcomesModal
from monitor.tui.widgets.banner import LeaderLine
from monitor.tui.widgets.components import ComponentsTable, heading_key
from shared.resilience.testing import FakeClock
from tests.monitor.tui.conftest import settle
from tests.monitor.tui.history import ADMIN_ENV, ADMIN_TOKEN, LEASE_TTL, NOW, lead

SIZE = (180, 50)
API = "questcity-api"
SOLO = "questcity-solo"
REPLICAS = ("10.0.0.5:8000", "10.0.0.6:8000", "10.0.0.7:8000")
HOSTILE_INSTANCE = "[@click=app.quit]api-[bold red]x[/]" + "z" * 300
Handler = Callable[[httpx.Request], httpx.Response]

CONFIG = """
[storage]
url = "sqlite:///{path}"

[[targets]]
name = "questcity-api"
display_name = "QuestCity API"
url = "http://api.questcity.test"
replicas = {replicas}
interval = 10
timeout = 5
admin_token_env = "QC_TEST_ADMIN_TOKEN"
services = {{ database = "Database", s3 = "Image storage" }}

[[targets]]
name = "questcity-solo"
display_name = "QuestCity Solo"
url = "http://solo.questcity.test"
interval = 10
timeout = 5
"""


def sample(service: str, breaker: str) -> ServiceSample:
    status = Status.HEALTHY if breaker == "closed" else Status.UNHEALTHY
    return ServiceSample(service, status, 20.0, 0 if breaker == "closed" else 4, breaker, {})


def replica_check(
    key: str, at: float, s3: str, *, instance: str | None = None, status: Status | None = None
) -> ReplicaCheck:
    shown = status or (Status.HEALTHY if s3 == "closed" else Status.DEGRADED)
    record = CheckRecord(
        API,
        at,
        shown,
        11.0,
        200,
        "s3 breaker open" if s3 != "closed" else None,
        (sample("database", "closed"), sample("s3", s3)),
    )
    return ReplicaCheck(key, record, Instance(instance or f"api-{key[-6]}", at - 7200))


async def write_round(
    writer: HistoryWriter, at: float, s3: Sequence[str], keys: Sequence[str] = REPLICAS, **kw: str
) -> None:
    """One round of checks: each replica's own, and the target's aggregate (worst breaker)."""
    replicas = [replica_check(key, at, state) for key, state in zip(keys, s3, strict=True)]
    if kw.get("instance"):
        replicas[0] = replica_check(keys[0], at, s3[0], instance=kw["instance"])
    worst = "open" if "open" in s3 else "half_open" if "half_open" in s3 else "closed"
    aggregate = CheckRecord(
        API,
        at,
        Status.DEGRADED if worst != "closed" else Status.HEALTHY,
        11.0,
        200,
        None,
        (sample("database", "closed"), sample("s3", worst)),
    )
    await writer.record_check(aggregate, replicas=replicas)
    solo = CheckRecord(SOLO, at, Status.HEALTHY, 9.0, 200, None, (sample("database", "closed"),))
    await writer.record_check(solo)


@dataclass
class Fleet:
    path: Path
    config: MonitorConfig
    reader: HistoryReader
    writer: HistoryWriter
    engine_urls: str
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def app(
        self,
        handler: Handler | None = None,
        *,
        discovery: Discovery | None = None,
        clock: FakeClock | None = None,
    ) -> MonitorApp:
        def refuse(request: httpx.Request) -> httpx.Response:
            raise AssertionError(f"unexpected request: {request.method} {request.url}")

        client = httpx.AsyncClient(transport=httpx.MockTransport(handler or refuse))
        self.clients.append(client)
        return MonitorApp(
            self.config,
            reader=self.reader,
            writer=self.writer,
            http=client,
            clock=clock or FakeClock(wall_start=NOW),
            environ={ADMIN_ENV: ADMIN_TOKEN},
            actor="tester",
            tz=UTC,
            refresh_interval=3600,
            discovery=discovery,
        )


async def open_fleet(tmp_path: Path, replicas: Sequence[str] = REPLICAS) -> AsyncIterator[Fleet]:
    path = tmp_path / "monitor.db"
    url = f"sqlite:///{path}"
    urls = "[" + ", ".join(f'"http://{key}"' for key in replicas) + "]"
    config = parse_config(CONFIG.format(path=path, replicas=urls), tmp_path / "monitor.toml")
    engine = open_engine(url)
    reading = open_engine(url, read_only=True)
    await create_schema(engine)
    writer = HistoryWriter(engine)
    await writer.sync_components(
        [
            Component(API, TARGET_COMPONENT, "QuestCity API", "Services", 0),
            Component(API, "database", "Database", "Services", 1),
            Component(API, "s3", "Image storage", "Services", 2),
            Component(SOLO, TARGET_COMPONENT, "QuestCity Solo", "Services", 3),
            Component(SOLO, "database", "Database", "Services", 4),
        ]
    )
    fleet = Fleet(path, config, HistoryReader(reading), writer, url)
    try:
        yield fleet
    finally:
        for client in fleet.clients:
            await client.aclose()
        await reading.dispose()
        await engine.dispose()


@pytest.fixture
async def fleet(tmp_path: Path) -> AsyncIterator[Fleet]:
    async for opened in open_fleet(tmp_path):
        await write_round(opened.writer, NOW - 15, ["closed", "closed", "closed"])
        await write_round(opened.writer, NOW - 5, ["open", "open", "closed"])
        engine = open_engine(opened.engine_urls)
        try:
            await lead(engine, "monitor-a", since=NOW - 3600, renewed=NOW - 2)
        finally:
            await engine.dispose()
        yield opened


def table(app: MonitorApp) -> ComponentsTable:
    return app.screen.query_one(ComponentsTable)


def replica_key(key: str) -> str:
    return f"replica\x1f{API}\x1f{key}"


def row_texts(app: MonitorApp) -> list[str]:
    shown = table(app)
    return [shown.cell_text(key, "component").strip() for key in shown.keys]


def leader_text(app: MonitorApp) -> str:
    line = app.screen.query_one(LeaderLine)
    rendered = line.render()
    return rendered.plain if isinstance(rendered, Text) else str(rendered)


def drawn(app: MonitorApp) -> str:
    """The screen as drawn (not the table's values: what reached the terminal)."""
    svg = app.export_screenshot()
    return html.unescape("".join(re.findall(r"<text[^>]*>(.*?)</text>", svg))).replace("\xa0", " ")


async def select(app: MonitorApp, key: str) -> None:
    shown = table(app)
    shown.move_cursor(row=shown.keys.index(key), animate=False)


# -- replica rows ------------------------------------------------------------------------------


async def test_replica_rows_under_the_target_with_their_own_figures(fleet: Fleet) -> None:
    app = fleet.app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        shown = table(app)
        assert row_texts(app) == [
            "QuestCity API",
            "Database",
            "Image storage",
            "▾ 3 replicas",
            *REPLICAS,
            "QuestCity Solo",
            "Database",
        ]
        first = replica_key(REPLICAS[0])
        assert shown.cell_text(first, "status") == "▲ degraded"
        assert shown.cell_text(first, "breaker") == "s3 OPEN"
        assert shown.cell_text(first, "response").strip() == "11 ms"
        assert shown.cell_text(first, "recent") == "api-5 · up 2h 00m"
        assert shown.cell_text(first, "error") == "s3 breaker open"
        assert shown.cell_text(replica_key(REPLICAS[2]), "breaker") == "closed"
        assert shown.cell_text(heading_key(API), "error") == "2/3 degraded"
        # The service's breaker says how many replicas agree; the aggregate alone said "open".
        assert shown.cell_text(f"{API}::s3", "breaker") == "open on 2/3"
        assert "open on 2/3" in drawn(app)
        assert shown.cell_text(f"{API}::database", "breaker") == "closed"
        # A one-replica target reads as it always has: no heading, no replica rows.
        assert heading_key(SOLO) not in shown.keys
        assert shown.cell_text(f"{SOLO}::database", "breaker") == "closed"


async def test_half_open_on_one_of_three(fleet: Fleet) -> None:
    await write_round(fleet.writer, NOW - 1, ["closed", "half_open", "closed"])
    app = fleet.app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert table(app).cell_text(f"{API}::s3", "breaker") == "half-open on 1/3"


async def test_space_folds_the_replicas_and_a_refresh_keeps_them_folded(fleet: Fleet) -> None:
    app = fleet.app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "open on 2/3" in drawn(app)
        await select(app, replica_key(REPLICAS[1]))
        await pilot.press("space")
        await settle(pilot)
        assert "▸ 3 replicas" in row_texts(app)
        assert not set(REPLICAS) & set(row_texts(app))
        assert table(app).selected_entry() is not None
        assert table(app).keys[table(app).cursor_row] == heading_key(API)

        await write_round(fleet.writer, NOW - 1, ["closed", "closed", "closed"])
        app.refresh_now()
        await settle(pilot)
        assert table(app).cell_text(f"{API}::s3", "breaker") == "closed"  # the refresh landed
        assert "open on 2/3" not in drawn(app)  # and reached the screen
        assert "▸ 3 replicas" in row_texts(app)  # and the fold held
        assert not set(REPLICAS) & set(row_texts(app))

        await pilot.press("enter")  # on the heading, enter unfolds too
        await settle(pilot)
        assert set(REPLICAS) <= set(row_texts(app))
        assert isinstance(app.screen, MainScreen)


async def test_more_than_five_replicas_start_folded(tmp_path: Path) -> None:
    keys = tuple(f"10.0.1.{n}:8000" for n in range(1, 7))
    async for fleet in open_fleet(tmp_path, keys):
        await write_round(fleet.writer, NOW - 5, ["closed"] * 6, keys)
        app = fleet.app()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert "▸ 6 replicas" in row_texts(app)
            assert not set(keys) & set(row_texts(app))
            # A filter on one replica's address shows it, folded or not.
            await pilot.press("slash", *"10.0.1.4")
            await settle(pilot)
            assert row_texts(app) == ["QuestCity API", "▸ 6 replicas", "10.0.1.4:8000"]


async def test_a_hostile_instance_id_reads_literally_and_short(fleet: Fleet) -> None:
    await write_round(
        fleet.writer, NOW - 1, ["closed", "closed", "closed"], instance=HOSTILE_INSTANCE
    )
    app = fleet.app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        shown = table(app).cell_text(replica_key(REPLICAS[0]), "recent")
        assert shown.startswith("[@click=app.quit]api-[bold red]x[/]zz")
        assert len(shown) < 80


# -- who leads ---------------------------------------------------------------------------------


async def test_the_leader_and_since_when(fleet: Fleet) -> None:
    app = fleet.app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert leader_text(app) == "monitor monitor-a leads since 21:13:20"
        assert not app.screen.query_one(LeaderLine).has_class("-stale")


async def test_a_lease_left_unrenewed_is_a_loud_warning_on_the_next_tick(fleet: Fleet) -> None:
    """Stale once this screen has seen the lease stand still for 2 x ttl on its own clock (the
    lease first seen at start counts as moved then), and leading again when it moves."""
    clock = FakeClock(wall_start=NOW)
    app = fleet.app(clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "leads since" in leader_text(app)
        await clock.advance(2 * LEASE_TTL - 0.5)
        app._tick()
        await settle(pilot)
        assert "leads since" in leader_text(app)
        await clock.advance(1.0)
        app._tick()  # nothing was written: only the lease is read again
        await settle(pilot)
        assert leader_text(app) == (
            "⚠ NO MONITOR IS LEADING — monitor-a has not renewed its lease for 15s: checks and "
            "alerts have stopped"
        )
        assert app.screen.query_one(LeaderLine).has_class("-stale")

        await renew(fleet, renewed=NOW - 3600)  # it moves (whatever time its clock wrote)
        app._tick()
        await settle(pilot)
        assert leader_text(app) == "monitor monitor-a leads since 21:13:20"
        assert not app.screen.query_one(LeaderLine).has_class("-stale")


@pytest.mark.parametrize(
    "skew",
    [pytest.param(-3600.0, id="leader-an-hour-behind"), pytest.param(12.0, id="tui-12s-behind")],
)
async def test_the_leaders_clock_is_not_the_tuis(fleet: Fleet, skew: float) -> None:
    """A leader whose clock wrote a renewal an hour old, or 12 s in this TUI's future, leads
    while its lease moves, and is stale 2 x ttl after it stops, on this TUI's clock alone."""
    clock = FakeClock(wall_start=NOW)
    app = fleet.app(clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(8):
            await renew(fleet, renewed=clock.wall() + skew)
            app._tick()
            await settle(pilot)
            assert "leads since" in leader_text(app)
            assert not app.screen.query_one(LeaderLine).has_class("-stale")
            await clock.advance(LEASE_TTL / 3)
        await clock.advance(2 * LEASE_TTL)
        app._tick()
        await settle(pilot)
        assert leader_text(app).startswith("⚠ NO MONITOR IS LEADING — monitor-a has not renewed")


async def renew(fleet: Fleet, *, renewed: float) -> None:
    """The leading monitor renews its lease, writing ``renewed`` as its clock's time."""
    engine = open_engine(fleet.engine_urls)
    try:
        leases = LeaseStore(engine)
        lease = await leases.read()
        assert lease is not None
        assert await leases.renew(lease, now=renewed) is not None
    finally:
        await engine.dispose()


async def test_checks_without_any_lease_are_a_loud_warning(tmp_path: Path) -> None:
    async for fleet in open_fleet(tmp_path):
        await write_round(fleet.writer, NOW - 5, ["closed"] * 3)
        app = fleet.app()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert leader_text(app).startswith("⚠ NO MONITOR IS LEADING — no monitor has taken")


async def test_a_hostile_monitor_id_reads_literally_and_short(fleet: Fleet) -> None:
    engine = open_engine(fleet.engine_urls)
    try:
        await lead(engine, "[@click=app.quit][bold]m" + "x" * 300, since=NOW - 60, renewed=NOW)
    finally:
        await engine.dispose()
    app = fleet.app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        text = leader_text(app)
        assert text.startswith("monitor [@click=app.quit][bold]mxx")
        assert text.endswith("leads since 22:12:20")
        assert len(text) < 100


# -- reset everywhere --------------------------------------------------------------------------


def backends(refuse_on: str | None = None) -> tuple[Handler, list[httpx.Request]]:
    requests: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if f"{request.url.host}:{request.url.port}" == refuse_on:
            return httpx.Response(401, json={"error": "unauthorized", "message": "no"})
        return httpx.Response(
            200,
            json={
                "service": "s3",
                "state": "closed",
                "previous_state": "open",
                "instance": {"id": f"api-{request.url.host[-1]}"},
            },
        )

    return answer, requests


async def test_reset_counts_the_replicas_and_lists_each_outcome(fleet: Fleet) -> None:
    handler, requests = backends(refuse_on=REPLICAS[1])
    app = fleet.app(handler)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await select(app, f"{API}::s3")
        await pilot.press("r")
        await settle(pilot)
        modal = app.screen
        assert isinstance(modal, ConfirmModal)
        assert modal.question.startswith("Reset s3 on 3 replicas of QuestCity API?")
        assert "open on 2/3 replicas now" in modal.question
        assert requests == []
        await pilot.press("y")
        await settle(pilot)

        assert sorted(f"{r.url.host}:{r.url.port}" for r in requests) == sorted(REPLICAS)
        assert {r.url.path for r in requests} == {"/api/v1/health/services/s3/reset"}
        outcomes = app.screen
        assert isinstance(outcomes, ResetOutcomesModal)
        lines = [line for line, _ in outcomes.lines]
        assert lines[0] == "✓ 10.0.0.5:8000 (api-5): open → closed"
        assert lines[1].startswith("✖ 10.0.0.6:8000 refused the token (401") or lines[1].startswith(
            "✖ 10.0.0.6:8000: refused the token (401"
        )
        assert lines[2] == "✓ 10.0.0.7:8000 (api-7): open → closed"
        assert "reset on 2/3" in outcomes.summary
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        # Until the next check: one replica still open (the one that refused), two reset here.
        assert table(app).cell_text(f"{API}::s3", "breaker") == "open on 1/3 ↺"
        assert "open on 1/3" in drawn(app)
        assert "open on 2/3" not in drawn(app)
        assert table(app).cell_text(replica_key(REPLICAS[0]), "breaker") == "closed ↺"
        assert table(app).cell_text(replica_key(REPLICAS[1]), "breaker") == "s3 OPEN"
        assert "reset on 2/3" in app.last_result

        # The next check shows what the replicas say, not the reset.
        await write_round(fleet.writer, NOW + 1, ["closed", "open", "closed"])
        app.refresh_now()
        await settle(pilot)
        assert table(app).cell_text(f"{API}::s3", "breaker") == "open on 1/3"
        assert "open on 1/3 ↺" not in drawn(app)


async def test_reset_everywhere_shows_closed_on_all(fleet: Fleet) -> None:
    handler, requests = backends()
    app = fleet.app(handler)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await select(app, f"{API}::s3")
        await pilot.press("r", "y")
        await settle(pilot)
        assert len(requests) == 3
        await pilot.press("escape")
        await settle(pilot)
        assert table(app).cell_text(f"{API}::s3", "breaker") == "closed ↺"


class FailingDiscovery(Discovery):
    async def replicas(self, target: Target) -> list[Replica]:
        raise DiscoveryError("no DNS server answered for api.questcity.svc")


async def test_reset_when_discovery_fails_says_so_and_resets_nothing(fleet: Fleet) -> None:
    app = fleet.app(discovery=FailingDiscovery())  # any request fails the test
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await select(app, f"{API}::s3")
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        assert "Nothing was reset" in app.last_result
        assert "no DNS server answered" in app.last_result
        assert table(app).cell_text(f"{API}::s3", "breaker") == "open on 2/3"
