"""Soak: a healthy stack for N minutes must page nobody and open no incident (issue #14).

    uv run python -m benchmarks.signals_soak [--minutes 30] [--seed 14] [--json FILE]

The stack of ``tests.support.signals_stack``: two backend replicas (``questcity backend``), a
real PostgreSQL and a real S3 (SeaweedFS) each behind a fault proxy, one ``questcity monitor``
with ``up``'s ``monitor.toml`` as shipped (interval 2 s, ``[incidents] open_after = 2``, the
default alert rules: hold-down 30 s) plus an Apprise notifier whose URLs point at a local HTTP
receiver (``json://``) and a local SMTP server (``mailto://``), and the status page.

While it runs:
- latency jitter on the database's and S3's proxies, re-drawn every ``--jitter-every`` seconds
  for each: no delay 20 % of the time, else a per-chunk delay drawn from a log-normal with a
  median of 2 ms (about 13 ms at p99: a database in the same region), and 2 % of draws a spike of
  50–250 ms (a slow disk, a GC pause). A chunk is delayed each way, so a query of a few round
  trips sees a few times that; the database's ``slow_after`` is 1 s, S3's 2 s.
- at half-time replica 2 is restarted (SIGTERM, started again, waited for until ready), as a
  deploy restarts a replica.

Reported: notifications received (target 0), incidents opened (target 0), every alert stored
whatever its state (target 0), and the near misses: checks that were not healthy, per component
and per replica, with the longest run of them against ``open_after``; the probes' latency against
their timeout; the monitor's warnings by event (``check_missed``…).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from benchmarks._servers import load_average, stop_on_sigterm
from tests.support import FaultProxy, PostgresServer, S3Server
from tests.support.receivers import JsonReceiver, SmtpReceiver
from tests.support.signals_stack import Settings, SignalsStack, signals_stack

INTERVAL = 2.0
"""``questcity up``'s health interval (``LocalStack.health_interval``)."""
OPEN_AFTER = 2
"""``questcity up``'s ``[incidents] open_after``."""


def draw_latency(rng: random.Random) -> float:
    """Seconds per chunk, or 0 for none (see the module's docstring)."""
    roll = rng.random()
    if roll < 0.20:
        return 0.0
    if roll < 0.22:
        return rng.uniform(0.050, 0.250)
    return min(0.250, rng.lognormvariate(-6.2, 0.8))  # e^-6.2 s = 2 ms


async def jitter(
    proxies: Iterable[FaultProxy], rng: random.Random, every: float, applied: list[float]
) -> None:
    while True:
        for proxy in proxies:
            latency = draw_latency(rng)
            applied.append(latency)
            if latency > 0:
                await asyncio.to_thread(proxy.slow, latency)
            else:
                await asyncio.to_thread(proxy.heal)
        await asyncio.sleep(every)


def longest_run(flags: Iterable[bool]) -> int:
    best = run = 0
    for flag in flags:
        run = run + 1 if flag else 0
        best = max(best, run)
    return best


def read_store(path: Path) -> dict[str, Any]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        found: dict[str, Any] = {}
        checks = db.execute("select status, latency_ms from checks order by at").fetchall()
        found["checks"] = dict(Counter(status for status, _ in checks))
        found["target_longest_not_healthy"] = longest_run(s != "healthy" for s, _ in checks)
        latencies = sorted(ms for _, ms in checks if ms is not None)
        if latencies:
            found["probe_ms"] = {
                "p50": round(statistics.median(latencies), 1),
                "p99": round(latencies[int(0.99 * (len(latencies) - 1))], 1),
                "max": round(latencies[-1], 1),
            }
        services: dict[str, Any] = {}
        for (service,) in db.execute("select distinct service from service_checks"):
            rows = db.execute(
                "select status, consecutive_failures, details, at from service_checks "
                "where service = ? order by at",
                (service,),
            ).fetchall()
            services[service] = {
                "by_status": dict(Counter(r[0] for r in rows)),
                "longest_not_healthy": longest_run(r[0] != "healthy" for r in rows),
                "max_consecutive_failures": max((r[1] or 0 for r in rows), default=0),
                "reasons": dict(Counter(_reason(r[2]) for r in rows if r[0] != "healthy")),
                "not_healthy_at": [round(r[3], 1) for r in rows if r[0] != "healthy"][:50],
            }
        found["services"] = services
        replicas: dict[str, Any] = {}
        for (replica,) in db.execute("select distinct replica from replica_checks"):
            rows = db.execute(
                "select status, error from replica_checks where replica = ? order by at",
                (replica,),
            ).fetchall()
            replicas[replica] = {
                "by_status": dict(Counter(s for s, _ in rows)),
                "longest_not_healthy": longest_run(s != "healthy" for s, _ in rows),
                "errors": dict(Counter(e for _, e in rows if e)),
            }
        found["replicas"] = replicas
        found["alerts"] = [
            dict(zip(("rule", "service", "state", "summary"), row, strict=True))
            for row in db.execute("select rule, service, state, summary from alerts")
        ]
        found["incidents"] = [
            dict(zip(("service", "state", "title", "opened_at"), row, strict=True))
            for row in db.execute("select service, state, title, opened_at from incidents")
        ]
        return found
    finally:
        db.close()


def _reason(details: str | None) -> str:
    """Why the backend called a service not healthy (its ``reason``, and its last error)."""
    try:
        found = json.loads(details or "{}")
    except ValueError:
        return "?"
    if not isinstance(found, dict):
        return "?"
    reason, error = found.get("reason"), found.get("last_error")
    return f"{reason} ({error})" if error else str(reason)


def monitor_warnings(log: str) -> dict[str, int]:
    events: Counter[str] = Counter()
    for line in log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("level") in ("WARNING", "ERROR", "CRITICAL"):
            events[str(entry.get("event") or entry.get("logger"))] += 1
    return dict(events)


async def soak(args: argparse.Namespace, postgres: PostgresServer, s3: S3Server) -> dict[str, Any]:
    rng = random.Random(args.seed)
    applied: list[float] = []
    with tempfile.TemporaryDirectory(prefix="signals-soak-") as directory:
        async with JsonReceiver() as hook, SmtpReceiver() as mail:
            settings = Settings(interval=INTERVAL, replicas=2)
            async with signals_stack(
                Path(directory),
                postgres,
                s3,
                settings=settings,
                apprise_urls=[hook.url(), mail.url()],
            ) as stack:
                started = time.time()
                print(
                    f"soaking {args.minutes:g} min from {time.strftime('%H:%M:%S')} UTC", flush=True
                )
                task = asyncio.create_task(
                    jitter((stack.db, stack.s3), rng, args.jitter_every, applied)
                )
                restart: dict[str, float] = {}
                try:
                    await watch(stack, args.minutes * 30.0)
                    restart["at"] = time.time() - started
                    restart["away_s"] = round(await stack.restart_replica(1), 2)
                    print(f"replica 2 restarted, away {restart['away_s']} s", flush=True)
                    await watch(stack, args.minutes * 30.0)
                finally:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                    stack.heal_all()
                found = read_store(Path(stack.store_url.removeprefix("sqlite:///")))
                log = stack.log("monitor")
                return {
                    "started_at": round(started, 1),
                    "minutes": args.minutes,
                    "seed": args.seed,
                    "interval": INTERVAL,
                    "open_after": OPEN_AFTER,
                    "load_average_end": load_average(),
                    "restart": restart,
                    "jitter_draws": len(applied),
                    "jitter_ms": {
                        "zero": sum(1 for a in applied if a == 0),
                        "median": round(1000 * statistics.median(applied), 2),
                        "max": round(1000 * max(applied), 1),
                        "spikes_over_50": sum(1 for a in applied if a >= 0.05),
                    },
                    "notifications_json": [a.title for a in hook.arrivals],
                    "notifications_mail": [a.title for a in mail.arrivals],
                    "monitor_warnings": monitor_warnings(log),
                    **found,
                }


async def watch(stack: SignalsStack, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    next_note = time.monotonic() + 300
    while time.monotonic() < deadline:
        stack.check_alive()
        await asyncio.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
        if time.monotonic() >= next_note:
            print(f"  {time.strftime('%H:%M:%S')} still soaking; load {load_average()}", flush=True)
            next_note += 300


def report(result: dict[str, Any]) -> None:
    notices = len(result["notifications_json"]) + len(result["notifications_mail"])
    print(json.dumps(result, indent=2, default=str))
    print(
        f"\nnotifications: {notices} (target 0) — incidents: {len(result['incidents'])} "
        f"(target 0) — alerts stored: {len(result['alerts'])} (target 0)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--jitter-every", type=float, default=2.0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", DeprecationWarning)  # aiosmtpd's own login_data notice
    with stop_on_sigterm(), PostgresServer() as postgres, S3Server() as s3:
        result = asyncio.run(soak(args, postgres, s3))
    report(result)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    quiet = not (result["notifications_json"] or result["incidents"] or result["alerts"])
    return 0 if quiet else 1


if __name__ == "__main__":
    sys.exit(main())
