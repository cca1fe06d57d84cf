"""The real MonitorDaemon against a farm of misbehaving targets (:mod:`tests.hostile.target_farm`)
on a real socket, with its real store (a SQLite file, and PostgreSQL): every bad target's check is
recorded as failed with a plain reason, and the healthy target's checks are recorded as usual.

On main before #11: the drip and the endless answers held their checks for ever (httpx's timeout
is per read), the 1 GiB answer was read whole, the huge number sank the whole batch with the
healthy target's check in it, the nested and 5,000-digit answers raised out of the probe, and the
3,000 services and the markup names became components.

The probes run with a real timeout of 0.5 s (the drip sends a byte every 0.1 s, so only an
overall deadline ends it); the test waits on that real I/O, never on a timer of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from monitor.config import IncidentRules, MonitorConfig, Notifier, Target
from monitor.daemon import MonitorDaemon
from monitor.store import IncidentState, Status
from monitor.store.reader import open_reader
from monitor.store.schema import checks
from tests.hostile.target_farm import TARGETS, TargetFarm
from tests.monitor.store.support import empty_store_url, sqlite_url
from tests.support.polling import eventually

TIMEOUT = 0.5
ROUNDS = 2
BOUND = 60.0
"""Seconds the rounds may take at most; on main they never end (the drip and endless ones)."""

REASONS = {
    "huge-number": "answer out of range",
    "gigabyte": "answer too large",
    "endless": "answer too large",
    "drip": "timeout",
    "many-services": "too many services (more than 64)",
    "markup": "service name not allowed",
    "bad-utf8": "invalid JSON",
    "nested": "invalid JSON",
    "big-int": "invalid JSON",
    "nan": "invalid JSON",
}


@pytest.fixture
async def farm() -> AsyncIterator[TargetFarm]:
    farm = TargetFarm()
    await farm.start()
    try:
        yield farm
    finally:
        await farm.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from empty_store_url(request.param, request, tmp_path)


def _config(tmp_path: Path, url: str, farm: TargetFarm) -> MonitorConfig:
    return MonitorConfig(
        path=tmp_path / "monitor.toml",
        storage_url=url,
        targets=tuple(
            Target(name, farm.url(name), interval=10.0, timeout=TIMEOUT, token_env="FARM_TOKEN")
            for name in TARGETS
        ),
        incidents=IncidentRules(open_after=2, resolve_after=3),
        notifiers=(Notifier("log"),),
    )


async def test_each_bad_target_fails_alone_and_the_healthy_one_is_recorded(
    farm: TargetFarm, store_url: str, tmp_path: Path
) -> None:
    daemon = MonitorDaemon(
        _config(tmp_path, store_url, farm), environ={"FARM_TOKEN": "t"}, write_window=0.25
    )
    await daemon.prepare()
    try:
        async with asyncio.timeout(BOUND):
            for _ in range(ROUNDS):
                # All at once, so the checks share the writer's batches.
                await asyncio.gather(*(daemon.check_target(t) for t in daemon.config.targets))
    finally:
        await daemon.stop()

    # The farm was asked, and the deadline ended the drip. Not "== ROUNDS": the farm shares the
    # event loop with ten hostile answers, and on a loaded machine a round's 0.5 s can run out
    # before the farm has read the request's head (a CI run saw 1 of 2); that check still ends
    # at its deadline with "timeout", which the reasons below assert.
    assert 1 <= farm.requests["drip"] <= ROUNDS
    # Read back as the status page and the TUI do: on disk, in another engine.
    async with open_reader(store_url) as reader:
        # ...and every round's drip check ended at its deadline, whether or not the farm read it.
        async with reader.engine.connect() as connection:
            query = select(checks.c.error).where(checks.c.target == "drip")
            drip_errors = list((await connection.execute(query)).scalars())
        assert drip_errors == ["timeout"] * ROUNDS
        healthy = await reader.latest("healthy")
        assert healthy is not None
        assert healthy.record.status is Status.HEALTHY
        assert healthy.record.error is None
        assert [s.service for s in healthy.record.services] == ["database", "s3"]
        for name, reason in REASONS.items():
            latest = await reader.latest(name)
            assert latest is not None, name
            assert (latest.record.status, latest.record.error) == (Status.UNREACHABLE, reason), name
            assert latest.record.services == (), name
        components = {(c.target, c.service) for c in await reader.components()}
        assert {(t, s) for t, s in components if s} == {("healthy", "database"), ("healthy", "s3")}
        open_incidents = {i.target for i in await reader.incidents(state=IncidentState.OPEN)}
        assert open_incidents == set(REASONS), "every bad target has an incident open"


async def test_a_drip_on_the_scheduler_is_checked_run_after_run(
    farm: TargetFarm, tmp_path: Path
) -> None:
    """On main the drip's first run never ended, so APScheduler refused every later one
    (``max_instances=1``): no check in 12 minutes. Each run now ends at its deadline, and the
    next is taken."""
    config = MonitorConfig(
        path=tmp_path / "monitor.toml",
        storage_url=sqlite_url(tmp_path / "monitor.db"),
        targets=(
            Target("drip", farm.url("drip"), interval=5.0, timeout=TIMEOUT),
            Target("healthy", farm.url("healthy"), interval=5.0, timeout=TIMEOUT),
        ),
        notifiers=(Notifier("log"),),
    )
    daemon = MonitorDaemon(config, environ={}, write_window=0.0)
    await daemon.start()
    try:
        assert daemon.scheduler is not None

        async def drip_checks() -> int:
            async with daemon.engine.connect() as connection:
                query = select(func.count()).select_from(checks).where(checks.c.target == "drip")
                return int(await connection.scalar(query) or 0)

        for runs in (1, 2, 3):
            if runs > 1:  # make the next run due now rather than wait an interval
                daemon.scheduler.modify_job("check:drip", next_run_time=datetime.now(UTC))

            async def reached(n: int = runs) -> bool:
                return await drip_checks() >= n

            await eventually(reached, f"drip check {runs}", within=BOUND)
        latest = await daemon.reader.latest("drip")
        assert latest is not None
        assert (latest.record.status, latest.record.error) == (Status.UNREACHABLE, "timeout")
        assert daemon.missed == 0
    finally:
        assert daemon.scheduler is not None
        daemon.scheduler.pause()
        await daemon.stop()
