"""MonitorDaemon.start(): the real AsyncIOScheduler, a fake backend behind ``httpx.MockTransport``
and a SQLite store in the test's tmp directory.

Nothing here waits for a timer: every job's first run is due at start, and the tests poll (bounded)
until the scheduler has run it; a later run is made due by moving the job's next run time.

Tests other than the ``stop()`` ones let the runs they started end before ``stop()``
(:func:`quiesce` pauses the scheduler and waits for the runs APScheduler reports as submitted to
end), so that what they check never depends on how ``stop()`` treats a check in flight; the
``stop()`` tests at the end stop the daemon in the middle of a probe and of a write on purpose.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from select import select as wait_readable

import httpx
import pytest
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
    JobEvent,
)
from sqlalchemy import func, insert, select

from monitor.config import MonitorConfig, Notifier, Retention, Target
from monitor.daemon import RETENTION_JOB, MonitorDaemon
from monitor.schedule import PHASE_STEP, first_retention, first_runs
from monitor.store import (
    TARGET_COMPONENT,
    CheckRecord,
    Component,
    ReplicaCheck,
    Status,
    create_schema,
    open_engine,
)
from monitor.store.schema import checks, day_strips, rollups
from shared.resilience.testing import FakeClock
from tests.monitor.fake_backend import detailed
from tests.support.polling import eventually

ROOT = Path(__file__).resolve().parents[2]
TOKEN_ENV = "FLEET_MONITOR_TOKEN"
TOKEN = "fleet-secret"
POLL_TIMEOUT = 10.0
DAY = 86400.0

TARGETS = (
    Target("api", "http://api.fleet.test", interval=10.0, timeout=5.0, token_env=TOKEN_ENV),
    Target("web", "http://web.fleet.test", interval=30.0, timeout=5.0),
    Target("batch", "http://batch.fleet.test", interval=2.5, timeout=2.0, token_env=TOKEN_ENV),
)


def fleet(request: httpx.Request) -> httpx.Response:
    """A healthy backend on every host: /detailed with the token, the summary without one."""
    if request.url.path == "/api/v1/health/detailed":
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return httpx.Response(401, json={"error": "unauthorized"})
        return httpx.Response(200, json=detailed())
    if request.url.path == "/api/v1/health/":
        return httpx.Response(200, json={"status": "healthy"})
    return httpx.Response(404)


def _config(tmp_path: Path, *targets: Target) -> MonitorConfig:
    return MonitorConfig(
        path=tmp_path / "monitor.toml",
        storage_url=f"sqlite:///{tmp_path / 'monitor.db'}",
        targets=targets or TARGETS,
        retention=Retention(raw_days=7.0, hourly_days=35.0, daily_days=400.0),
        notifiers=(Notifier("log"),),
    )


class Runs:
    """Job runs as APScheduler reports them: submitted, finished, refused (still running)."""

    def __init__(self, daemon: MonitorDaemon) -> None:
        assert daemon.scheduler is not None
        self.scheduler = daemon.scheduler
        self.in_flight = 0
        self.refused: list[str] = []
        self.ended: list[tuple[str, int]] = []
        """(job id, EVENT_JOB_EXECUTED / _ERROR / _MISSED) of every run that ended."""
        # start() submits nothing before it returns (the first wakeup is scheduled on the loop),
        # so a listener added right after it sees every run.
        self.scheduler.add_listener(
            self._on_event,
            EVENT_JOB_SUBMITTED
            | EVENT_JOB_EXECUTED
            | EVENT_JOB_ERROR
            | EVENT_JOB_MISSED
            | EVENT_JOB_MAX_INSTANCES,
        )

    def _on_event(self, event: JobEvent) -> None:
        if event.code == EVENT_JOB_SUBMITTED:
            self.in_flight += 1
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            self.refused.append(event.job_id)
        else:  # with coalesce=True a run ends in exactly one of executed, error, missed
            self.in_flight -= 1
            self.ended.append((event.job_id, event.code))

    def ends_of(self, job_id: str) -> list[int]:
        return [code for job, code in self.ended if job == job_id]


async def start(daemon: MonitorDaemon) -> Runs:
    await daemon.start()
    return Runs(daemon)


async def quiesce(runs: Runs) -> None:
    """No new runs, and every run started has ended: stop() cannot cut a write short."""
    runs.scheduler.pause()
    await until(lambda: _true(runs.in_flight == 0), "the runs in flight to end")


async def _true(value: bool) -> bool:
    return value


async def until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    """The scheduler runs on this loop: polling yields to it."""
    await eventually(condition, what, within=POLL_TIMEOUT, every=0.01)


async def checks_per_target(daemon: MonitorDaemon) -> dict[str, int]:
    async with daemon.engine.connect() as connection:
        rows = await connection.execute(
            select(checks.c.target, func.count().label("n")).group_by(checks.c.target)
        )
        return {row.target: row.n for row in rows}


async def all_checked(daemon: MonitorDaemon) -> bool:
    return len(await checks_per_target(daemon)) == len(daemon.config.targets)


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    """Every warning or error logged: the daemon's own, and APScheduler's "Job … raised"."""
    caplog.set_level(logging.INFO)

    def found() -> list[str]:
        return [
            f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.WARNING
        ]

    return found


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[tuple[MonitorDaemon, Runs]]:
    daemon = MonitorDaemon(
        _config(tmp_path), transport=httpx.MockTransport(fleet), environ={TOKEN_ENV: TOKEN}
    )
    runs = await start(daemon)
    try:
        yield daemon, runs
    finally:
        await quiesce(runs)
        await daemon.stop()


async def test_one_job_per_target_with_the_design_options(
    running: tuple[MonitorDaemon, Runs],
) -> None:
    daemon, _ = running
    assert daemon.scheduler is not None
    jobs = {job.id: job for job in daemon.scheduler.get_jobs()}

    assert set(jobs) == {f"check:{t.name}" for t in TARGETS} | {RETENTION_JOB}
    for target in TARGETS:
        job = jobs[f"check:{target.name}"]
        assert job.func == daemon.check_target
        assert job.args == (target,)
        assert job.trigger.interval == timedelta(seconds=target.interval)
        assert job.max_instances == 1
        assert job.coalesce is True
        assert abs(job.misfire_grace_time - target.interval) <= 1, target.name


async def test_every_target_is_checked_once_at_start(
    running: tuple[MonitorDaemon, Runs],
) -> None:
    daemon, _ = running
    started = datetime.now(UTC).timestamp()

    await until(lambda: all_checked(daemon), "a check of every target")

    assert await checks_per_target(daemon) == {t.name: 1 for t in TARGETS}
    assert daemon.missed == 0
    for target in TARGETS:
        latest = await daemon.reader.latest(target.name)
        assert latest is not None
        assert latest.record.status is Status.HEALTHY
        assert latest.record.at >= started - 5  # at start, not one interval later
    api, web = await daemon.reader.latest("api"), await daemon.reader.latest("web")
    assert api is not None
    assert web is not None
    assert [s.service for s in api.record.services] == ["database", "s3"]  # /detailed
    assert web.record.services == ()  # no token: the public summary


async def test_the_next_run_is_one_interval_after_the_first(
    running: tuple[MonitorDaemon, Runs],
) -> None:
    daemon, _ = running
    await until(lambda: all_checked(daemon), "a check of every target")
    assert daemon.scheduler is not None

    for target in TARGETS:
        job = daemon.scheduler.get_job(f"check:{target.name}")
        latest = await daemon.reader.latest(target.name)
        assert job is not None
        assert latest is not None
        wait = job.next_run_time.timestamp() - latest.record.at
        assert target.interval - 1 <= wait <= target.interval + 1, target.name


async def test_a_due_run_is_checked_again(running: tuple[MonitorDaemon, Runs]) -> None:
    daemon, _ = running
    await until(lambda: all_checked(daemon), "a check of every target")
    assert daemon.scheduler is not None

    daemon.scheduler.modify_job("check:web", next_run_time=datetime.now(UTC))

    async def web_twice() -> bool:
        return (await checks_per_target(daemon)).get("web") == 2

    await until(web_twice, "a second check of web")
    assert daemon.missed == 0


async def test_the_retention_job_waits_for_an_hour_boundary_and_runs_when_due(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path)
    engine = open_engine(config.storage_url)
    await create_schema(engine)
    now = datetime.now(UTC).timestamp()
    async with engine.begin() as connection:
        await connection.execute(
            insert(checks).values(target="api", at=now - 30 * DAY, status="healthy")
        )
    await engine.dispose()
    daemon = MonitorDaemon(config, transport=httpx.MockTransport(fleet), environ={})
    runs = await start(daemon)
    try:
        assert daemon.scheduler is not None
        job = daemon.scheduler.get_job(RETENTION_JOB)
        assert job is not None
        assert (job.trigger.interval, job.max_instances, job.coalesce) == (
            timedelta(hours=1),
            1,
            True,
        )
        # Not at start: a new leader checks first, and leaders coming and going do not each
        # run the long retention; the checks themselves are due at once.
        first = job.next_run_time
        assert (first.minute, first.second, first.microsecond) == (0, 0, 0)
        assert 5 * 60 <= first.timestamp() - now <= 65 * 60 + 5
        await until(lambda: all_checked(daemon), "a check of every target at start")
        assert runs.ends_of(RETENTION_JOB) == []

        daemon.scheduler.modify_job(RETENTION_JOB, next_run_time=datetime.now(UTC))

        async def old_check_gone() -> bool:
            async with daemon.engine.connect() as connection:
                oldest = await connection.scalar(select(func.min(checks.c.at)))
            return oldest is not None and oldest > now - DAY

        await until(old_check_gone, "retention removing a 30-day-old check")
    finally:
        await quiesce(runs)
        await daemon.stop()


@pytest.mark.parametrize(
    ("start", "first"),
    [
        ("10:00:00", "11:00:00"),
        ("10:54:59", "11:00:00"),
        ("10:55:00", "11:00:00"),
        ("10:55:01", "12:00:00"),
        ("23:59:00", "01:00:00"),
    ],
)
def test_the_first_retention_is_the_first_whole_hour_five_minutes_on(
    start: str, first: str
) -> None:
    now = datetime.fromisoformat(f"2026-12-06T{start}+00:00")
    found = first_retention(now)
    assert found.strftime("%H:%M:%S") == first
    assert timedelta(minutes=5) <= found - now <= timedelta(minutes=65)


async def test_the_retention_job_rebuilds_the_day_strips(tmp_path: Path) -> None:
    daemon = MonitorDaemon(_config(tmp_path), transport=httpx.MockTransport(fleet), environ={})
    await daemon.prepare()
    now = datetime.now(UTC).timestamp()
    old_day = int(now // DAY) * DAY - 10 * DAY
    async with daemon.engine.begin() as connection:
        await connection.execute(
            insert(rollups).values(
                target="api",
                service="",
                period="day",
                start=old_day,
                checks=3,
                up=3,
                worst=1,
                latency_sum=3.0,
                latency_count=3,
                latency_max=1.0,
            )
        )
    try:
        await daemon.apply_retention()
        async with daemon.engine.connect() as connection:
            strips = (await connection.execute(select(day_strips.c.target))).scalars().all()
    finally:
        await daemon.stop()

    assert strips == ["api"]


async def test_stop_shuts_everything_down(tmp_path: Path, logged: Callable[[], list[str]]) -> None:
    daemon = MonitorDaemon(
        _config(tmp_path), transport=httpx.MockTransport(fleet), environ={TOKEN_ENV: TOKEN}
    )
    runs = await start(daemon)
    await until(lambda: all_checked(daemon), "a check of every target")
    await quiesce(runs)
    scheduler = daemon.scheduler
    assert scheduler is not None

    await daemon.stop()

    assert daemon.scheduler is None
    assert not scheduler.running
    assert daemon.client.is_closed
    assert logged() == []


async def test_a_service_the_config_does_not_name_joins_the_catalogue(
    running: tuple[MonitorDaemon, Runs],
) -> None:
    daemon, _ = running
    await until(lambda: all_checked(daemon), "a check of every target")

    components = [(c.target, c.service) for c in await daemon.reader.components()]

    assert components == [
        ("api", TARGET_COMPONENT),
        ("api", "database"),
        ("api", "s3"),
        ("web", TARGET_COMPONENT),
        ("batch", TARGET_COMPONENT),
        ("batch", "database"),
        ("batch", "s3"),
    ]


async def test_discovery_writes_only_the_new_components_and_only_once(tmp_path: Path) -> None:
    """Rewriting the whole catalogue per discovery was O(targets²) writes at a fleet's start:
    the services a check finds are added with the check, once."""
    daemon = MonitorDaemon(
        _config(tmp_path), transport=httpx.MockTransport(fleet), environ={TOKEN_ENV: TOKEN}
    )
    await daemon.prepare()
    calls: list[list[str]] = []
    record_check = daemon.writer.record_check

    async def counting(
        record: CheckRecord,
        *,
        replicas: Sequence[ReplicaCheck] = (),
        new_components: Sequence[Component] = (),
    ) -> CheckRecord:
        calls.append([c.service for c in new_components])
        return await record_check(record, replicas=replicas, new_components=new_components)

    async def no_full_sync(catalogue: Sequence[Component]) -> None:
        raise AssertionError("the whole catalogue rewritten")

    daemon.writer.record_check = counting  # type: ignore[method-assign]
    daemon.writer.sync_components = no_full_sync  # type: ignore[method-assign]
    try:
        api = TARGETS[0]
        await daemon.check_target(api)
        await daemon.check_target(api)
        components = [(c.target, c.service) for c in await daemon.reader.components()]
    finally:
        await daemon.stop()

    assert calls == [["database", "s3"], []]
    assert components[:3] == [("api", TARGET_COMPONENT), ("api", "database"), ("api", "s3")]


async def test_stop_is_bounded_when_the_store_does_not_take_the_last_checks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(autojump=True)  # the grace passes without a real wait
    daemon = MonitorDaemon(
        _config(tmp_path),
        clock=clock,
        transport=httpx.MockTransport(fleet),
        environ={TOKEN_ENV: TOKEN},
    )
    await daemon.prepare()
    writing = asyncio.Event()

    async def stuck(batch: object) -> None:
        writing.set()
        await asyncio.Event().wait()

    daemon.writer._write_checks = stuck  # type: ignore[method-assign]
    check = asyncio.create_task(daemon.check_target(TARGETS[0]))
    await writing.wait()
    check.cancel()  # as stop() does to a check past its grace
    await asyncio.gather(check, return_exceptions=True)

    await asyncio.wait_for(daemon.stop(grace=30.0), timeout=POLL_TIMEOUT)

    assert daemon.client.is_closed
    assert 30.0 in clock.sleeps
    assert "did not take the last checks" in caplog.text


def test_first_runs_are_staggered_and_spread_over_the_interval_when_many() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)

    few = first_runs(TARGETS, now)
    assert few == {
        "api": now,  # each interval's targets are staggered on their own
        "web": now,
        "batch": now,
    }
    three = [Target(f"t{n}", f"http://t{n}.test", interval=10.0) for n in range(3)]
    assert [d - now for d in first_runs(three, now).values()] == [
        timedelta(0),
        timedelta(seconds=PHASE_STEP),
        timedelta(seconds=2 * PHASE_STEP),
    ]
    fleet_ = [Target(f"t{n}", f"http://t{n}.test", interval=10.0) for n in range(1000)]
    offsets = sorted((d - now).total_seconds() for d in first_runs(fleet_, now).values())
    assert offsets[0] == 0.0
    assert offsets[-1] < 10.0  # all within one interval: every target checked in the first
    gaps = {round(b - a, 9) for a, b in itertools.pairwise(offsets)}
    assert gaps == {0.01}  # evenly: 1,000 targets, 10 s, one every 10 ms


async def test_a_late_retention_run_still_runs(running: tuple[MonitorDaemon, Runs]) -> None:
    daemon, runs = running
    assert daemon.scheduler is not None
    daemon.scheduler.modify_job(RETENTION_JOB, next_run_time=datetime.now(UTC))
    await until(lambda: _true(runs.ends_of(RETENTION_JOB) != []), "a first retention run")

    # The next run, as a scheduler whose loop was busy for 5 s finds it.
    late = datetime.now(UTC) - timedelta(seconds=5)
    daemon.scheduler.modify_job(RETENTION_JOB, next_run_time=late)
    await until(lambda: _true(len(runs.ends_of(RETENTION_JOB)) == 2), "the late retention run")

    assert runs.ends_of(RETENTION_JOB) == [EVENT_JOB_EXECUTED, EVENT_JOB_EXECUTED]
    assert daemon.missed == 0


# -- a check still running when the next is due, or when the daemon stops ----------------------


class SlowFleet:
    """Holds every request until released (or until the request's own timeout, as a real
    transport would), and says when the first one arrived."""

    def __init__(self) -> None:
        self.arrived = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.arrived.set()
        timeout = request.extensions["timeout"]["read"]
        try:
            await asyncio.wait_for(self.release.wait(), timeout)
        except TimeoutError:
            raise httpx.ReadTimeout("timed out", request=request) from None
        return fleet(request)


async def test_a_run_skipped_while_the_last_is_running_counts_as_missed(tmp_path: Path) -> None:
    slow = SlowFleet()
    target = Target("slow", "http://slow.fleet.test", interval=10.0, timeout=5.0)
    daemon = MonitorDaemon(_config(tmp_path, target), transport=httpx.MockTransport(slow))
    runs = await start(daemon)
    try:
        await asyncio.wait_for(slow.arrived.wait(), POLL_TIMEOUT)
        assert daemon.scheduler is not None

        daemon.scheduler.modify_job("check:slow", next_run_time=datetime.now(UTC))
        await until(lambda: _true(runs.refused == ["check:slow"]), "the due run to be refused")

        assert daemon.missed == 1
    finally:
        slow.release.set()
        await quiesce(runs)
        await daemon.stop()


async def test_stop_during_a_probe_logs_no_error(
    tmp_path: Path, logged: Callable[[], list[str]]
) -> None:
    slow = SlowFleet()
    target = Target("slow", "http://slow.fleet.test", interval=10.0, timeout=1.0)
    daemon = MonitorDaemon(_config(tmp_path, target), transport=httpx.MockTransport(slow))
    await start(daemon)
    await asyncio.wait_for(slow.arrived.wait(), POLL_TIMEOUT)
    scheduler = daemon.scheduler
    assert scheduler is not None

    await daemon.stop()
    stopped = not scheduler.running
    slow.release.set()  # a probe that stop() left running goes on now, and logs what it meets
    await until(loop_quiet, "whatever stop() left running or scheduled to end")

    assert stopped
    assert logged() == []


async def loop_quiet() -> bool:
    """Whether no task but the test's own is left, once every callback queued so far has run."""
    loop = asyncio.get_running_loop()
    queued_so_far: asyncio.Future[None] = loop.create_future()
    loop.call_soon(queued_so_far.set_result, None)  # callbacks run in order: this one comes last
    await queued_so_far
    return asyncio.all_tasks() == {asyncio.current_task()}


_STOP_MID_WRITE = textwrap.dedent(
    """
    import asyncio
    import sys
    from pathlib import Path

    import httpx
    from sqlalchemy import func, select

    from monitor.config import MonitorConfig, Target
    from monitor.daemon import MonitorDaemon
    from monitor.store.schema import checks


    def healthy(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"status": "healthy"})


    async def main(directory: Path, count: int) -> None:
        config = MonitorConfig(
            path=directory / "monitor.toml",
            storage_url=f"sqlite:///{directory / 'monitor.db'}",
            targets=tuple(
                Target(f"t{n}", f"http://t{n}.fleet.test", interval=10, timeout=5)
                for n in range(count)
            ),
        )
        daemon = MonitorDaemon(config, transport=httpx.MockTransport(healthy))
        await daemon.start()
        while True:  # as `questcity monitor` on SIGTERM: stop once the checks are writing
            async with daemon.engine.connect() as connection:
                if await connection.scalar(select(func.count()).select_from(checks)):
                    break
            await asyncio.sleep(0.005)
        print("stopping", flush=True)
        await daemon.stop()


    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
    print("exited", flush=True)
    """
)


STARTED_WITHIN = 120.0
"""For the child to start, migrate its store and see its first checks written."""


def test_stop_with_checks_in_flight_exits_cleanly(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", _STOP_MID_WRITE, str(tmp_path), "40"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The bound is on stop(), not on starting Python, importing and migrating the store: that
        # takes seconds more beside a second CI worker, which is not what the test is about.
        assert process.stdout is not None
        ready, _, _ = wait_readable([process.stdout], [], [], STARTED_WITHIN)
        started = process.stdout.readline() if ready else ""
        assert started == "stopping\n", f"not started within {STARTED_WITHIN} s: {started!r}"
        stdout, stderr = process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail("the daemon's process did not exit within 10 s of stop()")
    finally:
        if process.poll() is None:  # it never said it was stopping
            process.kill()
            process.communicate()
    assert (process.returncode, stdout.strip()) == (0, "exited"), stderr
    assert "raised an exception" not in stderr, stderr
