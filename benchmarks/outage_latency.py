"""Write latency while PostgreSQL is blackholed: how many requests wait out a timeout before the
database breaker opens, and how fast the refusals are once it has.

The backend runs as ``questcity backend`` in a process of its own, on a real PostgreSQL (a
throwaway cluster from ``tests.support``) reached through a :class:`FaultProxy`, with
``QUESTCITY_DB_TIMEOUT`` (the breaker's per-call timeout) at ``--db-timeout`` seconds. A player
registers and logs in; then ``POST /api/v1/quests`` is sent at a steady rate (open loop, in-flight
requests bounded by ``--concurrency``), first with the proxy healthy (the baseline), then with the
proxy blackholed: nothing passes, nothing is answered, as in a network partition.

The moment the breaker opened is read from the backend's own log (its ``breaker_transition``
line); "after the breaker opened" means sent after that moment.

    uv run python -m benchmarks.outage_latency [--rate 50] [--duration 10] [--db-timeout 2]

Targets: requests that waited for a timeout (latency ≥ the per-call timeout) ≤ the breaker's
failure threshold (3); p99 of the requests sent after the breaker opened ≤ 20 ms; every answer
during the outage a 503 with ``Retry-After``.

The request budget (``--part budget``): time to the 503 of an upload while S3 is blackholed and of
a read the blackholed database cannot answer (no last good copy), on a backend with the seed's
deadlines (database: breaker timeout 10 s, retry deadline 30 s; S3: 20 s and 60 s) and
``QUESTCITY_REQUEST_TIMEOUT`` at ``--budget`` seconds, against the same backend with the budget
off (the seed's deadlines alone: the behaviour on main) measured in the same run. Requests go out
at ``--budget-rate`` a second for ``--budget-duration`` seconds, healthy first, then blackholed.
Target: p100 of the time to the 503 ≤ the budget, every answer during the outage a 503 with
``Retry-After``.

    uv run python -m benchmarks.outage_latency --part budget [--budget 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import shutil
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx

from benchmarks._servers import (
    HOST,
    READY,
    LeanClient,
    ServerProcess,
    backend_argv,
    backend_env,
    load_average,
    new_port,
    py_spy,
    stop_on_sigterm,
)
from shared.resilience import DATABASE_CIRCUIT_BREAKER_CONFIG
from tests.support import FaultProxy, PostgresServer, S3Server

QUESTS = "/api/v1/quests"
FAILURE_THRESHOLD = DATABASE_CIRCUIT_BREAKER_CONFIG.failure_threshold
P99_TARGET = 0.020


@dataclass(frozen=True)
class Sample:
    scheduled: float
    """Wall-clock time the request was due (seconds since the epoch)."""
    sent: float
    """Wall-clock time it was handed to the client (later than due when the bound was reached)."""
    latency: float
    """Seconds from ``sent`` to the full answer (or to the client's error)."""
    status: int | None
    """None when the client gave up (timeout, connection error): see ``error``."""
    retry_after: str | None
    error: str
    """The body's ``error`` code, or the client exception's name."""


@dataclass(frozen=True)
class Phase:
    label: str
    samples: list[Sample]


async def fire(
    client: LeanClient, token: str, *, rate: float, seconds: float, concurrency: int
) -> list[Sample]:
    """``rate`` creates a second for ``seconds``, on schedule; at most ``concurrency`` in flight
    (a request due while the bound is reached goes out as soon as one returns)."""
    headers = {"Authorization": f"Bearer {token}"}
    bound = asyncio.Semaphore(concurrency)
    loop = asyncio.get_running_loop()
    samples: list[Sample] = []

    async def one(number: int, scheduled: float) -> None:
        async with bound:
            sent = time.time()
            started = loop.time()
            status: int | None = None
            retry_after: str | None = None
            try:
                answer = await client.request(
                    "POST",
                    QUESTS,
                    json_body={"title": f"bench {number}", "city": "Kazan", "points": 5},
                    headers=headers,
                )
            except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as error:
                code = type(error).__name__
            else:
                status = answer.status
                retry_after = answer.headers.get("retry-after")
                code = ""
                with contextlib.suppress(ValueError, AttributeError):
                    code = str(answer.json().get("error", ""))
            samples.append(
                Sample(scheduled, sent, loop.time() - started, status, retry_after, code)
            )

    count = round(rate * seconds)
    start_loop, start_wall = loop.time(), time.time()
    tasks: list[asyncio.Task[None]] = []
    for number in range(count):
        due = number / rate
        delay = start_loop + due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(number, start_wall + due)))
    await asyncio.gather(*tasks)
    samples.sort(key=lambda s: s.scheduled)
    return samples


async def player_token(client: LeanClient) -> str:
    credentials = {"username": f"bench-{uuid.uuid4().hex[:8]}", "password": "correct horse"}
    registered = await client.request("POST", "/api/v1/auth/register", json_body=credentials)
    if registered.status != 201:
        raise RuntimeError(f"register: {registered.status} {registered.body[:300]!r}")
    answer = await client.request("POST", "/api/v1/auth/token", json_body=credentials)
    if answer.status != 200:
        raise RuntimeError(f"token: {answer.status} {answer.body[:300]!r}")
    token: str = answer.json()["access_token"]
    return token


async def drive(
    port: int,
    proxy: FaultProxy,
    *,
    rate: float,
    seconds: float,
    concurrency: int,
    client_timeout: float,
    profile: contextlib.AbstractContextManager[None],
) -> tuple[list[Phase], float]:
    """The baseline and outage phases, and the wall-clock time the proxy was blackholed."""
    async with LeanClient(HOST, port, timeout=client_timeout) as client:
        token = await player_token(client)
        # Warm-up: the pool's connections, the client's connections, the first-request paths.
        await fire(client, token, rate=rate, seconds=2.0, concurrency=concurrency)
        healthy = await fire(client, token, rate=rate, seconds=seconds, concurrency=concurrency)
        await asyncio.to_thread(proxy.blackhole)
        blackholed_at = time.time()
        try:
            with profile:
                outage = await fire(
                    client, token, rate=rate, seconds=seconds, concurrency=concurrency
                )
        finally:
            await asyncio.to_thread(proxy.heal)
    return [Phase("proxy healthy (baseline)", healthy), Phase("proxy blackholed", outage)], (
        blackholed_at
    )


def breaker_opened_at(log_path: Path, after: float) -> float | None:
    """Wall-clock time of the database breaker's first opening after ``after``, from the log."""
    for line in log_path.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if (
            record.get("event") == "breaker_transition"
            and record.get("breaker") == "database"
            and record.get("to_state") == "open"
        ):
            at = datetime.fromisoformat(str(record["ts"]).replace("Z", "+00:00")).timestamp()
            if at >= after - 0.001:  # the log's stamps have millisecond resolution
                return at
    return None


def run(
    rate: float,
    seconds: float,
    db_timeout: float,
    concurrency: int,
    client_timeout: float,
    *,
    keep_log: Path | None = None,
    profile: Path | None = None,
) -> tuple[list[Phase], float, float | None]:
    with (
        tempfile.TemporaryDirectory(prefix="questcity-bench-") as tmp,
        PostgresServer() as postgres,
        FaultProxy(postgres.address, name="postgres") as proxy,
    ):
        workdir = Path(tmp)
        port = new_port()
        env = backend_env(
            workdir,
            database_url=postgres.url_for(address=proxy.address),
            db_timeout=db_timeout,
        )
        with ServerProcess(
            "backend", backend_argv(port), port=port, workdir=workdir, env=env
        ) as backend:
            backend.wait_until(READY)
            profiling = (
                py_spy(backend.server_pid(), profile)
                if profile is not None
                else contextlib.nullcontext()
            )
            phases, blackholed_at = asyncio.run(
                drive(
                    port,
                    proxy,
                    rate=rate,
                    seconds=seconds,
                    concurrency=concurrency,
                    client_timeout=client_timeout,
                    profile=profiling,
                )
            )
            opened_at = breaker_opened_at(backend.log_path, blackholed_at)
        if keep_log is not None:
            shutil.copyfile(backend.log_path, keep_log)
    return phases, blackholed_at, opened_at


def write_samples(path: Path, phases: list[Phase], blackholed_at: float) -> None:
    """One CSV line per request; times in seconds from the blackhole."""
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["phase", "scheduled", "sent", "latency", "status", "retry_after", "error"])
        for phase in phases:
            for s in phase.samples:
                writer.writerow(
                    [
                        phase.label,
                        f"{s.scheduled - blackholed_at:.4f}",
                        f"{s.sent - blackholed_at:.4f}",
                        f"{s.latency:.4f}",
                        s.status,
                        s.retry_after,
                        s.error,
                    ]
                )


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


def _quantile(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def _statuses(samples: list[Sample]) -> str:
    counts = Counter(
        f"{s.status} {s.error}".strip() if s.status is not None else f"client {s.error}"
        for s in samples
    )
    return ", ".join(f"{key} ×{n}" for key, n in counts.most_common())


def _row(label: str, samples: list[Sample]) -> str:
    if not samples:
        return f"| {label} | 0 | — | — | — | — |"
    latencies = [s.latency for s in samples]
    return (
        f"| {label} | {len(samples)} | {_ms(_quantile(latencies, 0.5))} | "
        f"{_ms(_quantile(latencies, 0.99))} | {_ms(max(latencies))} | {_statuses(samples)} |"
    )


def report(
    phases: list[Phase],
    blackholed_at: float,
    opened_at: float | None,
    db_timeout: float,
    rate: float,
    load: tuple[str, str],
) -> str:
    healthy, outage = phases[0].samples, phases[1].samples
    after_open = [s for s in outage if opened_at is not None and s.sent >= opened_at]
    before_open = [s for s in outage if opened_at is None or s.sent < opened_at]
    lines = [
        "| requests | n | p50 ms | p99 ms | max ms | statuses (error code) |",
        "|---|---:|---:|---:|---:|---|",
        _row(phases[0].label, healthy),
        _row(phases[1].label + ": all", outage),
        _row("… sent before the breaker opened", before_open),
        _row("… sent after the breaker opened", after_open),
    ]
    waited = [s for s in outage if s.latency >= db_timeout]
    overran = [s for s in waited if s.latency >= db_timeout + 1.0]
    waited_ok = len(waited) <= FAILURE_THRESHOLD
    wrong = [s for s in outage if s.status != 503 or not s.retry_after]
    delayed = [s for s in outage if s.sent - s.scheduled > 0.010]
    p99_after = _quantile([s.latency for s in after_open], 0.99) if after_open else None
    opened = (
        f"{opened_at - blackholed_at:.2f} s after the blackhole"
        if opened_at is not None
        else "never (no breaker_transition to open in the log)"
    )
    lines += [
        "",
        f"Rate {rate:g} writes/s; per-call timeout (QUESTCITY_DB_TIMEOUT) {db_timeout:g} s; "
        f"breaker opened {opened}. Load average before/after: {load[0]} / {load[1]}.",
        f"- Waited for a timeout (latency ≥ {db_timeout:g} s): {len(waited)} "
        f"(target ≤ {FAILURE_THRESHOLD}): {'met' if waited_ok else '**NOT met**'}; "
        f"of them {len(overran)} waited {db_timeout + 1:g} s or more.",
        "- p99 after the breaker opened: "
        + (
            f"{_ms(p99_after)} ms (target ≤ {_ms(P99_TARGET)} ms): "
            f"{'met' if p99_after <= P99_TARGET else '**NOT met**'}."
            if p99_after is not None
            else "no request was sent after it opened: **NOT met**."
        ),
        f"- Answers during the outage that were not 503 with Retry-After: {len(wrong)} "
        f"(target 0): {'met' if not wrong else '**NOT met**'}.",
        (
            f"- Requests that went out more than 10 ms after their due time (the client's loop "
            f"fell behind, or the in-flight bound was reached): {len(delayed)}; latency counts "
            "from when a request went out."
            if delayed
            else "- Every request went out within 10 ms of its due time."
        ),
    ]
    return "\n".join(lines)


# -- the request budget --------------------------------------------------------------------------

BUDGET_OFF = 3600.0
"""QUESTCITY_REQUEST_TIMEOUT for the baseline: longer than every seed deadline, so those rule."""
BUDGET_OFF_CLIENT_TIMEOUT = 120.0
"""The client waits this long in the budget part: the seed's deadlines reach 60 s."""
SEED_DB_TIMEOUT = 10.0
SEED_S3_TIMEOUT = 20.0
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@dataclass(frozen=True)
class BudgetRun:
    label: str
    budget: float
    phases: list[Phase]
    """Upload healthy, upload with S3 blackholed, read healthy, read with the database
    blackholed."""


Send = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]


async def fire_each(
    client: httpx.AsyncClient, send: Send, *, rate: float, seconds: float
) -> list[Sample]:
    """``send(client, n)`` ``rate`` times a second for ``seconds``, on schedule (open loop)."""
    loop = asyncio.get_running_loop()
    samples: list[Sample] = []

    async def one(number: int, scheduled: float) -> None:
        sent = time.time()
        started = loop.time()
        status: int | None = None
        retry_after: str | None = None
        try:
            answer = await send(client, number)
        except httpx.HTTPError as error:
            code = type(error).__name__
        else:
            status = answer.status_code
            retry_after = answer.headers.get("retry-after")
            code = ""
            with contextlib.suppress(ValueError, AttributeError):
                code = str(answer.json().get("error", ""))
        samples.append(Sample(scheduled, sent, loop.time() - started, status, retry_after, code))

    start_loop, start_wall = loop.time(), time.time()
    tasks: list[asyncio.Task[None]] = []
    for number in range(round(rate * seconds)):
        due = number / rate
        delay = start_loop + due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(number, start_wall + due)))
    await asyncio.gather(*tasks)
    samples.sort(key=lambda s: s.scheduled)
    return samples


async def drive_budget(
    base_url: str,
    s3_proxy: FaultProxy,
    pg_proxy: FaultProxy,
    *,
    rate: float,
    seconds: float,
    client_timeout: float,
) -> list[Phase]:
    async with httpx.AsyncClient(base_url=base_url, timeout=client_timeout) as client:
        credentials = {"username": f"bench-{uuid.uuid4().hex[:8]}", "password": "correct horse"}
        registered = await client.post("/api/v1/auth/register", json=credentials)
        registered.raise_for_status()
        token = (await client.post("/api/v1/auth/token", json=credentials)).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        created = await client.post(
            "/api/v1/quests", json={"title": "bench", "city": "Kazan", "points": 5}, headers=auth
        )
        created.raise_for_status()
        cover = f"/api/v1/quests/{created.json()['id']}/cover"
        run = uuid.uuid4().hex[:8]

        async def upload(c: httpx.AsyncClient, n: int) -> httpx.Response:
            return await c.put(cover, content=PNG, headers=auth)

        async def read(c: httpx.AsyncClient, n: int) -> httpx.Response:
            # A quest nobody read before: no last good copy to serve while the database is down.
            return await c.get(f"/api/v1/quests/never-read-{run}-{n}")

        phases = []
        for label, send, proxy in (
            ("upload", upload, s3_proxy),
            ("read, no last good copy", read, pg_proxy),
        ):
            healthy = await fire_each(client, send, rate=rate, seconds=seconds)
            await asyncio.to_thread(proxy.blackhole)
            try:
                outage = await fire_each(client, send, rate=rate, seconds=seconds)
            finally:
                await asyncio.to_thread(proxy.heal)
            phases += [Phase(f"{label}, healthy", healthy), Phase(f"{label}, blackholed", outage)]
        return phases


def run_budget(
    budget: float, rate: float, seconds: float, client_timeout: float
) -> list[BudgetRun]:
    """The budget on, then off, each on a backend of its own over the same servers."""
    runs: list[BudgetRun] = []
    with (
        tempfile.TemporaryDirectory(prefix="questcity-bench-") as tmp,
        PostgresServer() as postgres,
        S3Server() as s3,
        FaultProxy(postgres.address, name="postgres") as pg_proxy,
        FaultProxy(s3.address, name="s3") as s3_proxy,
    ):
        for label, request_timeout in (
            (f"budget {budget:g} s", budget),
            ("budget off (seed deadlines, as on main)", BUDGET_OFF),
        ):
            workdir = Path(tmp) / f"run-{len(runs)}"
            workdir.mkdir()
            database = f"bench_{uuid.uuid4().hex[:12]}"
            postgres.create_database(database)
            port = new_port()
            env = backend_env(
                workdir,
                database_url=postgres.url_for(database=database, address=pg_proxy.address),
                s3_endpoint_url=s3_proxy.url(),
                s3_bucket=f"bench-{uuid.uuid4().hex[:12]}",
                s3_access_key=s3.access_key,
                s3_secret_key=s3.secret_key,
                db_timeout=SEED_DB_TIMEOUT,
                s3_timeout=SEED_S3_TIMEOUT,
                request_timeout=request_timeout,
            )
            with ServerProcess(
                "backend", backend_argv(port), port=port, workdir=workdir, env=env
            ) as backend:
                backend.wait_until(READY)
                phases = asyncio.run(
                    drive_budget(
                        backend.base_url,
                        s3_proxy,
                        pg_proxy,
                        rate=rate,
                        seconds=seconds,
                        client_timeout=client_timeout,
                    )
                )
            runs.append(BudgetRun(label, request_timeout, phases))
    return runs


def budget_report(runs: list[BudgetRun], budget: float, load: tuple[str, str]) -> str:
    lines = [
        "| backend | requests | n | p50 ms | p99 ms | p100 ms | statuses (error code) |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for run in runs:
        lines += [_row(f"{run.label} | {phase.label}", phase.samples) for phase in run.phases]
    lines += [
        "",
        f"QUESTCITY_REQUEST_TIMEOUT {budget:g} s against the seed's deadlines alone (database: "
        f"breaker {SEED_DB_TIMEOUT:g} s, retry 30 s; S3: breaker {SEED_S3_TIMEOUT:g} s, retry "
        f"60 s). Load average before/after: {load[0]} / {load[1]}.",
    ]
    budgeted = runs[0]
    for phase in budgeted.phases:
        if not phase.label.endswith("blackholed"):
            continue
        p100 = max(s.latency for s in phase.samples)
        wrong = [s for s in phase.samples if s.status != 503 or not s.retry_after]
        baseline = next(p for p in runs[1].phases if p.label == phase.label)
        old = max(s.latency for s in baseline.samples)
        lines.append(
            f"- {phase.label}: time to the 503, p100 {_ms(p100)} ms (target ≤ {_ms(budget)} ms): "
            f"{'met' if p100 <= budget else '**NOT met**'}; budget off: {_ms(old)} ms. "
            f"Answers not 503 with Retry-After: {len(wrong)} (target 0): "
            f"{'met' if not wrong else '**NOT met**'}."
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=50.0, help="writes per second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--db-timeout", type=float, default=2.0, help="QUESTCITY_DB_TIMEOUT")
    parser.add_argument("--concurrency", type=int, default=256, help="requests in flight, at most")
    parser.add_argument(
        "--client-timeout", type=float, default=30.0, help="seconds before the client gives up"
    )
    parser.add_argument("--samples", type=Path, help="write every request as a CSV line here")
    parser.add_argument("--keep-log", type=Path, help="copy the backend's log here")
    parser.add_argument(
        "--profile", type=Path, help="py-spy the backend during the outage; collapsed stacks here"
    )
    parser.add_argument(
        "--part",
        choices=("breaker", "budget", "all"),
        default="all",
        help="the breaker under a write outage, the request budget, or both",
    )
    parser.add_argument("--budget", type=float, default=10.0, help="QUESTCITY_REQUEST_TIMEOUT")
    parser.add_argument("--budget-rate", type=float, default=2.0, help="requests per second")
    parser.add_argument(
        "--budget-duration", type=float, default=10.0, help="seconds per budget phase"
    )
    args = parser.parse_args()
    if args.part in ("breaker", "all"):
        breaker_part(args)
    if args.part in ("budget", "all"):
        load_before = load_average()
        with stop_on_sigterm():
            runs = run_budget(
                args.budget,
                args.budget_rate,
                args.budget_duration,
                max(args.client_timeout, BUDGET_OFF_CLIENT_TIMEOUT),
            )
        print(budget_report(runs, args.budget, (load_before, load_average())))


def breaker_part(args: argparse.Namespace) -> None:
    load_before = load_average()
    with stop_on_sigterm():
        phases, blackholed_at, opened_at = run(
            args.rate,
            args.duration,
            args.db_timeout,
            args.concurrency,
            args.client_timeout,
            keep_log=args.keep_log,
            profile=args.profile,
        )
    if args.samples is not None:
        write_samples(args.samples, phases, blackholed_at)
    load = (load_before, load_average())
    print(report(phases, blackholed_at, opened_at, args.db_timeout, args.rate, load))


if __name__ == "__main__":
    main()
