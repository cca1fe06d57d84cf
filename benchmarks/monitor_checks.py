"""The monitor daemon running 1,000 ``[[checks]]`` of five kinds every 10 s against real local
servers, beside the daemon as shipped polling 1,000 health-API targets (issue #16).

    uv run python -m benchmarks.monitor_checks [--checks 1000] [--interval 10] [--duration 120]
        [--mix http=500,tcp=150,dns=150,tls=150,postgres=50] [--grouped] [--rounds 1]
        [--modes daemon,checks] [--profile DIR] [--cprofile DIR]

Each kind's server is a process of its own pinned to CPU 1 (:mod:`benchmarks._check_servers`):
``http`` — the fleet of :mod:`benchmarks.monitor_fleet` (one uvicorn process on 1,000 loopback
addresses 127.0.1.1, …), whose ``/api/v1/health/live`` answers ``{"status": "alive"}``, judged
by ``[STATUS] == 200``, ``[BODY].status == alive``, ``[RESPONSE_TIME] < 500``, each check on an
address of its own; ``tcp`` — an echo server on as many addresses, ``send = "ping\\n"``,
``expect = "ping"``; ``dns`` — a dnspython UDP server on 127.0.0.1, each check asking ``A`` of a
name of its own (``svc-N.bench.test``) and expecting its address; ``tls`` — a TLS listener on as
many addresses with a self-signed EC certificate 90 days from expiry (``server_name``, ``ca_file``:
the chain is verified for the name; no warning, warn_days 30); ``postgres`` — a throwaway
PostgreSQL cluster (:class:`tests.support.PostgresServer`, as the ``postgres`` user under root),
each check a real SCRAM login and ``SELECT 1`` (``url_env``). The servers are healthy throughout,
so every check not healthy is the monitor's own failure.

The default mix is half HTTP (what most operators check most) and the rest spread over the other
kinds, with PostgreSQL at 5 %: each of its runs is a login (a backend forked, SCRAM), and a
monitor checks a handful of databases, not hundreds. The kinds are spread evenly through the
config, whose order is that of the staggered first runs: written kind after kind (``--grouped``),
the 50 logins fall within half a second of each interval and saturate the one core every server
shares, which slows the HTTP fleet on it past ``[RESPONSE_TIME] < 500`` — a limit of this
bench's single server core, not of the monitor.

Candidates, each for ``--duration`` in a process of its own pinned to CPU 0, in the same run on
the same servers:

- ``daemon`` (the baseline): the daemon as shipped with ``--checks`` health-API targets, as
  :mod:`benchmarks.monitor_fleet`'s ``daemon`` mode (its own code);
- ``checks``: the daemon as shipped (:class:`~monitor.daemon.MonitorDaemon`, loaded from a
  ``monitor.toml`` through :func:`monitor.config.load_config`) with the ``[[checks]]`` and the one
  ``[[targets]]`` entry a config must have (the fleet's detailed health, its two services named).

Figures as :mod:`benchmarks.monitor_fleet`'s: checks done (jobs run in the window) against due,
stored (rows of the store in the window), failed (``checks``: stored rows not healthy, of any
status; ``daemon``: unreachable), missed (:attr:`MonitorDaemon.missed`), CPU as % of a core
(``process_time`` over the window; per interval, median and max), RSS peak (sampled each second),
how late runs started, how long a job took (submission to end, including the store's 0.25 s write
window); per kind: not healthy, the job's time, the check's own latency as the runner measured
it, the errors seen (and when, in seconds into the run), and each server's CPU over the run;
for ``checks``, the event loop's lag (a 100 ms sleep's overshoot) and the full garbage
collections in the window. ``--cprofile DIR`` profiles each candidate's whole process (its
summary on stderr; the overhead doubles the CPU figures), ``--profile DIR`` samples it with
py-spy (when installed).

Targets (issue 4, for #16's fleet): no missed checks, CPU ≤ 50 % of one core, RSS ≤ 200 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import importlib
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks._check_servers import LIVE, dns_address, dns_name, wait_ready
from benchmarks._servers import (
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
from benchmarks.monitor_fleet import (
    DAEMON_CPU,
    FLEET_CPU,
    SERVICES,
    SUMMARY,
    TARGET_CPU_PERCENT,
    TARGET_RSS_MB,
    TOKEN,
    TOKEN_ENV,
    Outcome,
    _percentile,
    address,
    due,
    verdict,
)
from benchmarks.monitor_fleet import run_daemon as run_targets

KINDS = ("http", "tcp", "dns", "tls", "postgres")
DEFAULT_MIX = "http=500,tcp=150,dns=150,tls=150,postgres=50"
PG_ENV = "BENCH_CHECKS_DATABASE_URL"
TLS_NAME = "tls.bench.test"
MODES = {
    "daemon": "baseline: daemon as shipped, health-API targets",
    "checks": "**daemon as shipped, [[checks]] of five kinds**",
}
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Servers:
    ports: dict[str, int]
    pids: dict[str, int]
    ca_file: Path
    dsn: str | None


def mix(total: int, text: str) -> dict[str, int]:
    """Checks of each kind: ``text``'s weights scaled to ``total`` (the rounding goes to http)."""
    weights = dict.fromkeys(KINDS, 0)
    for part in filter(None, text.split(",")):
        kind, _, weight = part.partition("=")
        if kind.strip() not in weights:
            raise SystemExit(f"--mix: {kind!r} is not one of {', '.join(KINDS)}")
        weights[kind.strip()] = int(weight)
    scale = total / sum(weights.values())
    counts = {kind: int(weight * scale) for kind, weight in weights.items()}
    counts["http"] += total - sum(counts.values())
    return counts


# -- the config ----------------------------------------------------------------------------------


def order(counts: dict[str, int], grouped: bool) -> list[tuple[str, int]]:
    """The checks in config order, which is the order of their staggered first runs: each kind
    spread evenly over the interval (``grouped``: kind after kind, so that each kind's checks
    run together — 50 PostgreSQL logins within half a second)."""
    checks = [(kind, n) for kind in KINDS for n in range(counts[kind])]
    if grouped:
        return checks
    return sorted(checks, key=lambda check: (check[1] + 0.5) / counts[check[0]])


def config_text(
    counts: dict[str, int],
    servers: Servers,
    interval: float,
    db: Path,
    *,
    grouped: bool = False,
    timeout: float = 5.0,
) -> str:
    """``monitor.toml``: the store, one target (a config must have one), the checks."""
    q = json.dumps  # a TOML basic string, for the plain text written here
    fleet = f"http://{address(0)}:{servers.ports['http']}"
    lines = [
        "[storage]",
        f"url = {q(f'sqlite:///{db}')}",
        "",
        "[[targets]]",
        'name = "api"',
        f"url = {q(fleet)}",
        f"interval = {interval:g}",
        f"timeout = {timeout:g}",
        f"token_env = {q(TOKEN_ENV)}",
        f"services = {{ {', '.join(f'{k} = {q(v)}' for k, v in SERVICES.items())} }}",
    ]
    for kind, n in order(counts, grouped):
        lines += [
            "",
            "[[checks]]",
            f'name = "{kind}-{n:04d}"',
            f'kind = "{kind}"',
            f"interval = {interval:g}",
            f"timeout = {timeout:g}",
            *_kind_lines(kind, n, servers),
        ]
    return "\n".join(lines) + "\n"


def _kind_lines(kind: str, n: int, servers: Servers) -> list[str]:
    q = json.dumps
    port = servers.ports.get(kind)
    if kind == "http":
        return [
            f"url = {q(f'http://{address(n)}:{port}{LIVE}')}",
            'conditions = ["[STATUS] == 200", "[BODY].status == alive", "[RESPONSE_TIME] < 500"]',
        ]
    if kind == "tcp":
        return [f'host = "{address(n)}"', f"port = {port}", 'send = "ping\\n"', 'expect = "ping"']
    if kind == "dns":
        return [
            f'host = "{dns_name(n)}"',
            'type = "A"',
            f'expect = ["{dns_address(n)}"]',
            f'nameserver = "127.0.0.1:{port}"',
        ]
    if kind == "tls":
        return [
            f'host = "{address(n)}"',
            f"port = {port}",
            f'server_name = "{TLS_NAME}"',
            f"ca_file = {q(str(servers.ca_file))}",
        ]
    return [f'url_env = "{PG_ENV}"']


def kind_of(name: str) -> str:
    """``tcp-0042`` → ``tcp``; the target (``api``) counts as ``target``."""
    kind = name.partition("-")[0]
    return kind if kind in KINDS else "target"


# -- one candidate, in its own process -----------------------------------------------------------


async def run_checks(config_path: Path, duration: float, environ: dict[str, str]) -> dict[str, Any]:
    """The daemon as shipped on the config at ``config_path`` for ``duration``; the figures as
    :class:`~benchmarks.monitor_fleet.Outcome` (``outcome``) and per kind (``kinds``)."""
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
    from sqlalchemy import select

    from benchmarks.monitor_fleet import Sampler
    from monitor.checks.spec import Check
    from monitor.config import Target, load_config
    from monitor.daemon import MonitorDaemon
    from monitor.schedule import first_runs
    from monitor.store import Status
    from monitor.store.schema import checks

    config = load_config(config_path)
    # Each kind's module (and its libraries: dnspython, asyncpg) is imported by the runner when
    # its first check runs. Imported here, before the window: where the benchmarks run,
    # PYTHONDONTWRITEBYTECODE=1, so an import compiles every module from source (~0.5 s for
    # dnspython and asyncpg, on the event loop), which an installed monitor's .pyc files spare it.
    for used in {check.kind for check in config.checks}:
        importlib.import_module(f"monitor.checks.{used.value}")
    daemon = MonitorDaemon(config, environ=environ)
    sampler = Sampler()
    sampler.start()
    late: list[float] = []
    took: dict[str, list[float]] = {}
    submitted: dict[str, float] = {}
    counts = {"refused": 0, "in_flight": 0, "errors": 0}
    idle = asyncio.Event()

    def on_event(event: JobEvent) -> None:
        if event.job_id == "retention":
            return
        if event.code == EVENT_JOB_MAX_INSTANCES:
            counts["refused"] += 1
        elif isinstance(event, JobSubmissionEvent):
            counts["in_flight"] += 1
            submitted[event.job_id] = time.monotonic()
            late.append((time.time() - event.scheduled_run_times[-1].timestamp()) * 1000)
        elif isinstance(event, JobExecutionEvent):
            counts["in_flight"] -= 1
            if counts["in_flight"] == 0:
                idle.set()
            counts["errors"] += event.code == EVENT_JOB_ERROR
            if event.job_id in submitted:
                kind = kind_of(event.job_id.removeprefix("check:"))
                took.setdefault(kind, []).append(
                    (time.monotonic() - submitted.pop(event.job_id)) * 1000
                )

    pauses = Pauses()
    await daemon.start()
    pauses.open()
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
    pauses.close()
    daemon.scheduler.pause()  # let the runs in flight end before stop() (as monitor_fleet)
    if counts["in_flight"] > 0:
        idle.clear()
        await asyncio.wait_for(idle.wait(), timeout=300)
    async with daemon.engine.connect() as connection:
        rows = (
            await connection.execute(
                select(
                    checks.c.target,
                    checks.c.status,
                    checks.c.latency_ms,
                    checks.c.error,
                    checks.c.at,
                ).where(checks.c.at < wall_started + duration)
            )
        ).all()
    missed = daemon.missed
    await daemon.stop()

    jobs: list[Target | Check] = [*config.targets, *config.checks]
    origin = datetime.now(UTC)  # the offsets of the daemon's staggered first runs
    offsets = {name: (at - origin).total_seconds() for name, at in first_runs(jobs, origin).items()}
    kinds: dict[str, dict[str, Any]] = {}
    for job in jobs:
        kind = kinds.setdefault(
            kind_of(job.name),
            {"count": 0, "due": 0, "stored": 0, "failed": 0, "latency_ms": [], "errors": Counter()},
        )
        kind["count"] += 1
        kind["due"] += due([offsets[job.name]], job.interval, duration)
    failed = 0
    for target, status, latency_ms, error, at in rows:
        kind = kinds[kind_of(target)]
        kind["stored"] += 1
        if latency_ms is not None:
            kind["latency_ms"].append(float(latency_ms))
        if status != Status.HEALTHY.value:
            kind["failed"] += 1
            kind["errors"][f"{status}: {error}"] += 1
            kind.setdefault("failed_at", []).append(round(at - wall_started, 1))
            failed += 1
    for kind_name, kind in kinds.items():
        kind["run_ms"] = took.get(kind_name, [])
        kind["errors"] = dict(kind["errors"].most_common(5))
    outcome = Outcome(
        candidate=MODES["checks"],
        due=sum(kind["due"] for kind in kinds.values()),
        done=done,
        stored=len(rows),
        failed_probes=failed,
        missed=missed,
        refused_still_running=counts["refused"],
        cpu_percent=100.0 * cpu / wall,
        cpu_windows=sampler.cpu_per_window(started, jobs[0].interval),
        rss_peak_mb=max(s[2] for s in sampler.samples) * 1024 / 1e6,
        hwm_mb=kib(proc_status(os.getpid())["VmHWM"]) * 1024 / 1e6,
        late_ms=late,
        run_ms=[v for values in took.values() for v in values],
        errors=counts["errors"],
    )
    return {"outcome": outcome.__dict__, "kinds": kinds, "pauses": pauses.figures()}


def candidate_main(args: argparse.Namespace) -> None:
    """``python -m benchmarks.monitor_checks candidate``: one run, its figures as JSON on
    stdout (a ``--cprofile`` file's summary on stderr)."""
    profiler = cProfile.Profile() if args.cprofile else None
    if args.mode == "daemon":
        targets = [f"http://{address(n)}:{args.port}" for n in range(args.checks)]
        run: Any = run_targets(targets, args.interval, args.duration, Path(args.db), False)
    else:
        environ = {TOKEN_ENV: TOKEN, PG_ENV: os.environ.get(PG_ENV, "")}
        run = run_checks(Path(args.config), args.duration, environ)
    with profiling(profiler, args.cprofile):
        result = asyncio.run(run)
    if isinstance(result, Outcome):
        result = {"outcome": result.__dict__, "kinds": {}}
    result["outcome"]["candidate"] = MODES[args.mode]
    print(json.dumps(result), flush=True)


@dataclass
class Pauses:
    """What held the event loop up within the window (:meth:`open` to :meth:`close`): its lag
    (how late a 100 ms sleep wakes: any check, import, commit or collection that keeps the loop
    busy), and the garbage collector's full collections (generation 2: every object walked)."""

    lags: list[float] = field(default_factory=list)
    full_gc: list[float] = field(default_factory=list)
    _open: bool = False
    _gc_started: float = 0.0
    _probe: asyncio.Task[None] | None = None

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self._open:
            self.full_gc.append((time.perf_counter() - self._gc_started) * 1000)

    async def _lag(self) -> None:
        while True:
            began = time.perf_counter()
            await asyncio.sleep(0.1)
            self.lags.append((time.perf_counter() - began - 0.1) * 1000)

    def open(self) -> None:
        self._open = True
        gc.callbacks.append(self._on_gc)
        self._probe = asyncio.get_running_loop().create_task(self._lag())

    def close(self) -> None:
        self._open = False
        if self._probe is not None:
            self._probe.cancel()
            gc.callbacks.remove(self._on_gc)

    def figures(self) -> dict[str, float]:
        return {
            "lag_p99_ms": _percentile(self.lags, 0.99),
            "lag_max_ms": max(self.lags, default=0.0),
            "lags_over_100_ms": sum(1 for lag in self.lags if lag > 100),
            "full_gc": len(self.full_gc),
            "full_gc_max_ms": max(self.full_gc, default=0.0),
            "full_gc_total_ms": sum(self.full_gc),
        }


@contextlib.contextmanager
def profiling(profiler: cProfile.Profile | None, path: str | None) -> Iterator[None]:
    if profiler is None or path is None:
        yield
        return
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        profiler.dump_stats(path)
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text).sort_stats("tottime")
        stats.print_stats(30)
        print(text.getvalue()[-6000:], file=sys.stderr)


# -- the servers and the runs --------------------------------------------------------------------


@contextlib.contextmanager
def servers(counts: dict[str, int], addresses: int, workdir: Path) -> Iterator[Servers]:
    """Every kind's server, pinned to :data:`FLEET_CPU`, ready."""
    from tests.support import PostgresServer
    from tests.support.tls_server import self_signed, validity

    cert, key = workdir / "tls-cert.pem", workdir / "tls-key.pem"
    cert_pem, key_pem = self_signed([TLS_NAME], *validity(90))
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    ports = {kind: new_port() for kind in ("http", "tcp", "tls", "dns")}
    pids: dict[str, int] = {}
    with contextlib.ExitStack() as stack:
        for kind, port in ports.items():
            argv = [sys.executable, "-m", "benchmarks._check_servers", kind, "--port", str(port)]
            argv += ["--addresses", str(addresses if kind == "http" else counts[kind])]
            argv += ["--names", str(counts["dns"])]
            if kind == "tls":
                argv += ["--cert", str(cert), "--key", str(key)]
            server = stack.enter_context(
                ServerProcess(kind, pinned(argv, FLEET_CPU), port=port, workdir=workdir)
            )
            if kind == "http":
                server.wait_until(SUMMARY)
            else:
                wait_ready(kind, port, server)
            pids[kind] = server.launched_pid
        dsn = None
        if counts["postgres"]:
            postgres = stack.enter_context(PostgresServer())
            ports["postgres"] = postgres.port
            dsn = postgres.dsn
            pids["postgres"] = int((postgres.data_dir / "postmaster.pid").read_text().split()[0])
            for pid in [pids["postgres"], *_children(pids["postgres"])]:
                os.sched_setaffinity(pid, {FLEET_CPU})  # backends forked later inherit it
        yield Servers(ports, pids, cert, dsn)


def _children(pid: int) -> list[int]:
    from tests.support.process import children_of

    return list(children_of(pid))


def cpu_seconds(pid: int) -> float:
    """User and system time of ``pid`` and of its children it has waited for (PostgreSQL's
    backends, one per login)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(fields[n]) for n in (11, 12, 13, 14)) / os.sysconf("SC_CLK_TCK")


def _run_candidate(
    mode: str,
    args: argparse.Namespace,
    found: Servers,
    workdir: Path,
    counts: dict[str, int],
    n: int,
) -> dict[str, Any]:
    db = workdir / f"monitor-{mode}-{n}.db"
    config = workdir / f"monitor-{mode}-{n}.toml"
    config.write_text(config_text(counts, found, args.interval, db, grouped=args.grouped))
    argv = [sys.executable, "-m", "benchmarks.monitor_checks", "candidate", "--mode", mode]
    argv += ["--port", str(found.ports["http"]), "--config", str(config), "--db", str(db)]
    argv += ["--checks", str(args.checks), "--interval", str(args.interval)]
    argv += ["--duration", str(args.duration)]
    if args.cprofile:
        argv += ["--cprofile", str(args.cprofile / f"{mode}-{n}.prof")]
    env = {**os.environ, PG_ENV: found.dsn or ""}
    process = subprocess.Popen(
        pinned(argv, DAEMON_CPU),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    profile = args.profile / f"{mode}-{n}.txt" if args.profile else None
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
        print(f"[{mode} stderr, last lines]\n{stderr.strip()[-6000:]}", file=sys.stderr)
    if profile:
        print(summarize_profile(profile, ours=("monitor/", "shared/")), flush=True)
    result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return result


# -- the report ----------------------------------------------------------------------------------


def _p(values: list[float], q: float) -> str:
    return f"{_percentile(values, q):,.1f}" if values else "—"


def report(
    runs: dict[str, list[dict[str, Any]]],
    server_cpu: dict[str, dict[str, list[float]]],
    counts: dict[str, int],
    args: argparse.Namespace,
) -> str:
    med = statistics.median
    mixed = ", ".join(f"{counts[k]} {k}" for k in KINDS if counts[k])
    lines = [
        f"{args.checks:,} checks ({mixed}) + 1 target, against {args.checks:,} health-API "
        f"targets; interval {args.interval:g} s, {args.duration:g} s per run, {args.rounds} "
        f"round(s); load average at the end {load_average()}",
        "",
        "| candidate | done / due | stored | failed | missed | of which refused, still running "
        "| CPU % of a core | CPU % per interval, median / max | RSS peak MB | "
        "start late p50 / p99 ms | run p50 / p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for results in runs.values():
        if not results:
            continue
        outs = [Outcome(**r["outcome"]) for r in results]
        windows = [w for o in outs for w in o.cpu_windows]
        late = [v for o in outs for v in o.late_ms]
        took = [v for o in outs for v in o.run_ms]
        lines.append(
            f"| {outs[0].candidate} | {med([o.done for o in outs]):,.0f} / {outs[0].due:,} | "
            f"{med([o.stored or 0 for o in outs]):,.0f} | "
            f"{med([o.failed_probes for o in outs]):,.0f} | "
            f"{med([o.missed or 0 for o in outs]):,.0f} | "
            f"{med([o.refused_still_running for o in outs]):,.0f} | "
            f"{med([o.cpu_percent for o in outs]):.1f} | "
            f"{med(windows) if windows else float('nan'):.1f} / {max(windows, default=0):.1f} | "
            f"{med([o.rss_peak_mb for o in outs]):.1f} | {_p(late, 0.5)} / {_p(late, 0.99)} | "
            f"{_p(took, 0.5)} / {_p(took, 0.99)} |"
        )
    if runs.get("checks"):
        lines += [
            "",
            "| kind (checks mode) | checks | due | stored | not healthy | job run p50 / p99 ms | "
            "check latency p50 / p99 ms | its server's CPU % of a core |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        results = runs["checks"]
        for kind in ("target", *KINDS):
            per = [r["kinds"][kind] for r in results if kind in r["kinds"]]
            if not per:
                continue
            run_ms = [v for p in per for v in p["run_ms"]]
            latency = [v for p in per for v in p["latency_ms"]]
            server = "http" if kind == "target" else kind
            busy = server_cpu["checks"].get(server, [])
            lines.append(
                f"| {kind} | {per[0]['count']:,} | {per[0]['due']:,} | "
                f"{med([p['stored'] for p in per]):,.0f} | "
                f"{med([p['failed'] for p in per]):,.0f} | "
                f"{_p(run_ms, 0.5)} / {_p(run_ms, 0.99)} | {_p(latency, 0.5)} / "
                f"{_p(latency, 0.99)} | {med(busy) if busy else float('nan'):.1f} |"
            )
        for kind in ("target", *KINDS):
            errors: Counter[str] = Counter()
            for r in results:
                errors.update(r["kinds"].get(kind, {}).get("errors", {}))
            if errors:
                at = Counter(a for r in results for a in r["kinds"][kind].get("failed_at", []))
                when = ", ".join(
                    f"{a:g}" + (f" ×{k}" if k > 1 else "") for a, k in sorted(at.items())
                )
                lines.append(
                    f"- {kind} errors (top 5 of each run): "
                    + "; ".join(f"{n}× {e}" for e, n in errors.items())
                    + f"; seconds into the run: {when[:400]}"
                )
    lines.append("")
    for mode, results in runs.items():
        if not results:
            continue
        outs = [Outcome(**r["outcome"]) for r in results]
        cpu = med([o.cpu_percent for o in outs])
        rss = med([o.rss_peak_mb for o in outs])
        missed = med([o.missed or 0 for o in outs])
        shortfall = med([o.due - (o.stored or 0) for o in outs])
        failed = med([o.failed_probes for o in outs])
        ok = missed == 0 and shortfall <= 0 and failed == 0
        lines.append(
            f"- Targets, {mode}: no missed checks — {missed:,.0f} missed, {shortfall:,.0f} due "
            f"not stored, {failed:,.0f} failed ({verdict(ok)}); CPU ≤ {TARGET_CPU_PERCENT:g} % — "
            f"{cpu:.1f} % ({verdict(cpu <= TARGET_CPU_PERCENT)}); RSS ≤ {TARGET_RSS_MB:g} MB — "
            f"{rss:.1f} MB ({verdict(rss <= TARGET_RSS_MB)})."
        )
    for mode, results in runs.items():
        stalls = [r["pauses"] for r in results if "pauses" in r]
        if stalls:
            lines.append(
                f"- Event loop, {mode}: lag p99 / max "
                f"{max(p['lag_p99_ms'] for p in stalls):,.0f} / "
                f"{max(p['lag_max_ms'] for p in stalls):,.0f} ms, "
                f"{sum(p['lags_over_100_ms'] for p in stalls):,.0f} wakes over 100 ms late; "
                f"full GC {sum(p['full_gc'] for p in stalls):,.0f}×, max "
                f"{max(p['full_gc_max_ms'] for p in stalls):,.0f} ms, total "
                f"{sum(p['full_gc_total_ms'] for p in stalls):,.0f} ms."
            )
    if runs.get("checks") and runs.get("daemon"):
        cpu_of = {m: med([r["outcome"]["cpu_percent"] for r in runs[m]]) for m in runs}
        rss_of = {m: med([r["outcome"]["rss_peak_mb"] for r in runs[m]]) for m in runs}
        lines.append(
            f"- checks over daemon: CPU {cpu_of['checks'] - cpu_of['daemon']:+.1f} points of a "
            f"core, RSS {rss_of['checks'] - rss_of['daemon']:+.1f} MB."
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command")
    candidate = commands.add_parser("candidate", help="one measured run (run by the benchmark)")
    candidate.add_argument("--mode", choices=list(MODES), required=True)
    candidate.add_argument("--port", type=int, required=True)
    candidate.add_argument("--config", required=True)
    candidate.add_argument("--db", required=True)
    candidate.add_argument("--cprofile")
    for sub in (parser, candidate):
        sub.add_argument("--checks", type=int, default=1000)
        sub.add_argument("--interval", type=float, default=10.0)
        sub.add_argument("--duration", type=float, default=120.0)
    parser.add_argument("--mix", default=DEFAULT_MIX, help=f"weights of the kinds: {DEFAULT_MIX}")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--grouped",
        action="store_true",
        help="checks in the config kind after kind (default: the kinds spread over the interval)",
    )
    parser.add_argument("--modes", default="daemon,checks", help="comma-separated: daemon,checks")
    parser.add_argument("--profile", type=Path, help="py-spy the candidates into this directory")
    parser.add_argument("--cprofile", type=Path, help="cProfile the candidates into this directory")
    args = parser.parse_args()
    if args.command == "candidate":
        candidate_main(args)
        return
    for directory in (args.profile, args.cprofile):
        if directory:
            directory.mkdir(parents=True, exist_ok=True)
    counts = mix(args.checks, args.mix)
    modes = [m for m in args.modes.split(",") if m]
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    server_cpu: dict[str, dict[str, list[float]]] = {mode: {} for mode in modes}
    with (
        stop_on_sigterm(),
        tempfile.TemporaryDirectory(prefix="monitor-checks-") as tmp,
        servers(counts, args.checks, Path(tmp)) as found,
    ):
        for n in range(args.rounds):
            shift = n % len(modes)  # rotate the order from round to round
            for mode in modes[shift:] + modes[:shift]:
                before = {kind: cpu_seconds(pid) for kind, pid in found.pids.items()}
                began = time.monotonic()
                result = _run_candidate(mode, args, found, Path(tmp), counts, n)
                wall = time.monotonic() - began
                for kind, pid in found.pids.items():
                    busy = cpu_seconds(pid) - before[kind]
                    server_cpu[mode].setdefault(kind, []).append(100.0 * busy / wall)
                runs[mode].append(result)
                outcome = result["outcome"]
                print(
                    f"{mode}: {outcome['done']:,} of {outcome['due']:,} checks, "
                    f"{outcome['failed_probes']:,} failed, {outcome['cpu_percent']:.1f} % CPU; "
                    f"load {load_average()}",
                    flush=True,
                )
    print(report(runs, server_cpu, counts, args))


if __name__ == "__main__":
    main()
