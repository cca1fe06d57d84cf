"""The daemon runs ``[[checks]]`` (issue #16), end to end on a fake clock: a fake runner scripted
with each run's outcome, the real store (SQLite), incident tracker and alert engine, and a
webhook receiver (behind the daemon's transport) recording every notice.

A failing check is stored with its condition text and rolled up like a target's, pages
``check_failing`` after ``open_after`` runs and resolves after the hold-down; a public check
opens an incident, a private one never does (one made private has its open incident closed
at the restart); a certificate warning pages and leaves the
component healthy; a silence holds the check's notices; a runner that hangs or raises harms no
other check nor a target, and one that ignores its cancellation is left behind, not waited for;
a check's run skipped while it runs within its bound is not the
monitor's fault."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobExecutionEvent
from sqlalchemy import select

from monitor import alert_actions
from monitor.catalogue import POSITIONS_PER_TARGET
from monitor.check_jobs import CANCEL_GRACE, LEFT_RUNNING, NOT_LEADING, OVERRAN, RUN_GRACE
from monitor.checks.spec import Check, CheckKind, HttpSettings, Outcome, TcpSettings, TlsSettings
from monitor.config import AlertRules, IncidentRules, MonitorConfig, Notifier, Target
from monitor.daemon import MonitorDaemon
from monitor.leadership import lease_ttl
from monitor.schedule import first_runs
from monitor.self_alerts import CHECKS_MISSED, STORE_UNWRITABLE
from monitor.store import TARGET_COMPONENT, Alert, IncidentState, LeaseLost, Status
from monitor.store.schema import rollups
from shared.resilience.testing import FakeClock, settle
from tests.monitor.checks.http_target import HttpTarget, Reply
from tests.monitor.fake_backend import FakeBackend
from tests.monitor.store_refusals import RefusedChecks
from tests.support.polling import eventually

T0 = 1_800_000_000.0  # 08:00:00 UTC
INTERVAL = 10.0
HOLD_DOWN = 30.0
OPEN_AFTER = 3
FAILED_503 = "[STATUS] == 200 failed: got 503"
WARNING = "certificate expires in 20 days (warn_days 30)"

API = Target("questcity-api", "http://backend.test", interval=INTERVAL, timeout=5.0)
FRONT_DOOR = Check(
    "front-door",
    CheckKind.HTTP,
    HttpSettings("https://questcity.example/"),
    interval=INTERVAL,
    public=True,
    display_name="Front door",
    group="Players",
)
VAULT = Check(
    "vault-port", CheckKind.TCP, TcpSettings("10.0.0.7", 8200), interval=INTERVAL, public=False
)
CERTIFICATE = Check(
    "front-door-tls",
    CheckKind.TLS,
    TlsSettings("questcity.example"),
    interval=INTERVAL,
    public=True,
    display_name="Certificate",
)
HEALTHY = Outcome(Status.HEALTHY, 30.0, http_status=200)


class Stubborn:
    """A run that swallows its first cancellation (a fault of ours), then goes on until
    ``release`` is set (then healthy) or it is cancelled again."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.swallowed = False
        self.ended = False

    async def __call__(self) -> Outcome:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.swallowed = True
        try:
            await self.release.wait()
        finally:
            self.ended = True
        return HEALTHY


Script = Outcome | BaseException | asyncio.Event | Stubborn


class FakeRunner:
    """Runs a check as scripted: an outcome, an exception to raise, an event to hang on
    until set (then healthy), or a stubborn run. Unscripted checks are healthy."""

    def __init__(self) -> None:
        self.script: dict[str, Script] = {}
        self.runs: list[str] = []
        self.closed = False

    async def run(self, check: Check) -> Outcome:
        self.runs.append(check.name)
        step = self.script.get(check.name, HEALTHY)
        if isinstance(step, asyncio.Event):
            await step.wait()
            return HEALTHY
        if isinstance(step, BaseException):
            raise step
        if isinstance(step, Stubborn):
            return await step()
        return step

    async def aclose(self) -> None:
        self.closed = True


def config_for(tmp_path: Path, *checks: Check) -> MonitorConfig:
    return MonitorConfig(
        path=tmp_path / "monitor.toml",
        storage_url=f"sqlite:///{tmp_path}/monitor.db",
        targets=(API,),
        checks=checks or (FRONT_DOOR, VAULT, CERTIFICATE),
        incidents=IncidentRules(open_after=OPEN_AFTER, resolve_after=2),
        alerts=AlertRules(hold_down=HOLD_DOWN, unreachable_for=300.0),
        notifiers=(Notifier("webhook", url="http://hooks.test/alerts"),),
    )


class Stack:
    def __init__(self, tmp_path: Path, *checks: Check, start: float = T0) -> None:
        self.clock = FakeClock(wall_start=start)
        self.backend = FakeBackend()
        self.runner = FakeRunner()
        self.notices: list[dict[str, object]] = []
        self.daemon = MonitorDaemon(
            config_for(tmp_path, *checks),
            clock=self.clock,
            write_window=0.0,
            transport=httpx.MockTransport(self._route),
            check_runner=self.runner,
        )

    def _route(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "hooks.test":
            self.notices.append(json.loads(request.content))
            return httpx.Response(204)
        return self.backend.handle(request)

    async def run(self, check: Check, times: int = 1) -> None:
        """``times`` runs of ``check``, one interval apart (the clock moves after each)."""
        for _ in range(times):
            await self.daemon.run_check(check)
            await settle()
            await self.clock.advance(INTERVAL)

    def sent(self, rule: str, component: str | None = None) -> list[tuple[str, str]]:
        """(state, summary) of each notice of ``rule`` (on ``component``), in order."""
        return [
            (str(n["state"]), str(n["summary"]))
            for n in self.notices
            if n["rule"] == rule and (component is None or n["component"] == component)
        ]

    async def alerts(self, rule: str) -> list[Alert]:
        return [a for a in await self.daemon.reader.alerts(active_only=False) if a.rule == rule]


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    stack = Stack(tmp_path)
    await stack.daemon.prepare()
    yield stack
    await stack.daemon.stop()


async def test_each_check_is_a_component_after_the_targets(stack: Stack) -> None:
    components = {c.target: c for c in await stack.daemon.reader.components()}
    block = POSITIONS_PER_TARGET  # one target's block first
    front, vault = components["front-door"], components["vault-port"]
    assert (front.service, front.display_name, front.group) == (
        TARGET_COMPONENT,
        "Front door",
        "Players",
    )
    assert (front.kind, front.public, front.position) == ("http", True, block)
    assert (vault.display_name, vault.group) == ("vault-port", "Services")
    assert (vault.kind, vault.public, vault.position) == ("tcp", False, block + 1)
    assert (components["front-door-tls"].kind, components["front-door-tls"].position) == (
        "tls",
        block + 2,
    )
    assert components["questcity-api"].kind is None


async def test_a_failing_check_is_stored_rolled_up_paged_and_resolved(stack: Stack) -> None:
    stack.runner.script["front-door"] = Outcome(Status.UNHEALTHY, 41.0, 503, error=FAILED_503)
    await stack.run(FRONT_DOOR, OPEN_AFTER - 1)
    latest = await stack.daemon.reader.latest("front-door")
    assert latest is not None
    assert (latest.record.status, latest.record.error) == (Status.UNHEALTHY, FAILED_503)
    assert (latest.record.http_status, latest.record.latency_ms) == (503, 41.0)
    async with stack.daemon.engine.connect() as connection:
        rows = (
            await connection.execute(
                select(rollups.c.period, rollups.c.checks, rollups.c.up).where(
                    rollups.c.target == "front-door"
                )
            )
        ).all()
    assert sorted(rows) == [("day", 2, 0), ("hour", 2, 0)]
    assert stack.sent("check_failing") == [], f"{OPEN_AFTER - 1} runs of {OPEN_AFTER}"

    await stack.run(FRONT_DOOR)
    assert stack.sent("check_failing", "front-door") == [
        ("firing", f"Front door: {FAILED_503} since 08:00:00 UTC")
    ]
    assert {n["rule"] for n in stack.notices} == {"check_failing"}

    stack.runner.script["front-door"] = HEALTHY
    await stack.run(FRONT_DOOR, int(HOLD_DOWN / INTERVAL) + 1)
    assert [s for s, _ in stack.sent("check_failing")] == ["firing", "resolved"]
    [alert] = await stack.alerts("check_failing")
    assert alert.resolved_at is not None
    states = await stack.daemon.reader.states()
    assert states[("front-door", TARGET_COMPONENT)].status is Status.HEALTHY


async def test_a_public_check_opens_an_incident_and_a_private_one_does_not(stack: Stack) -> None:
    down = Outcome(Status.UNREACHABLE, None, error="connection refused")
    stack.runner.script.update({"front-door": down, "vault-port": down})
    for _ in range(OPEN_AFTER + 1):
        await stack.daemon.run_check(FRONT_DOOR)
        await stack.daemon.run_check(VAULT)
        await settle()
        await stack.clock.advance(INTERVAL)
    incidents = await stack.daemon.reader.incidents(state=IncidentState.OPEN)
    assert [(i.target, i.title) for i in incidents] == [("front-door", "Major outage: Front door")]
    # The private check pages its operators all the same.
    assert [s for s, _ in stack.sent("check_failing", "vault-port")] == ["firing"]
    assert stack.sent("check_failing", "vault-port")[0][1].startswith(
        "vault-port: connection refused since"
    )


async def test_a_check_made_private_has_its_open_incident_closed_at_the_restart(
    tmp_path: Path,
) -> None:
    down = Outcome(Status.UNREACHABLE, None, error="connection refused")
    first = Stack(tmp_path)
    await first.daemon.prepare()
    first.runner.script.update({"front-door": down, "front-door-tls": down})
    try:
        for _ in range(OPEN_AFTER):
            await first.daemon.run_check(FRONT_DOOR)
            await first.daemon.run_check(CERTIFICATE)
            await settle()
            await first.clock.advance(INTERVAL)
        opened = {i.target: i.id for i in await first.daemon.reader.incidents()}
        assert opened.keys() == {"front-door", "front-door-tls"}
        taken = await first.daemon.writer.update_incident(
            opened["front-door-tls"], "identified", "We are on it.", by="alice", at=T0 + 60
        )
        assert taken is not None and taken.taken_over
    finally:
        await first.daemon.stop()

    private = dataclasses.replace(FRONT_DOOR, public=False)
    made_private = (private, VAULT, dataclasses.replace(CERTIFICATE, public=False))
    second = Stack(tmp_path, *made_private, start=T0 + 3600)
    await second.daemon.prepare()
    try:
        closed = await second.daemon.reader.incident(opened["front-door"])
        assert closed is not None and closed.state is IncidentState.RESOLVED
        assert closed.resolved_at == T0 + 3600
        [note] = [e for e in closed.events if e.kind == "note"]
        assert not note.public
        assert note.text.startswith("Front door is no longer public (its check was made private)")
        assert [e.text for e in closed.events if e.kind == "resolved"] == [
            "Front door is no longer public."
        ]
        # The one a person took over is theirs to close.
        kept = await second.daemon.reader.incident(opened["front-door-tls"])
        assert kept is not None and kept.state is IncidentState.OPEN
        assert second.daemon.incidents.open_causes() == {
            ("front-door-tls", TARGET_COMPONENT): opened["front-door-tls"]
        }
        # Failing on, the private check's page goes on (fired before the restart) and it
        # opens nothing.
        second.runner.script["front-door"] = down
        await second.run(private, OPEN_AFTER + 1)
        paged = [a for a in await second.alerts("check_failing") if a.target == "front-door"]
        assert [a.resolved_at for a in paged] == [None]
        still = await second.daemon.reader.incidents(state=IncidentState.OPEN)
        assert [i.id for i in still] == [opened["front-door-tls"]]
    finally:
        await second.daemon.stop()


async def test_a_certificate_warning_pages_and_the_component_stays_healthy(stack: Stack) -> None:
    stack.runner.script["front-door-tls"] = Outcome(Status.HEALTHY, 12.0, warning=WARNING)
    await stack.run(CERTIFICATE, OPEN_AFTER + 1)
    assert stack.sent("certificate_expiring", "front-door-tls") == [
        ("firing", f"Certificate: {WARNING}")
    ]
    assert stack.sent("check_failing") == []
    states = await stack.daemon.reader.states()
    assert states[("front-door-tls", TARGET_COMPONENT)].status is Status.HEALTHY
    latest = await stack.daemon.reader.latest("front-door-tls")
    assert latest is not None and latest.record.error == WARNING  # the TUI shows it
    assert await stack.daemon.reader.incidents() == [], "players are not told of a renewal"


async def test_a_silence_on_the_check_holds_its_notices(stack: Stack) -> None:
    await alert_actions.silence(
        stack.daemon.reader,
        stack.daemon.writer,
        "front-door",
        7200.0,
        by="alice",
        reason=None,
        at=T0,
    )
    await stack.clock.advance(INTERVAL)  # the engine reads silences again after 5 s
    stack.runner.script["front-door"] = Outcome(Status.UNHEALTHY, 41.0, 503, error=FAILED_503)
    stack.runner.script["vault-port"] = Outcome(Status.UNREACHABLE, None, error="timed out")
    for _ in range(OPEN_AFTER):
        await stack.daemon.run_check(FRONT_DOOR)
        await stack.daemon.run_check(VAULT)
        await settle()
        await stack.clock.advance(INTERVAL)
    [alert] = [a for a in await stack.alerts("check_failing") if a.target == "front-door"]
    assert alert.resolved_at is None, "recorded and shown as usual"
    assert stack.sent("check_failing", "front-door") == [], "its notice is held"
    assert [s for s, _ in stack.sent("check_failing", "vault-port")] == ["firing"]


async def test_a_runner_that_hangs_or_raises_stops_no_other_check_nor_a_target(
    stack: Stack,
) -> None:
    hung = asyncio.Event()
    stack.runner.script["front-door"] = hung
    stack.runner.script["vault-port"] = RuntimeError("a bug in a kind's code")
    running = asyncio.ensure_future(stack.daemon.run_check(FRONT_DOOR))
    await settle()
    crashed = await stack.daemon.run_check(VAULT)
    target = await stack.daemon.check_target(API)
    certificate = await stack.daemon.run_check(CERTIFICATE)
    assert not running.done()
    assert (crashed.status, target.status, certificate.status) == (
        Status.UNKNOWN,
        Status.HEALTHY,
        Status.HEALTHY,
    )
    assert crashed.error == "the monitor could not run this check"

    await stack.clock.advance(FRONT_DOOR.timeout + RUN_GRACE)
    cut = await asyncio.wait_for(running, 5.0)
    assert (cut.status, cut.error) == (Status.UNKNOWN, OVERRAN)
    latest = await stack.daemon.reader.latest_many(["front-door", "vault-port", "questcity-api"])
    assert {name: c.record.status for name, c in latest.items()} == {
        "front-door": Status.UNKNOWN,
        "vault-port": Status.UNKNOWN,
        "questcity-api": Status.HEALTHY,
    }
    assert stack.daemon.checks == 4


async def test_a_run_that_ignores_its_cancellation_is_left_behind_not_waited_for(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stack = Stack(tmp_path)
    await stack.daemon.prepare()
    stubborn, never = Stubborn(), Stubborn()
    stack.runner.script.update({"front-door": stubborn, "front-door-tls": never})
    try:
        running = asyncio.ensure_future(stack.daemon.run_check(FRONT_DOOR))
        await settle()
        await stack.clock.advance(FRONT_DOOR.timeout + RUN_GRACE)
        assert stubborn.swallowed and not running.done()
        await stack.clock.advance(CANCEL_GRACE)
        cut = await asyncio.wait_for(running, 5.0)  # the job is not held by its run
        assert (cut.status, cut.error) == (Status.UNKNOWN, OVERRAN)
        assert "ignored its cancellation: left behind" in caplog.text
        # While it runs on, the check's runs start no other beside it, and say so.
        again = await stack.daemon.run_check(FRONT_DOOR)
        assert (again.status, again.error) == (Status.UNKNOWN, LEFT_RUNNING)
        assert stack.runner.runs.count("front-door") == 1
        assert (await stack.daemon.run_check(VAULT)).status is Status.HEALTHY
        # Once it ends at last (logged), the check runs again.
        stubborn.release.set()
        stack.runner.script["front-door"] = HEALTHY
        await settle()
        assert "the run of check front-door left behind has ended" in caplog.text
        assert (await stack.daemon.run_check(FRONT_DOOR)).status is Status.HEALTHY

        # One still left behind at the stop is cancelled again, and ends.
        running = asyncio.ensure_future(stack.daemon.run_check(CERTIFICATE))
        await settle()
        await stack.clock.advance(CERTIFICATE.timeout + RUN_GRACE)
        await stack.clock.advance(CANCEL_GRACE)
        assert (await asyncio.wait_for(running, 5.0)).error == OVERRAN
    finally:
        await asyncio.wait_for(stack.daemon.stop(), 5.0)
    assert never.ended and not never.release.is_set()


async def missed(stack: Stack, job: str) -> None:
    """APScheduler's listener call for a run refused (the last still running), and the alert
    it writes in the background, done."""
    event = JobExecutionEvent(
        EVENT_JOB_MAX_INSTANCES, job, "default", datetime.fromtimestamp(T0, UTC)
    )
    stack.daemon._on_missed(event)
    while stack.daemon._reporting:
        await asyncio.wait(set(stack.daemon._reporting))
    await settle()


async def test_a_check_run_skipped_while_it_runs_within_its_bound_is_not_the_monitors_fault(
    stack: Stack,
) -> None:
    hung = asyncio.Event()
    stack.runner.script["front-door"] = hung
    running = asyncio.ensure_future(stack.daemon.run_check(FRONT_DOOR))
    await settle()
    for _ in range(OPEN_AFTER + 1):
        await missed(stack, "check:front-door")
    assert stack.sent(CHECKS_MISSED) == [], "a slow check's run is not a missed check"
    hung.set()
    await asyncio.wait_for(running, 5.0)

    # A run still going past its timeout and a whole interval more is stuck: the monitor's.
    stack.daemon._started["front-door"] = stack.clock.monotonic()
    await stack.clock.advance(FRONT_DOOR.timeout + FRONT_DOOR.interval + 0.1)
    for _ in range(OPEN_AFTER):
        await missed(stack, "check:front-door")
    [(state, summary)] = stack.sent(CHECKS_MISSED, "@monitor/front-door")
    assert state == "firing"
    assert summary.startswith(f"front-door: {OPEN_AFTER} checks skipped")
    stack.daemon._started.pop("front-door")

    # A run on time clears it (after the hold-down), as for a target.
    await stack.run(FRONT_DOOR, int(HOLD_DOWN / INTERVAL) + 2)
    assert [s for s, _ in stack.sent(CHECKS_MISSED)] == ["firing", "resolved"]


async def test_a_restart_keeps_a_check_s_missed_alert_judged_not_orphaned(tmp_path: Path) -> None:
    first = Stack(tmp_path)
    await first.daemon.prepare()
    fired = await first.daemon.writer.fire_alert(
        CHECKS_MISSED, "@monitor", "front-door", "front-door: 2 checks skipped", T0 - 99
    )
    await first.daemon.stop()
    second = Stack(tmp_path)
    await second.daemon.prepare()
    try:
        await second.run(VAULT)  # the first run judges the orphans
        alert = await second.daemon.reader.alert(fired)
        assert alert is not None and alert.resolved_at is None, "a check's job: still judged"
    finally:
        await second.daemon.stop()


def test_first_runs_stagger_checks_with_the_targets_and_the_lease_follows_the_shortest(
    tmp_path: Path,
) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    runs = first_runs([API, FRONT_DOOR, VAULT], now)
    step = timedelta(seconds=0.05)
    assert runs == {"questcity-api": now, "front-door": now + step, "vault-port": now + 2 * step}
    assert first_runs([API], now) == {"questcity-api": now}

    fast = dataclasses.replace(VAULT, interval=2.0, timeout=1.0)
    assert lease_ttl(config_for(tmp_path, FRONT_DOOR)) == pytest.approx(6.0)
    assert lease_ttl(config_for(tmp_path, fast)) == pytest.approx(1.2)


async def test_start_schedules_one_job_per_check_and_stop_closes_the_runner(
    tmp_path: Path,
) -> None:
    runner = FakeRunner()
    daemon = MonitorDaemon(
        config_for(tmp_path),
        write_window=0.0,
        transport=httpx.MockTransport(FakeBackend().handle),
        check_runner=runner,
    )
    await daemon.start()
    try:
        assert daemon.scheduler is not None
        jobs = {job.id: job for job in daemon.scheduler.get_jobs()}
        for check in (FRONT_DOOR, VAULT, CERTIFICATE):
            job = jobs[f"check:{check.name}"]
            assert job.args == (check,)
            assert (job.max_instances, job.coalesce, job.misfire_grace_time) == (1, True, 10)
            assert job.trigger.interval == timedelta(seconds=check.interval)
        await eventually(
            _ran(runner, {"front-door", "vault-port", "front-door-tls"}),
            "every check's first run",
            within=10.0,
            every=0.01,
        )
    finally:
        await daemon.stop()
    assert runner.closed


def _ran(runner: FakeRunner, names: set[str]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return names <= set(runner.runs)

    return check


async def test_a_store_refusing_a_check_pages_as_the_monitors_and_checking_goes_on(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = RefusedChecks(stack.daemon.writer, monkeypatch)
    await stack.run(VAULT, OPEN_AFTER)
    assert stack.daemon.checks == OPEN_AFTER
    [(state, summary)] = stack.sent(STORE_UNWRITABLE, "@monitor")
    assert state == "firing"
    assert "cannot write its store (the store file is read-only)" in summary
    store.failing = False
    await stack.run(VAULT)
    latest = await stack.daemon.reader.latest("vault-port")
    assert latest is not None and latest.record.status is Status.HEALTHY


async def test_a_lost_lease_stops_the_checks(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    async def taken(*args: object, **kwargs: object) -> object:
        raise LeaseLost("another monitor leads")

    monkeypatch.setattr(stack.daemon.writer, "record_check", taken)
    await stack.run(FRONT_DOOR)
    assert stack.daemon.lease_lost
    runs = len(stack.runner.runs)
    record = await stack.daemon.run_check(VAULT)
    assert (record.status, record.error) == (Status.UNKNOWN, NOT_LEADING)
    assert len(stack.runner.runs) == runs, "nothing runs once another monitor leads"


async def test_the_daemon_s_own_runner_checks_a_real_front_door(tmp_path: Path) -> None:
    async with HttpTarget({"/": Reply(503, b"down")}) as server:
        check = Check("front-door", CheckKind.HTTP, HttpSettings(server.url("/")), public=True)
        config = dataclasses.replace(config_for(tmp_path), checks=(check,))
        daemon = MonitorDaemon(config, write_window=0.0)  # its own CheckRunner
        await daemon.prepare()
        try:
            record = await daemon.run_check(check)
        finally:
            await daemon.stop()
    assert (record.status, record.http_status) == (Status.UNHEALTHY, 503)
    assert record.error is not None and "[STATUS] < 400" in record.error
