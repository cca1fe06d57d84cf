"""The monitor daemon polling a fleet: 1,000 targets every 10 s for 2 minutes, against a fake fleet
on loopback; and the time of the 90-day query of 50 services.

    uv run python -m benchmarks.monitor_fleet [--targets 1000] [--interval 10] [--duration 120]
        [--replicas N] [--rounds 1] [--query-repeats 15] [--profile DIR]

The fleet is one uvicorn process, pinned to CPU 1, answering the backend's detailed health JSON
(two services with breaker counters and pool figures, ~1.5 kB) on one port of 1,000 loopback
addresses (127.0.1.1, 127.0.1.2, …). Each target is thus an origin of its own, as 1,000 backends
would be: the daemon's httpx client opens a TCP connection per check and parses real HTTP. An
in-process ``httpx.MockTransport`` would leave connection handling and HTTP parsing out of the
daemon's CPU.

Each candidate runs for ``--duration`` in a process of its own, pinned to CPU 0:

- **bare polling** (the baseline): one asyncio task per target, ``GET /api/v1/health/detailed``
  and JSON decoding every interval, nothing stored, on the daemon's own schedule
  (:func:`monitor.schedule.first_runs`) and with the daemon's HTTP client limits; a run more than an
  interval late is skipped (as APScheduler's grace time does), and counted as missed;
- **daemon as shipped**: the real :class:`~monitor.daemon.MonitorDaemon` (APScheduler
  ``AsyncIOScheduler``, the probe, the SQLite store in WAL mode with group commit, incidents,
  alerts), every target naming its two services in the config as the example in
  docs/ARCHITECTURE.md §9 does;
- ``daemon-discover``: the same with no services named, so that each target's first check adds
  its services to the catalogue;
- ``daemon-replicas`` (run when ``--replicas N`` is over 1): the daemon as shipped on the same
  fleet grouped into ``targets / N`` targets of N replicas each (static replica URLs, so no DNS
  in the measurement): 100 targets × 10 replicas against the 1,000 single-replica targets of
  ``daemon``, on the same endpoints in the same run. Its checks are the targets' rounds (each
  stores the aggregate and the N replicas' own rows); its failed probes are replica checks;
- ``bare-together`` (not run by default): bare polling with every target due at the same instant
  and httpx's default limits, which is how the daemon scheduled its first runs before they were
  staggered.

Figures: checks done in the window against those due (``targets × ceil(duration / interval)``),
stored (checks in the store whose time is in the window), failed probes (of a fleet that is
healthy throughout: every failure is the monitor's own); missed runs as ``MonitorDaemon.missed``
counts them, and of those the runs APScheduler refused because the previous one was still running
(``EVENT_JOB_MAX_INSTANCES``); CPU as ``time.process_time()`` of the candidate's process (every
thread, aiosqlite's included) over the window, as % of one core, on average and per interval; RSS
as ``VmRSS`` sampled every second (peak) and ``VmHWM``; how late runs started after their scheduled
time; how long a run took; the fleet's own CPU over the run.

The 90-day query: 50 components (10 targets, each itself and 4 services) with 91 days of daily and
35 days of hourly roll-ups written straight into the roll-up table; per component
``uptime(90 days)`` and ``bars(period="day", count=90)`` through :class:`HistoryReader`. Cold: a
new engine (new connection) for every repeat; warm: one engine, after one run. Baseline: one plain
``sqlite3`` SELECT of the same 4,500 daily rows on a new connection. p50 over ``--query-repeats``.

Targets (issue 4): no missed checks, daemon CPU ≤ 50 % of one core on average, RSS ≤ 200 MB;
(issue 13) 100 targets × 10 replicas at 10 s: no missed checks, ≤ 40 % of a core.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks._servers import (
    HOST,
    ServerProcess,
    kib,
    load_average,
    new_port,
    pinned,
    proc_status,
    py_spy,
    stop_on_sigterm,
    summarize_profile,
)

TOKEN_ENV = "FLEET_MONITOR_TOKEN"
TOKEN = "fleet-operator-token"
DETAILED = "/api/v1/health/detailed"
SUMMARY = "/api/v1/health/"
DAEMON_CPU = 0
FLEET_CPU = 1
TARGET_CPU_PERCENT = 50.0
TARGET_REPLICAS_CPU_PERCENT = 40.0
TARGET_RSS_MB = 200.0
DAY = 86_400
HOUR = 3_600
QUERY_NOW = 1_767_225_600 + 90 * DAY + 12 * HOUR  # 2026-04-01 12:00 UTC: fixed
QUERY_TARGETS = 10
QUERY_SERVICES = ("database", "s3", "cache", "search")

Json = dict[str, Any]

MODES = {
    "bare": "baseline: bare polling on the daemon's schedule and HTTP client limits",
    "bare-together": "bare polling, all targets due together, httpx's default limits",
    "daemon": "**daemon as shipped**",
    "daemon-discover": "daemon as shipped, services not named in the config",
    "daemon-replicas": "**daemon as shipped, targets of --replicas replicas**",
}
DEFAULT_MODES = ("bare", "daemon", "daemon-discover")
SERVICES = {"database": "Quests and accounts", "s3": "Photos"}
"""Named in every target's config, as in the example in docs/ARCHITECTURE.md §9: the catalogue is
complete at start, so no check has to add services to it (``MonitorDaemon._discover``),
except in the ``-discover`` mode."""


# -- the fleet ------------------------------------------------------------------------------------


def address(n: int) -> str:
    """The loopback address of target ``n``: 127.0.1.1, …, 127.0.1.254, 127.0.2.1, …"""
    return f"127.0.{1 + n // 254}.{1 + n % 254}"


def _breaker(name: str) -> Json:
    return {
        "name": name,
        "state": "closed",
        "forced_open": False,
        "total_calls": 18_422,
        "successful_calls": 18_411,
        "failed_calls": 11,
        "timed_out_calls": 2,
        "rejected_calls": 0,
        "ignored_calls": 0,
        "cancelled_calls": 0,
        "slow_calls": 4,
        "failure_rate": 0.0006,
        "consecutive_failures": 0,
        "state_transitions": 2,
        "last_transition_at": 1_767_200_000.0,
        "retry_after": None,
        "half_open_in_flight": 0,
    }


def _service(name: str, response_ms: float, details: Json | None = None) -> Json:
    service: Json = {
        "name": name,
        "status": "healthy",
        "critical": name == "database",
        "reason": None,
        "last_check": 1_767_225_590.0,
        "last_success": 1_767_225_590.0,
        "response_time_ms": response_ms,
        "consecutive_failures": 0,
        "availability_percent": 100.0,
        "average_response_time_ms": response_ms * 1.1,
        "checks": 100,
        "last_error": None,
        "circuit_breaker": _breaker(name),
    }
    if details:
        service["details"] = details
    return service


def detailed_document() -> Json:
    """What the backend's ``/api/v1/health/detailed`` answers when all is well."""
    return {
        "status": "healthy",
        "timestamp": 1_767_225_600.0,
        "services": {"total": 2, "healthy": 2, "degraded": 0, "unhealthy": 0},
        "message": "All systems operational",
        "checks": {
            "database": _service(
                "database",
                2.41,
                {"size": 20, "checked_out": 2, "overflow": 0, "exhausted_total": 0},
            ),
            "s3": _service("s3", 6.87),
        },
    }


def fleet_app() -> Callable[[Json, Any, Any], Awaitable[None]]:
    """A raw ASGI app: the detailed document for the operator token, the summary otherwise."""
    detailed = json.dumps(detailed_document()).encode()
    summary = json.dumps({"status": "healthy", "message": "All systems operational"}).encode()
    unauthorized = b'{"error":"unauthorized"}'
    expected = f"Bearer {TOKEN}".encode()

    async def app(scope: Json, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        path: str = scope["path"]
        status, body = 404, b"{}"
        if path.endswith(DETAILED):
            authorization = dict(scope["headers"]).get(b"authorization")
            status, body = (200, detailed) if authorization == expected else (401, unauthorized)
        elif path.endswith(SUMMARY):
            status, body = 200, summary
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


def serve_fleet(port: int, addresses: int) -> None:
    """``python -m benchmarks.monitor_fleet fleet``: the app on ``addresses`` loopback addresses
    and 127.0.0.1 (for the readiness check), all on ``port``."""
    import uvicorn

    sockets = []
    for host in [HOST, *(address(n) for n in range(addresses))]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.set_inheritable(True)
        sockets.append(sock)
    config = uvicorn.Config(
        fleet_app(), lifespan="off", log_level="warning", access_log=False, backlog=1024
    )
    asyncio.run(uvicorn.Server(config).serve(sockets=sockets))


# -- measuring a candidate in its own process ---------------------------------------------------


@dataclass
class Sampler:
    """CPU and RSS of this process, once a second, from a thread of its own: an overloaded event
    loop would fire a sampling timer late or not at all."""

    samples: list[tuple[float, float, int]] = field(default_factory=list)
    """(monotonic, process_time, VmRSS kB)"""
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def take(self) -> None:
        rss = kib(proc_status(os.getpid())["VmRSS"])
        self.samples.append((time.monotonic(), time.process_time(), rss))

    def _run(self) -> None:
        while True:
            self.take()
            if self._stop.wait(1.0):
                return

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.take()

    def cpu_per_window(self, start: float, window: float) -> list[float]:
        """% of one core in each ``window`` seconds from ``start`` (from the nearest samples)."""
        result: list[float] = []
        edge = start
        while True:
            inside = [s for s in self.samples if edge <= s[0] <= edge + window + 0.5]
            if len(inside) < 2 or inside[-1][0] - inside[0][0] < window * 0.8:
                return result
            first, last = inside[0], inside[-1]
            result.append(100.0 * (last[1] - first[1]) / (last[0] - first[0]))
            edge += window


@dataclass
class Outcome:
    candidate: str
    due: int
    done: int
    stored: int | None
    failed_probes: int
    missed: int | None
    refused_still_running: int
    cpu_percent: float
    cpu_windows: list[float]
    rss_peak_mb: float
    hwm_mb: float
    late_ms: list[float]
    run_ms: list[float]
    errors: int = 0
    replica_rows: int | None = None
    """Replica checks stored in the window (``daemon-replicas``)."""


def phases(targets: int, interval: float, together: bool) -> list[float]:
    """Seconds after the start at which each target is first due: the daemon's own schedule
    (:func:`monitor.schedule.first_runs`), or all at once."""
    if together:
        return [0.0] * targets
    from monitor.config import Target
    from monitor.schedule import first_runs

    now = datetime.now(UTC)
    fleet = [Target(f"t{n}", f"http://t{n}.test", interval=interval) for n in range(targets)]
    return [(at - now).total_seconds() for at in first_runs(fleet, now).values()]


def due(offsets: list[float], interval: float, duration: float) -> int:
    """Runs due within ``duration``: each target at its phase, then every interval."""
    return sum(math.ceil((duration - offset) / interval) for offset in offsets)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


async def run_bare(targets: list[str], interval: float, duration: float, together: bool) -> Outcome:
    import httpx

    from monitor.daemon import KEEPALIVE_CONNECTIONS, MAX_CONCURRENT_CHECKS

    limits = (
        httpx.Limits(
            max_connections=MAX_CONCURRENT_CHECKS, max_keepalive_connections=KEEPALIVE_CONNECTIONS
        )
        if not together
        else httpx.Limits(max_connections=100, max_keepalive_connections=20)
    )
    client = httpx.AsyncClient(follow_redirects=True, limits=limits)
    offsets = phases(len(targets), interval, together)
    sampler = Sampler()
    sampler.start()
    late: list[float] = []
    took: list[float] = []
    counts = {"done": 0, "failed": 0, "missed": 0}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    started, cpu_started = time.monotonic(), time.process_time()
    end = started + duration

    async def poll(url: str, offset: float) -> None:
        n = 0
        while (due := started + offset + n * interval) < end:
            if (delay := due - time.monotonic()) > 0:
                await asyncio.sleep(delay)
            elif -delay > interval:  # as the daemon's jobs: coalesce, grace of one interval
                skipped = int(-delay // interval)
                counts["missed"] += sum(1 for k in range(skipped) if due + k * interval < end)
                n += skipped
                continue
            began = time.monotonic()
            late.append((began - due) * 1000)
            try:
                response = await client.get(url + DETAILED, headers=headers, timeout=5.0)
                response.json()
                if response.status_code != 200:
                    counts["failed"] += 1
            except (httpx.HTTPError, ValueError):
                counts["failed"] += 1
            took.append((time.monotonic() - began) * 1000)
            counts["done"] += 1
            n += 1

    await asyncio.gather(*(poll(url, offset) for url, offset in zip(targets, offsets, strict=True)))
    await asyncio.sleep(max(0.0, end - time.monotonic()))
    cpu = time.process_time() - cpu_started
    wall = time.monotonic() - started
    sampler.stop()
    await client.aclose()
    return Outcome(
        candidate=MODES["bare-together" if together else "bare"],
        due=due(offsets, interval, duration),
        done=counts["done"],
        stored=None,
        failed_probes=counts["failed"],
        missed=counts["missed"],
        refused_still_running=0,
        cpu_percent=100.0 * cpu / wall,
        cpu_windows=sampler.cpu_per_window(started, interval),
        rss_peak_mb=max(s[2] for s in sampler.samples) * 1024 / 1e6,
        hwm_mb=kib(proc_status(os.getpid())["VmHWM"]) * 1024 / 1e6,
        late_ms=late,
        run_ms=took,
    )


async def run_daemon(
    targets: list[str],
    interval: float,
    duration: float,
    db: Path,
    discover: bool,
    replicas: int = 1,
) -> Outcome:
    from apscheduler.events import (
        EVENT_JOB_ERROR,
        EVENT_JOB_EXECUTED,
        EVENT_JOB_MAX_INSTANCES,
        EVENT_JOB_MISSED,
        EVENT_JOB_SUBMITTED,
        JobEvent,
        JobExecutionEvent,
        JobSubmissionEvent,
    )
    from sqlalchemy import func, select

    from monitor.config import MonitorConfig, Notifier, Target
    from monitor.daemon import MonitorDaemon
    from monitor.store import Status
    from monitor.store.schema import checks, replica_checks

    # With replicas, each target is a group of ``replicas`` endpoints of the fleet.
    groups = [targets[n : n + replicas] for n in range(0, len(targets), replicas)]
    config = MonitorConfig(
        path=db.with_suffix(".toml"),
        storage_url=f"sqlite:///{db}",
        targets=tuple(
            Target(
                f"target-{n:04d}",
                group[0],
                interval=interval,
                timeout=5.0,
                token_env=TOKEN_ENV,
                services={} if discover else SERVICES,
                replicas=tuple(group) if replicas > 1 else (),
            )
            for n, group in enumerate(groups)
        ),
        notifiers=(Notifier("log"),),
    )
    daemon = MonitorDaemon(config, environ={TOKEN_ENV: TOKEN})
    sampler = Sampler()
    sampler.start()
    late: list[float] = []
    took: list[float] = []
    submitted: dict[str, float] = {}
    counts = {"refused": 0, "in_flight": 0, "errors": 0}
    idle = asyncio.Event()

    def on_event(event: JobEvent) -> None:
        if event.job_id == "retention":
            return
        now = time.time()
        if event.code == EVENT_JOB_MAX_INSTANCES:  # a JobSubmissionEvent, but nothing submitted
            counts["refused"] += 1
        elif isinstance(event, JobSubmissionEvent):
            counts["in_flight"] += 1
            submitted[event.job_id] = time.monotonic()
            late.append((now - event.scheduled_run_times[-1].timestamp()) * 1000)
        elif isinstance(event, JobExecutionEvent):
            counts["in_flight"] -= 1
            if counts["in_flight"] == 0:
                idle.set()
            counts["errors"] += event.code == EVENT_JOB_ERROR
            if event.job_id in submitted:
                took.append((time.monotonic() - submitted.pop(event.job_id)) * 1000)

    await daemon.start()
    # The first runs are staggered from the end of start() (after the schema and catalogue).
    started, wall_started, cpu_started = time.monotonic(), time.time(), time.process_time()
    assert daemon.scheduler is not None
    daemon.scheduler.add_listener(
        on_event,
        EVENT_JOB_SUBMITTED
        | EVENT_JOB_EXECUTED
        | EVENT_JOB_ERROR
        | EVENT_JOB_MISSED
        | EVENT_JOB_MAX_INSTANCES,
    )
    await asyncio.sleep(max(0.0, started + duration - time.monotonic()))
    cpu = time.process_time() - cpu_started
    wall = time.monotonic() - started
    done = daemon.checks
    sampler.stop()
    # Let the runs in flight end before stop(): stopping mid-write hangs (see the daemon tests).
    daemon.scheduler.pause()
    if counts["in_flight"] > 0:
        idle.clear()
        await asyncio.wait_for(idle.wait(), timeout=300)
    async with daemon.engine.connect() as connection:
        window = checks.c.at < wall_started + duration
        stored = await connection.scalar(select(func.count()).where(window))
        failed = await connection.scalar(
            select(func.count()).where(window, checks.c.status == Status.UNREACHABLE.value)
        )
        replica_rows = None
        if replicas > 1:
            in_window = replica_checks.c.at < wall_started + duration
            replica_rows = await connection.scalar(select(func.count()).where(in_window))
            failed = await connection.scalar(
                select(func.count()).where(
                    in_window, replica_checks.c.status == Status.UNREACHABLE.value
                )
            )
    missed = daemon.missed
    await daemon.stop()
    return Outcome(
        candidate=MODES["daemon-discover" if discover else "daemon"],
        due=due(phases(len(groups), interval, False), interval, duration),
        done=done,
        stored=int(stored or 0),
        failed_probes=int(failed or 0),
        missed=missed,
        refused_still_running=counts["refused"],
        cpu_percent=100.0 * cpu / wall,
        cpu_windows=sampler.cpu_per_window(started, interval),
        rss_peak_mb=max(s[2] for s in sampler.samples) * 1024 / 1e6,
        hwm_mb=kib(proc_status(os.getpid())["VmHWM"]) * 1024 / 1e6,
        late_ms=late,
        run_ms=took,
        errors=counts["errors"],
        replica_rows=None if replica_rows is None else int(replica_rows),
    )


def candidate_main(args: argparse.Namespace) -> None:
    """``python -m benchmarks.monitor_fleet candidate``: one run, its outcome as JSON on stdout."""
    targets = [f"http://{address(n)}:{args.port}" for n in range(args.targets)]
    if args.mode.startswith("bare"):
        together = args.mode == "bare-together"
        outcome = asyncio.run(run_bare(targets, args.interval, args.duration, together))
    else:
        discover = args.mode.endswith("-discover")
        replicas = args.replicas if args.mode == "daemon-replicas" else 1
        run = run_daemon(targets, args.interval, args.duration, Path(args.db), discover, replicas)
        outcome = asyncio.run(run)
    outcome.candidate = MODES[args.mode]
    print(json.dumps(outcome.__dict__), flush=True)


# -- the 90-day query -----------------------------------------------------------------------------


def _components() -> list[tuple[str, str]]:
    return [
        (f"api-{t}", service) for t in range(QUERY_TARGETS) for service in ("", *QUERY_SERVICES)
    ]


async def build_history(path: Path) -> None:
    from sqlalchemy import insert

    from benchmarks._history import synthetic_rollup
    from monitor.store import Component, create_schema, open_engine
    from monitor.store.schema import rollups
    from monitor.store.writer import HistoryWriter

    engine = open_engine(f"sqlite:///{path}")
    await create_schema(engine)
    components = _components()
    await HistoryWriter(engine).sync_components(
        [Component(t, s, f"{t} {s}".strip(), t, n) for n, (t, s) in enumerate(components)]
    )
    today = QUERY_NOW // DAY * DAY
    hour = QUERY_NOW // HOUR * HOUR
    rows = [
        synthetic_rollup(t, s, "day", today - d * DAY, n * 1000 + d)
        for n, (t, s) in enumerate(components)
        for d in range(91)
    ]
    rows += [
        synthetic_rollup(t, s, "hour", hour - h * HOUR, n * 1000 + h)
        for n, (t, s) in enumerate(components)
        for h in range(35 * 24)
    ]
    async with engine.begin() as connection:
        await connection.execute(insert(rollups), rows)
    await HistoryWriter(engine).compact_day_strips(float(QUERY_NOW))  # as the daemon leaves them
    await engine.dispose()


async def ninety_days(reader: Any) -> int:
    from monitor.figures import LAST_90D, read_uptimes

    bars = 0
    for target, service in _components():
        await read_uptimes(reader, [(target, service)], float(QUERY_NOW), (LAST_90D,))
        bars += len(await reader.bars(target, service, period="day", count=90, now=QUERY_NOW))
    return bars


async def query_times(path: Path, repeats: int) -> dict[str, list[float]]:
    """Cold, warm, bars_many and the baseline in turn within every repeat, so drift hits them
    alike."""
    from monitor.store import HistoryReader, open_engine

    url = f"sqlite:///{path}"
    times: dict[str, list[float]] = {"cold": [], "warm": [], "many": [], "bare": []}
    warm = open_engine(url, read_only=True)
    await ninety_days(HistoryReader(warm))
    for _ in range(repeats):
        engine = open_engine(url, read_only=True)
        began = time.perf_counter()
        assert await ninety_days(HistoryReader(engine)) == 50 * 90
        times["cold"].append((time.perf_counter() - began) * 1000)
        await engine.dispose()

        began = time.perf_counter()
        await ninety_days(HistoryReader(warm))
        times["warm"].append((time.perf_counter() - began) * 1000)

        began = time.perf_counter()
        many = await HistoryReader(warm).bars_many(_components(), count=90, now=QUERY_NOW)
        times["many"].append((time.perf_counter() - began) * 1000)
        assert sum(len(bars) for bars in many.values()) == 50 * 90

        began = time.perf_counter()
        with contextlib.closing(sqlite3.connect(path)) as connection:
            rows = connection.execute(
                "SELECT target, service, start, checks, up, worst, latency_sum, latency_count "
                "FROM rollups WHERE period = 'day' AND start >= ?",
                (QUERY_NOW // DAY * DAY - 89 * DAY,),
            ).fetchall()
        times["bare"].append((time.perf_counter() - began) * 1000)
        assert len(rows) == 50 * 90
    await warm.dispose()
    return times


# -- orchestration --------------------------------------------------------------------------------


def _run_candidate(
    mode: str, args: argparse.Namespace, port: int, workdir: Path, round_number: int
) -> Outcome:
    argv = [
        sys.executable,
        "-m",
        "benchmarks.monitor_fleet",
        "candidate",
        "--mode",
        mode,
        "--port",
        str(port),
        "--targets",
        str(args.targets),
        "--interval",
        str(args.interval),
        "--duration",
        str(args.duration),
        "--replicas",
        str(args.replicas),
        "--db",
        str(workdir / f"monitor-{mode}-{round_number}.db"),
    ]
    process = subprocess.Popen(
        pinned(argv, DAEMON_CPU),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    profile = (
        args.profile / f"{mode}-{round_number}.txt"
        if args.profile and mode.startswith("daemon")
        else None
    )
    try:
        with py_spy(process.pid, profile) if profile else contextlib.nullcontext():
            stdout, stderr = process.communicate(timeout=args.duration + 300)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if process.returncode != 0 or not stdout.strip():
        raise SystemExit(f"{mode} run failed ({process.returncode}):\n{stderr[-4000:]}")
    if stderr.strip():
        print(f"[{mode} stderr, last lines]\n{stderr.strip()[-1500:]}", file=sys.stderr)
    if profile:
        print(summarize_profile(profile, ours=("monitor/", "shared/")), flush=True)
    return Outcome(**json.loads(stdout.strip().splitlines()[-1]))


def _fleet_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report(
    outcomes: dict[str, list[Outcome]],
    fleet_cpu: dict[str, list[float]],
    times: dict[str, list[float]],
    args: argparse.Namespace,
) -> str:
    med = statistics.median
    grouped = (
        f" (daemon-replicas: {args.targets // args.replicas:,} targets × {args.replicas} "
        "replicas on the same endpoints)"
        if args.replicas > 1
        else ""
    )
    lines = [
        f"{args.targets:,} targets{grouped}, interval {args.interval:g} s, {args.duration:g} s "
        f"per run, {args.rounds} round(s); load average at the end {load_average()}",
        "",
        "| candidate | checks done / due | stored | failed probes | missed | "
        "of which refused, still running | CPU % of a core (avg) | "
        "CPU % per interval (median / max) | RSS peak MB | VmHWM MB | "
        "start late p50 / p99 / max ms | run p50 / p99 ms | fleet CPU % |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, runs in outcomes.items():
        if not runs:
            continue
        first = runs[0]
        windows = [w for r in runs for w in r.cpu_windows]
        late = [v for r in runs for v in r.late_ms]
        took = [v for r in runs for v in r.run_ms]
        stored = "—" if first.stored is None else f"{med([r.stored or 0 for r in runs]):,.0f}"
        missed = "—" if first.missed is None else f"{med([r.missed or 0 for r in runs]):,.0f}"
        lines.append(
            f"| {first.candidate} | {med([r.done for r in runs]):,.0f} / {first.due:,} | "
            f"{stored} | {med([r.failed_probes for r in runs]):,.0f} | {missed} | "
            f"{med([r.refused_still_running for r in runs]):,.0f} | "
            f"{med([r.cpu_percent for r in runs]):.1f} | "
            f"{med(windows) if windows else math.nan:.1f} / {max(windows, default=math.nan):.1f} | "
            f"{med([r.rss_peak_mb for r in runs]):.1f} | {med([r.hwm_mb for r in runs]):.1f} | "
            f"{_percentile(late, 0.5):,.0f} / {_percentile(late, 0.99):,.0f} / "
            f"{max(late, default=math.nan):,.0f} | "
            f"{_percentile(took, 0.5):,.1f} / {_percentile(took, 0.99):,.1f} | "
            f"{med(fleet_cpu[label]):.1f} |"
        )
    lines.append("")
    for ours, baseline in (
        ("daemon", "bare"),
        ("daemon-discover", "bare"),
        ("daemon-replicas", "daemon"),
    ):
        if ours in outcomes and baseline in outcomes:
            cpu = med([r.cpu_percent for r in outcomes[ours]])
            cpu -= med([r.cpu_percent for r in outcomes[baseline]])
            rss = med([r.rss_peak_mb for r in outcomes[ours]])
            rss -= med([r.rss_peak_mb for r in outcomes[baseline]])
            lines.append(
                f"- {ours} over {baseline}: CPU {cpu:+.1f} points of a core, RSS {rss:+.1f} MB."
            )
    for mode in ("daemon", "daemon-discover", "daemon-replicas"):
        if not outcomes.get(mode):
            continue
        runs = outcomes[mode]
        cpu = med([r.cpu_percent for r in runs])
        rss = med([r.rss_peak_mb for r in runs])
        skipped = med([r.missed or 0 for r in runs])
        shortfall = med([r.due - (r.stored or 0) for r in runs])
        failed = med([r.failed_probes for r in runs])
        checks_ok = skipped == 0 and shortfall <= 0 and failed == 0
        most = TARGET_REPLICAS_CPU_PERCENT if mode == "daemon-replicas" else TARGET_CPU_PERCENT
        rows = ""
        if mode == "daemon-replicas":
            stored_rows = med([r.replica_rows or 0 for r in runs])
            rows = f", {stored_rows:,.0f} replica checks stored ({args.replicas} per check)"
        lines.append(
            f"- Targets, {mode}: no missed checks — {skipped:,.0f} missed, "
            f"{shortfall:,.0f} due checks not stored, {failed:,.0f} failed probes of a healthy "
            f"fleet{rows} ({verdict(checks_ok)}); CPU ≤ {most:g} % — {cpu:.1f} % "
            f"({verdict(cpu <= most)}); RSS ≤ {TARGET_RSS_MB:g} MB — "
            f"{rss:.1f} MB ({verdict(rss <= TARGET_RSS_MB)})."
        )
    lines += [
        "",
        "| 90-day query, 50 components (uptime 90 d + 90 daily bars each) | ms (p50) | p90 |",
        "|---|---:|---:|",
        f"| HistoryReader, cold (new engine per repeat) | {med(times['cold']):.1f} | "
        f"{_percentile(times['cold'], 0.9):.1f} |",
        f"| HistoryReader, warm (one engine) | {med(times['warm']):.1f} | "
        f"{_percentile(times['warm'], 0.9):.1f} |",
        f"| HistoryReader.bars_many, all 50 in one query (the status page's read), warm | "
        f"{med(times['many']):.1f} | {_percentile(times['many'], 0.9):.1f} |",
        f"| baseline: one sqlite3 SELECT of the 4,500 daily rows, new connection | "
        f"{med(times['bare']):.1f} | {_percentile(times['bare'], 0.9):.1f} |",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command")
    fleet = commands.add_parser("fleet", help="serve the fake fleet (run by the benchmark)")
    fleet.add_argument("--port", type=int, required=True)
    fleet.add_argument("--addresses", type=int, required=True)
    candidate = commands.add_parser("candidate", help="one measured run (run by the benchmark)")
    candidate.add_argument("--mode", choices=list(MODES), required=True)
    candidate.add_argument("--port", type=int, required=True)
    candidate.add_argument("--db", required=True)
    for sub in (parser, candidate):
        sub.add_argument("--targets", type=int, default=1000)
        sub.add_argument("--interval", type=float, default=10.0)
        sub.add_argument("--duration", type=float, default=120.0)
        sub.add_argument(
            "--replicas",
            type=int,
            default=1,
            help="also run daemon-replicas: targets/N targets of N replicas on the same fleet",
        )
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--modes",
        default=",".join(DEFAULT_MODES),
        help=f"comma-separated, of: {', '.join(MODES)}",
    )
    parser.add_argument("--query-repeats", type=int, default=15)
    parser.add_argument("--profile", type=Path, help="py-spy the daemon runs into this directory")
    args = parser.parse_args()
    if args.command == "fleet":
        serve_fleet(args.port, args.addresses)
        return
    if args.command == "candidate":
        candidate_main(args)
        return
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    with stop_on_sigterm(), tempfile.TemporaryDirectory(prefix="monitor-fleet-") as tmp:
        workdir = Path(tmp)
        asyncio.run(build_history(workdir / "history.db"))
        times = asyncio.run(query_times(workdir / "history.db", args.query_repeats))
        port = new_port()
        argv = [sys.executable, "-m", "benchmarks.monitor_fleet", "fleet", "--port", str(port)]
        argv += ["--addresses", str(args.targets)]
        modes = args.modes.split(",")
        if args.replicas > 1 and "daemon-replicas" not in modes:
            modes.append("daemon-replicas")
        if args.targets % args.replicas:
            raise SystemExit("--targets must be a multiple of --replicas")
        outcomes: dict[str, list[Outcome]] = {mode: [] for mode in modes}
        fleet_cpu: dict[str, list[float]] = {mode: [] for mode in modes}
        with ServerProcess("fleet", pinned(argv, FLEET_CPU), port=port, workdir=workdir) as server:
            server.wait_until(SUMMARY)
            pid = server.server_pid()
            for round_number in range(args.rounds):
                shift = round_number % len(modes)  # rotate the order from round to round
                for mode in modes[shift:] + modes[:shift]:
                    before, began = _fleet_cpu_seconds(pid), time.monotonic()
                    outcome = _run_candidate(mode, args, port, workdir, round_number)
                    busy = _fleet_cpu_seconds(pid) - before
                    fleet_cpu[mode].append(100.0 * busy / (time.monotonic() - began))
                    outcomes[mode].append(outcome)
                    print(
                        f"{mode}: {outcome.done:,} of {outcome.due:,} checks, "
                        f"{outcome.failed_probes:,} failed, {outcome.cpu_percent:.1f} % CPU",
                        flush=True,
                    )
        print(report(outcomes, fleet_cpu, times, args))


if __name__ == "__main__":
    main()
