"""The on-call TUI at fleet size: the time to apply one refresh and redraw, for 100 targets × 10
replicas, against baselines measured in the same run.

    uv run python -m benchmarks.tui_fleet [--refreshes 60] [--targets 100] [--replicas 10]

A real SQLite store, filled by the store's own ``HistoryWriter``: every target has three
services; each round writes every target's aggregate check with its replicas' own checks (breaker
states, instance ids, latencies that move). Before each refresh a new round is written (not
timed), so every refresh brings new figures for every row, as a daemon's round would.

Timed, for each refresh (p50/p95 over ``--refreshes``, target ≤ 50 ms p95 for "apply + redraw"):

- read: :class:`monitor.tui.data.OverviewLoader` reading the store (a worker does it in the app:
  the screen stays live meanwhile, but it is the refresh's latency), with the statements it ran;
  printed apart from apply + redraw;
- apply + redraw: the main screen given the new overview (banner, leadership line, table) until
  the app has handled the messages it caused and repainted the screen (Textual's own screen
  update, in a headless app of 200×60).

Scenarios (apply + redraw, each on an app of its own fed the same overviews in turn):

- ``fleet, unfolded``: 100 targets with their 10 replica rows each shown (1,500 rows);
- ``fleet, folded``: the same with the replicas folded (the default above 5 replicas);
- ``fleet, no replica rows``: the same overviews with their replica rows taken out;
- ``fleet, rebuilt``: unfolded, the table cleared and refilled at every refresh (how the table
  worked before #13: the cost of not updating rows in place);
- ``1,000 single-replica targets``: the baseline from before the fleet (4,000 rows), its own
  store (``--baseline-loads`` reads of it are taken in turn),
  and the same rebuilt at every refresh.

Each figure is wall time; CPU time of this process is printed beside it (on a loaded machine the
difference is time spent waiting for a core).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import UTC
from pathlib import Path

import httpx
from sqlalchemy import event
from textual.pilot import Pilot

from monitor.config import MonitorConfig, parse_config
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
from monitor.tui.data import Overview, OverviewLoader
from monitor.tui.screens import MainScreen
from monitor.tui.widgets.components import ComponentsTable
from shared.resilience.testing import FakeClock

NOW = 1_747_224_000.0
SERVICES = ("database", "s3", "cache")
INTERVAL = 10.0
TARGET_P95_MS = 50.0
SIZE = (200, 60)


def config_toml(path: Path, targets: int, replicas: int) -> str:
    lines = [f'[storage]\nurl = "sqlite:///{path}"\n']
    for t in range(targets):
        lines.append(
            f'[[targets]]\nname = "api-{t}"\ndisplay_name = "Region {t} API"\n'
            f'url = "http://api-{t}.test:8000"\ninterval = {INTERVAL:g}\ntimeout = 5\n'
            'admin_token_env = "BENCH_ADMIN_TOKEN"\n'
        )
        if replicas > 1:
            urls = ", ".join(f'"http://10.{t // 250}.{t % 250}.{r}:8000"' for r in range(replicas))
            lines.append(f"replicas = [{urls}]\n")
    return "\n".join(lines)


def sample(service: str, breaker: str, latency: float) -> ServiceSample:
    status = Status.HEALTHY if breaker == "closed" else Status.DEGRADED
    return ServiceSample(service, status, latency, 0 if breaker == "closed" else 3, breaker, {})


def round_of(
    config: MonitorConfig, n: int, at: float
) -> list[tuple[CheckRecord, list[ReplicaCheck]]]:
    """Every target's check of round ``n``: figures move every round, and one replica in seven
    has its s3 breaker open (a different one each round)."""
    checks: list[tuple[CheckRecord, list[ReplicaCheck]]] = []
    for t, target in enumerate(config.targets):
        keys: list[str | None] = [url.split("//", 1)[1] for url in target.replicas] or [None]
        replicas = []
        for r, key in enumerate(keys):
            breaker = "open" if (t + r + n) % 7 == 0 else "closed"
            services = tuple(
                sample(s, breaker if s == "s3" else "closed", 5.0 + (t * 3 + r + n * 11) % 40)
                for s in SERVICES
            )
            record = CheckRecord(
                target.name,
                at,
                Status.HEALTHY if breaker == "closed" else Status.DEGRADED,
                10.0 + (t + r * 5 + n * 7) % 30,
                200,
                None,
                services,
            )
            if key is not None:
                replicas.append(ReplicaCheck(key, record, Instance(f"api-{t}-{r}", NOW - 86400)))
        if not replicas:
            checks.append((record, []))
            continue
        worst = (
            "open"
            if any(s.breaker_state == "open" for rc in replicas for s in rc.record.services)
            else "closed"
        )
        aggregate = CheckRecord(
            target.name,
            at,
            Status.DEGRADED if worst == "open" else Status.HEALTHY,
            statistics.median(rc.record.latency_ms or 0.0 for rc in replicas),
            200,
            None,
            tuple(sample(s, worst if s == "s3" else "closed", 10.0 + n % 9) for s in SERVICES),
        )
        checks.append((aggregate, replicas))
    return checks


async def write_round(writer: HistoryWriter, config: MonitorConfig, n: int, at: float) -> None:
    await asyncio.gather(
        *(
            writer.record_check(record, replicas=replicas)
            for record, replicas in round_of(config, n, at)
        )
    )


class Scenario:
    def __init__(self, name: str, targets: int, replicas: int, root: Path) -> None:
        self.name = name
        self.path = root / f"{name}.db"
        self.config = parse_config(config_toml(self.path, targets, replicas), root / f"{name}.toml")
        self.url = f"sqlite:///{self.path}"

    async def fill(self, rounds: int) -> None:
        engine = open_engine(self.url)
        try:
            await create_schema(engine)
            writer = HistoryWriter(engine)
            catalogue = []
            for target in self.config.targets:
                catalogue.append(Component(target.name, TARGET_COMPONENT, target.title, "", 0))
                catalogue.extend(Component(target.name, s, s, "", 0) for s in SERVICES)
            await writer.sync_components([replace(c, position=n) for n, c in enumerate(catalogue)])
            for n in range(rounds):
                await write_round(writer, self.config, n, NOW - (rounds - n) * INTERVAL)
            leases = LeaseStore(engine)
            await leases.acquire("monitor-1", ttl=7.5, now=NOW - 3600, expected=None)
            await writer.flush()
        finally:
            await engine.dispose()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def line(name: str, values: list[float]) -> str:
    """p50/p95/max of ``values`` (seconds) in ms."""
    ms = [v * 1000 for v in values]
    return (
        f"  {name:<34} p50 {statistics.median(ms):7.1f} ms   p95 {percentile(ms, 0.95):7.1f} ms"
        f"   max {max(ms):7.1f} ms   (n={len(ms)})"
    )


@dataclass
class Loads:
    """Each timed read of the store by the loader: wall and CPU seconds, and statements run."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    statements: list[int] = field(default_factory=list)


async def refreshes_of(scenario: Scenario, count: int) -> tuple[list[Overview], Loads]:
    """``count`` overviews, each read after a new round was written, and each read's cost."""
    engine = open_engine(scenario.url)
    reading = open_engine(scenario.url, read_only=True)
    executed = [0]

    def count_statement(*_: object) -> None:
        executed[0] += 1

    event.listen(reading.sync_engine, "before_cursor_execute", count_statement)
    try:
        writer = HistoryWriter(engine)
        loader = OverviewLoader(HistoryReader(reading), scenario.config)
        await loader.load(NOW)  # uptimes are cached for a minute, as in the app
        leases = LeaseStore(engine)
        lease = await leases.read()
        overviews, loads = [], Loads()
        for n in range(count):
            at = NOW + n * INTERVAL
            await write_round(writer, scenario.config, 1000 + n, at)
            lease = await leases.renew(lease, now=at) if lease is not None else None
            executed[0] = 0
            started, cpu_started = time.perf_counter(), time.process_time()
            overviews.append(await loader.load(at))
            loads.wall.append(time.perf_counter() - started)
            loads.cpu.append(time.process_time() - cpu_started)
            loads.statements.append(executed[0])
        return overviews, loads
    finally:
        await reading.dispose()
        await engine.dispose()


async def apply_times(
    scenario: Scenario,
    overviews: list[Overview],
    *,
    unfolded: bool = True,
    rebuild: bool = False,
    strip: bool = False,
) -> tuple[list[float], list[float]]:
    """Wall and CPU times of apply + redraw of each overview in turn on one app (its first three
    warm it up)."""
    # The app holds one overview; this run holds every one it will apply (60 × 1,500 rows), and
    # the collector's full passes over them are this benchmark's cost, not the app's.
    gc.collect()
    gc.freeze()
    engine = open_engine(scenario.url, read_only=True)
    times: list[float] = []
    cpu: list[float] = []
    async with httpx.AsyncClient() as client:
        app = MonitorApp(
            scenario.config,
            reader=HistoryReader(engine),
            writer=HistoryWriter(engine),
            http=client,
            clock=FakeClock(wall_start=NOW),
            environ={"BENCH_ADMIN_TOKEN": "token"},  # no READ-ONLY line: the table is taller
            actor="bench",
            tz=UTC,
            refresh_interval=3600,
        )
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await app.workers.wait_for_complete()  # the app's own first load, done
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, MainScreen)
            table = screen.query_one(ComponentsTable)
            for target in scenario.config.targets:
                table.expanded.choices[target.name] = unfolded
            for n, overview in enumerate(overviews):
                shown = without_replicas(overview) if strip else overview
                if rebuild:
                    table.keys = []  # forces clear + refill, as the table did before #13
                started, cpu_started = time.perf_counter(), time.process_time()
                await apply(pilot, screen, shown)
                if n >= 3:
                    times.append(time.perf_counter() - started)
                    cpu.append(time.process_time() - cpu_started)
    await engine.dispose()
    return times, cpu


async def apply(pilot: Pilot[None], screen: MainScreen, overview: Overview) -> None:
    screen.show(overview)
    await pilot._wait_for_screen()  # every message the update caused, handled
    screen._on_timer_update()  # and the screen repainted (Textual's own update, synchronous)


def without_replicas(overview: Overview) -> Overview:
    rows = tuple(replace(row, replica_breakers=()) for row in overview.rows)
    return replace(overview, rows=rows, replicas={})


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refreshes", type=int, default=60)
    parser.add_argument("--targets", type=int, default=100)
    parser.add_argument("--replicas", type=int, default=10)
    parser.add_argument("--baseline-targets", type=int, default=1000)
    parser.add_argument("--baseline-loads", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        fleet = Scenario("fleet", args.targets, args.replicas, Path(root))
        single = Scenario("single", args.baseline_targets, 1, Path(root))
        started = time.perf_counter()
        await fleet.fill(3)
        await single.fill(3)
        print(f"stores filled in {time.perf_counter() - started:.1f} s")
        rows = args.targets * (1 + len(SERVICES) + 1 + args.replicas)
        print(
            f"fleet: {args.targets} targets × {args.replicas} replicas, {len(SERVICES)} services "
            f"each ({rows} rows unfolded); baseline: {args.baseline_targets} single-replica "
            f"targets ({args.baseline_targets * (1 + len(SERVICES))} rows); "
            f"{args.refreshes} refreshes, app {SIZE[0]}×{SIZE[1]}"
        )
        fleet_views, fleet_loads = await refreshes_of(fleet, args.refreshes + 3)
        # A few of the baseline's reads, taken in turn, give every refresh new figures for
        # every row all the same (its reads took seconds each before they were batched).
        single_views, single_loads = await refreshes_of(single, args.baseline_loads + 3)
        single_views = [single_views[n % len(single_views)] for n in range(args.refreshes + 3)]
        results = {
            "fleet, unfolded": await apply_times(fleet, fleet_views),
            "fleet, folded": await apply_times(fleet, fleet_views, unfolded=False),
            "fleet, no replica rows": await apply_times(fleet, fleet_views, strip=True),
            "fleet, rebuilt (before #13)": await apply_times(fleet, fleet_views, rebuild=True),
            f"{args.baseline_targets:,} single-replica targets": await apply_times(
                single, single_views
            ),
            f"{args.baseline_targets:,} single, rebuilt (before)": await apply_times(
                single, single_views, rebuild=True
            ),
        }
        print(f"apply + redraw (target ≤ {TARGET_P95_MS:g} ms p95), wall | CPU:")
        for name, (wall, cpu) in results.items():
            print(line(name, wall))
            print(line("  CPU", cpu))
        print(
            "read: the loader's reads of the store, apart from apply + redraw (in a worker; the "
            "screen stays live), wall | CPU; uptimes re-read every 6th refresh (a minute's cache):"
        )
        for name, loads in (
            ("fleet", fleet_loads),
            (f"{args.baseline_targets:,} single-replica targets", single_loads),
        ):
            print(line(name, loads.wall[3:]))
            print(line("  CPU", loads.cpu[3:]))
            counts = sorted(loads.statements[3:])
            print(f"    statements per read: {counts[0]}..{counts[-1]}")
        p95 = percentile(results["fleet, unfolded"][0], 0.95) * 1000
        verdict = "meets" if p95 <= TARGET_P95_MS else "MISSES"
        print(f"fleet, unfolded: p95 {p95:.1f} ms {verdict} the {TARGET_P95_MS:g} ms target")


if __name__ == "__main__":
    asyncio.run(main())
