"""Takeover time of the monitor's leadership: how long after the leader dies (kill -9) the standby's
first check is stored; baseline in the same run, a clean stop (SIGTERM: the leader releases the
lease on its way out).

    uv run python -m benchmarks.monitor_takeover [--runs 10] [--interval 2] [--seed 13]

Two ``python -m questcity monitor`` processes share one real PostgreSQL store (a throwaway
cluster from ``tests.support``, as the other benchmarks start theirs) and watch one target, a
small HTTP server in this process answering the health summary, every ``--interval`` seconds,
with the lease's ttl as shipped (0.6 × the interval). Each run: the leader stores a check, the
benchmark waits a random part of an interval (the kill lands anywhere between two checks), stops
the leader (SIGKILL, or SIGTERM for the baseline), and polls the store's ``checks`` table every
20 ms. The takeover time is from the signal to the time of the first check stored after it (its
``at``, when the new leader's probe started); the gap is between the last check before the signal
and that one. Then a new standby is started for the next run (monitors ``m1``, ``m2``, …).

Target (issue 13): takeover after kill -9 ≤ 2 intervals, median and max over 10 runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from benchmarks._servers import load_average, stop_on_sigterm
from monitor.config import load_config
from monitor.leadership import lease_ttl
from monitor.store import open_engine
from tests.support import PostgresServer
from tests.support.process import ManagedProcess, log_tail

POLL = 0.02
SUMMARY = json.dumps(
    {"status": "healthy", "timestamp": 1.0, "services": {}, "message": ""}
).encode()


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(SUMMARY)))
        self.end_headers()
        self.wfile.write(SUMMARY)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def health_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class Run:
    how: str
    takeover: float
    """Seconds from the signal to the new leader's first check."""
    gap: float
    """Seconds between the last check before the signal and the first after it."""


class Bench:
    def __init__(self, workdir: Path, store_url: str, target: str, interval: float) -> None:
        self.workdir = workdir
        self.store_url = store_url
        self.interval = interval
        self.config = workdir / "monitor.toml"
        self.config.write_text(
            f'[storage]\nurl = "{store_url}"\n\n[[targets]]\nname = "api"\nurl = "{target}"\n'
            f"interval = {interval}\ntimeout = {min(1.0, interval / 2)}\n"
        )
        self.engine = open_engine(store_url)
        self.started = 0
        self.monitors: list[ManagedProcess] = []

    def start_monitor(self) -> ManagedProcess:
        self.started += 1
        name = f"m{self.started}"
        process = ManagedProcess(
            [sys.executable, "-m", "questcity", "monitor", "--config", str(self.config)],
            log_path=self.workdir / f"{name}.log",
            env={**os.environ, "QUESTCITY_MONITOR_ID": name},
            cwd=self.workdir,
        )
        process.start()
        self.monitors.append(process)
        return process

    async def checks(self) -> list[float]:
        from sqlalchemy import text

        try:
            async with self.engine.connect() as connection:
                result = await connection.execute(text("SELECT at FROM checks ORDER BY at"))
                return [float(at) for at in result.scalars()]
        except Exception:  # no tables yet: the first monitor is making them
            return []

    async def holder(self) -> str | None:
        from sqlalchemy import text

        try:
            async with self.engine.connect() as connection:
                row = (await connection.execute(text("SELECT holder FROM monitor_lease"))).first()
        except Exception:
            return None
        return None if row is None else str(row[0])

    async def until(
        self, what: str, check: Callable[[], Awaitable[bool]], within: float = 60.0
    ) -> None:
        deadline = time.monotonic() + within
        while not await check():
            if time.monotonic() > deadline:
                tails = "\n".join(log_tail(p.log_path, 5) for p in self.monitors[-2:])
                raise SystemExit(f"not within {within:g} s: {what}\n{tails}")
            await asyncio.sleep(POLL)

    async def standby_ready(self, name: str) -> None:
        """Until monitor ``name`` has logged that it stands by."""
        log = self.workdir / f"{name}.log"

        async def standing_by() -> bool:
            with contextlib.suppress(OSError):
                return '"role": "standby"' in log.read_text(errors="replace")
            return False

        await self.until(f"{name} to stand by", standing_by)

    async def one_run(self, how: str, leader: ManagedProcess, rng: random.Random) -> Run:
        # A fresh check by the leader, then a random part of an interval.
        seen = len(await self.checks())

        async def fresh() -> bool:
            return len(await self.checks()) > seen

        await self.until("a check by the leader", fresh)
        await asyncio.sleep(rng.uniform(0, self.interval))
        before = await self.checks()
        signalled = time.time()
        if how == "kill -9":
            leader.kill()
        else:
            leader.send_signal(signal.SIGTERM)

        async def taken_over() -> bool:
            return any(at > signalled for at in await self.checks())

        await self.until("the new leader's first check", taken_over, within=10 * self.interval)
        first = min(at for at in await self.checks() if at > signalled)
        if how != "kill -9":
            leader.stop(signal.SIGTERM, timeout=30)
        last = max((at for at in before if at <= signalled), default=first)
        return Run(how, first - signalled, first - last)

    async def runs(self, how: str, count: int, rng: random.Random) -> list[Run]:
        results = []
        for _ in range(count):
            leader = self.monitors[-2]  # (the last one started stands by)
            results.append(await self.one_run(how, leader, rng))
            self.start_monitor()
            await self.standby_ready(f"m{self.started}")
        return results

    async def close(self) -> None:
        for process in self.monitors:
            process.stop(signal.SIGTERM, timeout=30)
        await self.engine.dispose()


def summary(runs: list[Run], interval: float) -> str:
    takeovers = [r.takeover for r in runs]
    gaps = [r.gap for r in runs]
    median, most = statistics.median(takeovers), max(takeovers)
    return (
        f"{runs[0].how:>9}: takeover median {median:.2f} s ({median / interval:.2f} intervals), "
        f"max {most:.2f} s ({most / interval:.2f} intervals); history gap median "
        f"{statistics.median(gaps):.2f} s, max {max(gaps):.2f} s "
        f"({max(gaps) / interval:.2f} intervals) over {len(runs)} runs"
    )


async def bench(runs: int, interval: float, seed: int) -> None:
    rng = random.Random(seed)
    with (
        tempfile.TemporaryDirectory(prefix="questcity-bench-") as tmp,
        PostgresServer() as postgres,
        health_server() as target,
    ):
        database = f"takeover_{uuid.uuid4().hex[:8]}"
        postgres.create_database(database)
        url = postgres.url_for(database=database).replace("postgresql+asyncpg://", "postgresql://")
        bench = Bench(Path(tmp), url, target, interval)
        try:
            bench.start_monitor()

            async def leads() -> bool:
                return await bench.holder() == "m1"

            await bench.until("m1 to lead", leads)
            bench.start_monitor()
            await bench.standby_ready("m2")
            ttl = lease_ttl(load_config(bench.config))
            print(
                f"interval {interval:g} s, lease ttl {ttl:g} s (standby poll {ttl / 4:g} s, "
                f"renewal {ttl / 3:.2f} s); load {load_average()}",
                flush=True,
            )
            for how in ("SIGTERM", "kill -9"):
                results = await bench.runs(how, runs, rng)
                for n, run in enumerate(results, start=1):
                    print(
                        f"  {how} run {n}: takeover {run.takeover:.2f} s, gap {run.gap:.2f} s",
                        flush=True,
                    )
                print(summary(results, interval), flush=True)
        finally:
            await bench.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    with stop_on_sigterm():
        asyncio.run(bench(args.runs, args.interval, args.seed))


if __name__ == "__main__":
    main()
