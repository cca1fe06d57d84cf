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
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

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
from tests.support import FaultProxy, PostgresServer

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
    args = parser.parse_args()
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
