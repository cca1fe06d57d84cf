"""``[[checks]]`` in the on-call TUI (#16), driven through Textual's pilot on a copy of the fixed
history with checks added to its config and their runs written to the store.

A check is a row of its own (no services, no replicas, no breaker): its kind beside its name,
``⊘`` when private, its status, since, latency and what its latest run found (a failed condition
in red, a healthy tls check's warning in yellow). Its detail says what it checks (never a URL's
secret), its conditions as written and its latest result. ``c`` runs it through the app's check
runner and records a manual check; ``r`` says a check has no breakers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from datetime import UTC

import httpx
import pytest
from textual.screen import Screen
from textual.widgets import Label, SelectionList, Sparkline, Static

from monitor.checks.conditions import parse_condition
from monitor.checks.spec import (
    Check,
    CheckKind,
    HttpSettings,
    Outcome,
    PostgresSettings,
    TcpSettings,
    TlsSettings,
)
from monitor.config import MonitorConfig
from monitor.store import CheckRecord, Component, Status
from monitor.tui.app import MonitorApp
from monitor.tui.screens import DetailScreen, MainScreen
from monitor.tui.widgets.components import COMPACT, ComponentsTable
from shared.resilience.testing import FakeClock
from tests.monitor.tui.conftest import Store, refuse, settle
from tests.monitor.tui.history import ADMIN_ENV, ADMIN_TOKEN, NOW

SIZE = (200, 50)
FRONT = "front-door::"
CERT = "cert::"
DB = "db::"
SECRET = "s3cret-token"
CLICK = "[@click=app.quit]"
HOSTILE_TITLE = f"[/] {CLICK} [bold red]x"
HOSTILE_ERROR = f'[BODY] == ok failed: got "[/]{CLICK}\x1b[31m\nred" [link=http://evil]x[/link]'

FRONT_CHECK = Check(
    name="front-door",
    kind=CheckKind.HTTP,
    settings=HttpSettings(url=f"https://ops:pw@front.questcity.test/health?token={SECRET}"),
    conditions=(
        parse_condition("[STATUS] == 200", CheckKind.HTTP),
        parse_condition("[BODY].status == alive", CheckKind.HTTP),
    ),
    interval=30.0,
    timeout=4.0,
    public=True,
    display_name="Front door",
)
CERT_CHECK = Check(
    name="cert",
    kind=CheckKind.TLS,
    settings=TlsSettings(host="questcity.test", port=443, min_days=14, warn_days=30),
    display_name="Certificate",
)
DB_CHECK = Check(
    name="db",
    kind=CheckKind.POSTGRES,
    settings=PostgresSettings(url_env="QC_DB_URL"),
    display_name="Database login with a rather long name",
)
FAILED = "[STATUS] == 200 failed: got 503"
WARNING = "certificate expires in 20 days (warn_days 30)"


class FakeRunner:
    """Answers each run with the next outcome, and remembers what it ran."""

    def __init__(self, *outcomes: Outcome | Exception) -> None:
        self.outcomes = list(outcomes)
        self.ran: list[Check] = []
        self.closed = False

    async def run(self, check: Check) -> Outcome:
        self.ran.append(check)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def aclose(self) -> None:
        self.closed = True


def with_checks(config: MonitorConfig, *checks: Check) -> MonitorConfig:
    return replace(config, checks=checks)


@pytest.fixture
async def checked(store: Store) -> Store:
    """The fixed history with three checks: the front door failing a condition since 3 runs
    ago, the certificate healthy with a warning, the database login never run."""
    for n, at in enumerate((NOW - 90, NOW - 60, NOW - 30)):
        await store.writer.record_check(
            CheckRecord("front-door", at, Status.UNHEALTHY, 40.0 + n, 503, FAILED)
        )
        await store.writer.record_check(CheckRecord("cert", at, Status.HEALTHY, 8.0, None, WARNING))
    store.config = with_checks(store.config, FRONT_CHECK, CERT_CHECK, DB_CHECK)
    return store


@pytest.fixture
async def clients() -> AsyncIterator[list[httpx.AsyncClient]]:
    made: list[httpx.AsyncClient] = []
    yield made
    for client in made:
        await client.aclose()


AppMaker = Callable[..., MonitorApp]


@pytest.fixture
def make(checked: Store, clients: list[httpx.AsyncClient]) -> AppMaker:
    def build(
        runner: FakeRunner | None = None,
        *,
        config: MonitorConfig | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> MonitorApp:
        client = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
        clients.append(client)
        return MonitorApp(
            config or checked.config,
            reader=checked.reader,
            writer=checked.writer,
            http=client,
            clock=FakeClock(wall_start=NOW),
            environ={ADMIN_ENV: ADMIN_TOKEN} if environ is None else environ,
            actor="tester",
            tz=UTC,
            refresh_interval=3600,
            check_runner=runner,
        )

    return build


def table(app: MonitorApp) -> ComponentsTable:
    return app.screen.query_one(ComponentsTable)


def select(app: MonitorApp, key: str) -> None:
    components = table(app)
    components.move_cursor(row=components.keys.index(key), animate=False)


def screen_text(app: MonitorApp) -> str:
    """Every Static and Label of the screen on top, as it reads."""
    return "\n".join(str(w.render()) for w in app.screen.query(Static))


def current(app: MonitorApp) -> Screen[object]:
    """The screen on top now (a call: mypy does not carry an earlier narrowing over)."""
    return app.screen


def running(app: MonitorApp) -> None:
    assert app.is_running and app.return_code is None


# -- rows -----------------------------------------------------------------------------------------


async def test_checks_are_rows_with_kind_status_latency_error_and_private_mark(
    make: AppMaker,
) -> None:
    app = make()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        components = table(app)
        # After the targets, in the config's order; no services, no replica rows.
        assert components.keys[-3:] == [FRONT, CERT, DB]
        assert components.cell_text(FRONT, "component") == "Front door http"
        assert components.cell_text(FRONT, "status") == "✖ unhealthy"
        assert components.cell_text(FRONT, "response") == "42 ms"
        assert components.cell_text(FRONT, "breaker") == ""
        assert components.cell_text(FRONT, "since").startswith("22:11 (")  # the first failing run
        assert components.cell_text(FRONT, "error") == FAILED
        # Private: the mark after its kind.
        assert components.cell_text(CERT, "component") == "Certificate tls ⊘"
        assert components.cell_text(CERT, "status") == "● healthy"
        assert components.cell_text(CERT, "error").startswith("certificate expires in 20 days")
        # Never run: unknown, its short kind and the mark shown whatever the title's length.
        assert components.cell_text(DB, "status") == "? unknown"
        assert components.cell_text(DB, "component").endswith("… pg ⊘")
        assert components.cell_text(DB, "error") == ""

        # A failed condition reads red; a healthy check's warning reads in the warning colour.
        column = [c.key for c in components._columns()].index("error")
        assert "red" in str(components.cells(FRONT)[column].style)
        assert "yellow" in str(components.cells(CERT)[column].style)

        # The filter finds checks by kind and by "private".
        await pilot.press("slash", *"tls")
        await settle(pilot)
        assert [k for k in table(app).keys if "::" in k and k.endswith("::")][-1:] == [CERT]
        assert FRONT not in table(app).keys
        await pilot.press("escape")
        await settle(pilot)


async def test_a_check_row_in_the_compact_layout_keeps_its_kind_and_mark(make: AppMaker) -> None:
    app = make()
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        components = table(app)
        assert components.compact
        cell = components.cell_text(DB, "component")
        assert cell.endswith(" pg ⊘") and len(cell) <= COMPACT[0].width - 1
        assert components.cell_text(FRONT, "status").endswith("unhealthy")


async def test_hostile_check_names_and_errors_render_literally(
    checked: Store, make: AppMaker
) -> None:
    hostile = replace(CERT_CHECK, name="x[/]y", display_name=HOSTILE_TITLE)
    long_error = HOSTILE_ERROR + " word" * 100
    await checked.writer.record_check(
        CheckRecord(hostile.name, NOW - 5, Status.UNHEALTHY, 9.0, None, long_error)
    )
    await checked.writer.record_check(
        CheckRecord("front-door", NOW - 4, Status.UNHEALTHY, 9.0, 200, f"[/]{CLICK}\x1b[31m\nred")
    )
    config = with_checks(checked.config, FRONT_CHECK, hostile)
    app = make(config=config)
    key = f"{hostile.name}::"
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        components = table(app)
        name = components.cell_text(key, "component")
        assert name.startswith("[/] [@click") and name.endswith(" tls ⊘")
        # Literal, one line: no escape sequence or line break reaches the terminal.
        assert components.cell_text(FRONT, "error") == f"[/]{CLICK} [31m red"
        error = components.cell_text(key, "error")
        assert error == "[BODY] == ok failed: got…"  # cut between words to its column
        running(app)

        select(app, key)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(current(app), DetailScreen)
        title = str(app.screen.query_one("#detail-title", Label).render())
        assert title == f"{HOSTILE_TITLE} (tls check x[/]y)"
        result = str(app.screen.query_one("#check-result", Static).render())
        assert "[/][@click=app.quit]" in result and "\x1b" not in result
        await pilot.click("#check-result")  # had the text been markup, this would quit
        await settle(pilot)
        running(app)
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(current(app), MainScreen)


# -- detail ---------------------------------------------------------------------------------------


async def test_the_detail_of_a_check_says_what_it_checks_without_secrets(
    make: AppMaker,
) -> None:
    app = make()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        select(app, FRONT)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, DetailScreen)
        assert str(screen.query_one("#detail-title", Label).render()) == (
            "Front door (http check front-door)"
        )
        what = str(screen.query_one("#check-what", Static).render())
        assert "kind       http" in what
        assert "checks     https://front.questcity.test/health" in what
        assert "every      30s, timeout 4s" in what
        assert "public     yes" in what
        conditions = str(screen.query_one("#check-conditions", Static).render())
        assert "• [STATUS] == 200\n• [BODY].status == alive" in conditions
        result = str(screen.query_one("#check-result", Static).render())
        assert result.startswith("unhealthy in 42 ms · HTTP 503")
        assert FAILED in result
        # Its history chart, as a target's: the three runs' latencies.
        assert screen.query_one("#recent-chart", Sparkline).data == [40.0, 41.0, 42.0]
        # No breaker or pool section; no URL secret anywhere on the screen.
        text = screen_text(app)
        assert "Circuit breaker" not in text and "Connection pool" not in text
        for secret in (SECRET, "ops", ":pw@", "token="):
            assert secret not in text

        await pilot.press("escape")
        select(app, CERT)
        await pilot.press("enter")
        await settle(pilot)
        what = str(app.screen.query_one("#check-what", Static).render())
        assert "public     no ⊘" in what
        assert "days       fails under 14, warns under 30" in what
        result = str(app.screen.query_one("#check-result", Static).render())
        assert f"warning: {WARNING}" in result


# -- keys -----------------------------------------------------------------------------------------


async def test_c_on_a_check_runs_it_and_records_a_manual_check(
    checked: Store, make: AppMaker
) -> None:
    runner = FakeRunner(
        Outcome(Status.HEALTHY, 33.0, 200),
        Outcome(Status.UNHEALTHY, 51.0, 200, error='[BODY].status == alive failed: got "dead"'),
    )
    app = make(runner)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        select(app, FRONT)
        await pilot.press("c")
        await settle(pilot)
        assert runner.ran == [FRONT_CHECK]
        latest = await checked.reader.latest("front-door")
        assert latest is not None
        record = latest.record
        assert (record.status, record.latency_ms, record.http_status) == (
            Status.HEALTHY,
            33.0,
            200,
        )
        assert record.manual and record.at == NOW and record.error is None
        assert app.last_result.endswith("Checked Front door: healthy in 33 ms.")
        # The row shows what it found.
        assert table(app).cell_text(FRONT, "status") == "● healthy"
        assert table(app).cell_text(FRONT, "error") == ""

        await pilot.press("c")  # and what failed, when it fails
        await settle(pilot)
        assert app.last_result.endswith(
            'Checked Front door: unhealthy in 51 ms ([BODY].status == alive failed: got "dead").'
        )
        assert table(app).cell_text(FRONT, "status") == "✖ unhealthy"
    assert not runner.closed  # the app's caller owns an injected runner


async def test_c_on_a_check_whose_run_fails_says_so_and_the_tui_goes_on(
    checked: Store, make: AppMaker
) -> None:
    runner = FakeRunner(RuntimeError("a bug in a kind"))
    app = make(runner)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        select(app, CERT)
        await pilot.press("c")
        await settle(pilot)
        assert app.last_result.endswith("Certificate could not be run (RuntimeError).")
        running(app)
    latest = await checked.reader.latest("cert")
    assert latest is not None and not latest.record.manual


async def test_r_on_a_check_says_a_check_has_no_breakers(checked: Store, make: AppMaker) -> None:
    app = make(FakeRunner())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        select(app, FRONT)
        await pilot.press("r")  # the transport refuses every request: none is made
        await settle(pilot)
        assert isinstance(current(app), MainScreen)
        assert "Front door is a http check: a check has no circuit breakers" in app.last_result
        # Space (replicas) and n (no open incident) on a check row do nothing harmful.
        await pilot.press("space", "n")
        await settle(pilot)
        running(app)
        select(app, FRONT)
        await pilot.press("enter", "r")
        await settle(pilot)
        assert isinstance(current(app), DetailScreen)
        assert "a check has no circuit breakers" in app.last_result
    events = await checked.reader.incidents(with_events=True)
    assert not any(
        e.kind == "breaker_reset" and i.target == "front-door" for i in events for e in i.events
    )


# -- the status page's dialogs ------------------------------------------------------------------


async def test_incident_and_window_dialogs_offer_public_checks_only(
    checked: Store, make: AppMaker
) -> None:
    """Incidents and maintenance windows are the status page's story: a private check, not on
    the page, is not offered (its failures alert operators alone)."""
    catalogue = await checked.reader.components()
    await checked.writer.sync_components(
        [
            *catalogue,
            Component("front-door", "", "Front door", "Services", 10, kind="http", public=True),
            Component("cert", "", "Certificate", "Services", 11, kind="tls", public=False),
        ]
    )
    app = make()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for keys in (("i", "o"), ("escape", "escape", "m", "s")):
            await pilot.press(*keys)
            await settle(pilot)
            picks: SelectionList[str] = app.screen.query_one(SelectionList)
            offered = {str(picks.get_option_at_index(n).value) for n in range(picks.option_count)}
            assert "front-door" in offered and "cert" not in offered
            assert "questcity-api/database" in offered


# -- the real runner ------------------------------------------------------------------------------


async def test_c_runs_a_real_tcp_check_through_the_default_runner(
    checked: Store, make: AppMaker
) -> None:
    """No runner injected: the app makes a CheckRunner with its clock and environment."""

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    check = Check(
        name="gate",
        kind=CheckKind.TCP,
        settings=TcpSettings(host="127.0.0.1", port=port),
        timeout=2.0,
    )
    app = make(config=with_checks(checked.config, check))
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert table(app).cell_text("gate::", "status") == "? unknown"
            select(app, "gate::")
            await pilot.press("c")
            await settle(pilot)
            assert table(app).cell_text("gate::", "status") == "● healthy"
    finally:
        server.close()
        await server.wait_closed()
    latest = await checked.reader.latest("gate")
    assert latest is not None and latest.record.manual
    assert latest.record.status is Status.HEALTHY
    assert latest.record.at == NOW
