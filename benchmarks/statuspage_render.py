"""Status page: render time with a cold cache, and requests/s when cached, each against a bare
Starlette app serving the same bytes, measured in the same run.

    uv run python -m benchmarks.statuspage_render [--rounds 21] [--wrk-rounds 5] [--duration 5]

The store: 10 targets with 4 services each (50 components; ``--targets`` changes the 10), 90 days
of daily and 48 hours of hourly roll-ups written straight into the roll-up table (as the daemon's
``HistoryWriter`` would have left them), a few raw checks per target (current status and
"since"), and a handful of incidents.

1. Render, in process through the ASGI app (no network, no HTTP client): ``/`` and
   ``/api/v2/summary.json`` with the cache cleared before every request (a cold cache: the store's
   change token, the board, for ``/`` the 90-day history, then the template), the same when
   cached, and a bare Starlette app answering a static ``Response`` of the same bytes. Interleaved
   rounds in shuffled order; each figure is the p50 of every call timed alone. Then
   where the cold time goes: each step timed on its own, the same way.
2. Throughput: the status page and the bare app under uvicorn (same options, one process each,
   pinned to CPU 1 with ``taskset``), loaded by ``wrk`` pinned to CPU 0, for ``/`` and
   ``summary.json`` from the cache; interleaved rounds, median requests/s. Needs ``wrk`` and
   ``taskset`` (Debian: ``apt-get install wrk``; ``taskset`` is in util-linux).

    python -m benchmarks.statuspage_render serve statuspage --store URL --port N   # by hand
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from benchmarks._history import synthetic_rollup
from monitor.store import (
    CheckRecord,
    Component,
    IncidentEvent,
    ServiceSample,
    Status,
    create_schema,
    open_engine,
)
from monitor.store.schema import rollups
from monitor.store.writer import HistoryWriter

NOW = 1_747_224_000.0  # 2025-05-14 12:00 UTC: fixed, so every run renders the same page
DAY = 86_400
HOUR = 3_600
TARGETS = 10
SERVICES = ("database", "s3", "cache", "search")
TARGET_MS = 20.0
TARGET_RATIO = 0.8
HOST = "127.0.0.1"

Call = Callable[[], Awaitable[None]]


# -- the store ------------------------------------------------------------------------------------


def catalogue(targets: int = TARGETS) -> list[Component]:
    components: list[Component] = []
    for t in range(targets):
        target = f"api-{t}"
        components.append(Component(target, "", f"Region {t} API", f"Region {t}", len(components)))
        for service in SERVICES:
            name = f"Region {t} {service}"
            components.append(Component(target, service, name, f"Region {t}", len(components)))
    return components


async def build_store(url: str, targets: int = TARGETS) -> None:
    engine = open_engine(url)
    await create_schema(engine)
    writer = HistoryWriter(engine)
    components = catalogue(targets)
    await writer.sync_components(components)
    today = int(NOW // DAY) * DAY
    hour = int(NOW // HOUR) * HOUR
    rows = [
        synthetic_rollup(c.target, c.service, "day", today - d * DAY, n * 1000 + d)
        for n, c in enumerate(components)
        for d in range(90)
    ]
    rows += [
        synthetic_rollup(c.target, c.service, "hour", hour - h * HOUR, n * 1000 + h)
        for n, c in enumerate(components)
        for h in range(48)
    ]
    async with engine.begin() as connection:
        await connection.execute(insert(rollups), rows)
    await writer.compact_day_strips(NOW)  # as the daemon's hourly job leaves them
    for t in range(targets):
        for k in range(3):
            at = NOW - 90 + 30 * k
            samples = tuple(ServiceSample(s, Status.HEALTHY, 3.0) for s in SERVICES)
            status = Status.DEGRADED if t == 3 else Status.HEALTHY
            await writer.record_check(CheckRecord(f"api-{t}", at, status, 40.0, 200, None, samples))
    for n in range(min(targets, 4)):
        opened = NOW - (n * 3 + 1) * DAY
        incident = await writer.open_incident(
            f"api-{n}", "database", Status.UNHEALTHY, opened, "db"
        )
        await writer.add_note(incident, "Looking into it.", public=True, actor="x", at=opened + 60)
        await writer.add_event(
            incident,
            IncidentEvent(opened + 600, "state_change", Status.HEALTHY, "recovered", True),
        )
        if n:
            await writer.resolve_incident(incident, opened + 1200, "fine")
    await engine.dispose()


def _start(row: Any) -> int:
    start: int = row[2]
    return start


# -- in-process render ----------------------------------------------------------------------------


async def asgi_get(app: Any, path: str) -> tuple[int, bytes]:
    """One GET through an ASGI app, with nothing in between."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench")],
        "client": (HOST, 50000),
        "server": (HOST, 80),
        "state": {},
    }
    status = 0
    body = bytearray()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))

    await app(scope, receive, send)
    return status, bytes(body)


def bare_app(bodies: dict[str, tuple[bytes, str]]) -> Any:
    """A Starlette app answering each path with a static ``Response`` of the given bytes."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    def route(path: str, body: bytes, media_type: str) -> Route:
        async def static(request: Request) -> Response:
            return Response(body, media_type=media_type)

        return Route(path, static, methods=["GET"])

    return Starlette(routes=[route(p, b, m) for p, (b, m) in bodies.items()])


async def measure(call: Call, repeat: int) -> list[float]:
    """Milliseconds of each of ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    return times


async def interleaved(candidates: dict[str, tuple[Call, int]], rounds: int) -> dict[str, float]:
    """The p50 of every call over ``rounds`` rounds; order shuffled every round."""
    samples: dict[str, list[float]] = {label: [] for label in candidates}
    order = list(candidates)
    shuffle = random.Random(1)
    for label in order:  # warm-up: imports, template compilation, connection pool
        await measure(candidates[label][0], 2)
    for _ in range(rounds):
        shuffle.shuffle(order)
        for label in order:
            call, repeat = candidates[label]
            samples[label].extend(await measure(call, repeat))
    return {label: statistics.median(values) for label, values in samples.items()}


async def render(
    url: str, rounds: int
) -> tuple[dict[str, float], dict[str, float], dict[str, Any]]:
    from statuspage.app import create_app
    from statuspage.model import opaque_id, slugify

    app = create_app(url, clock=lambda: NOW, public_url="http://bench")
    async with app.router.lifespan_context(app):
        page = app.state.statuspage
        cache = page.cache
        status, index_body = await asgi_get(app, "/")
        status_json, summary_body = await asgi_get(app, "/api/v2/summary.json")
        assert status == status_json == 200, (status, status_json)
        bare = bare_app(
            {
                "/": (index_body, "text/html; charset=utf-8"),
                "/api/v2/summary.json": (summary_body, "application/json"),
            }
        )

        def cold(path: str) -> Call:
            async def call() -> None:
                cache.clear()
                await asgi_get(app, path)

            return call

        def first(path: str) -> Call:
            """Cold as after a restart: the page cache and every memo of pure functions
            (decoded day strips, bar segments, ids, day names) empty."""

            async def call() -> None:
                cache.clear()
                cache._source.reader.clear_memos()
                page.renderer.clear_memos()
                opaque_id.cache_clear()
                slugify.cache_clear()
                await asgi_get(app, path)

            return call

        def warm(target: Any, path: str) -> Call:
            async def call() -> None:
                await asgi_get(target, path)

            return call

        requests = await interleaved(
            {
                "`/`, cold cache": (cold("/"), 3),
                "`/`, cold cache and memos (as after a restart)": (first("/"), 3),
                "`summary.json`, cold cache": (cold("/api/v2/summary.json"), 3),
                "`/`, cached": (warm(app, "/"), 200),
                "`summary.json`, cached": (warm(app, "/api/v2/summary.json"), 200),
                "bare static `Response`, same bytes as `/`": (warm(bare, "/"), 200),
            },
            rounds,
        )
        steps = await where_the_time_goes(page, cache, rounds)
    sizes = {
        "/": len(index_body),
        "/ gzip": len(gzip.compress(index_body, compresslevel=6, mtime=0)),
        "summary.json": len(summary_body),
    }
    return requests, steps, {"bodies": (index_body, summary_body), "sizes": sizes}


async def where_the_time_goes(page: Any, cache: Any, rounds: int) -> dict[str, float]:
    from statuspage import api

    source = cache._source
    board = await source.board(NOW)
    history = await source.history(board)
    reader = source.reader
    first = board.components[1]

    async def token() -> None:
        await source.change_token()

    async def load_board() -> None:
        await source.board(NOW)

    async def load_history() -> None:
        await source.history(board)

    async def one_bars() -> None:
        await reader.bars(first.target, first.service, now=NOW)

    async def states() -> None:
        await reader.states()

    async def template() -> None:
        page.renderer.index(board, history)

    async def summary() -> None:
        api.encode(api.summary_json(board))

    return await interleaved(
        {
            "change token (1 query)": (token, 20),
            "board: catalogue, component states, incidents (3 reads at once)": (load_board, 5),
            "one `HistoryReader.states()` call (every component's status and since)": (
                states,
                20,
            ),
            "history: `series_many` + `latency_series_many` (at once)": (load_history, 5),
            "one `HistoryReader.bars()` call": (one_bars, 20),
            f"template `/` (Jinja2, {len(board.components)} × 90 segments)": (template, 5),
            "`summary.json` build + encode": (summary, 20),
        },
        rounds,
    )


# -- throughput under wrk -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def server(argv: list[str], port: int) -> Iterator[None]:
    command = ["taskset", "-c", "1", sys.executable, "-m", "benchmarks.statuspage_render", *argv]
    process = subprocess.Popen(
        [*command, "--port", str(port)], start_new_session=True, stdout=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection((HOST, port), 0.2):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server {argv} did not start")
            time.sleep(0.05)  # noqa: TID251 - a benchmark's own process, waiting for a server
        yield
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wrk(port: int, path: str, duration: float, connections: int) -> float:
    out = subprocess.run(
        [
            "taskset",
            "-c",
            "0",
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{round(duration)}s",
            f"http://{HOST}:{port}{path}",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if found is None or "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk failed:\n{out}")
    return float(found.group(1))


def throughput(
    url: str, bodies: tuple[bytes, bytes], rounds: int, duration: float, connections: int
) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as scratch:
        index_file, summary_file = Path(scratch, "index.html"), Path(scratch, "summary.json")
        index_file.write_bytes(bodies[0])
        summary_file.write_bytes(bodies[1])
        page_port, bare_port = free_port(), free_port()
        with (
            server(["serve", "statuspage", "--store", url], page_port),
            server(
                ["serve", "bare", "--index", str(index_file), "--summary", str(summary_file)],
                bare_port,
            ),
        ):
            candidates = {
                "status page `/` (cached)": (page_port, "/"),
                "bare static `Response`, same bytes as `/`": (bare_port, "/"),
                "status page `summary.json` (cached)": (page_port, "/api/v2/summary.json"),
                "bare static `Response`, same bytes as `summary.json`": (
                    bare_port,
                    "/api/v2/summary.json",
                ),
            }
            for port, path in candidates.values():  # warm-up, and the page's cache filled
                wrk(port, path, 1, connections)
            samples: dict[str, list[float]] = {label: [] for label in candidates}
            order = list(candidates)
            shuffle = random.Random(2)
            for _ in range(rounds):
                shuffle.shuffle(order)
                for label in order:
                    port, path = candidates[label]
                    samples[label].append(wrk(port, path, duration, connections))
    return {label: statistics.median(values) for label, values in samples.items()}


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    if args.app == "statuspage":
        from statuspage.app import create_app

        app: Any = create_app(args.store, clock=lambda: NOW, public_url="http://bench")
    else:
        app = bare_app(
            {
                "/": (Path(args.index).read_bytes(), "text/html; charset=utf-8"),
                "/api/v2/summary.json": (Path(args.summary).read_bytes(), "application/json"),
            }
        )
    uvicorn.run(app, host=HOST, port=args.port, log_config=None, access_log=False, lifespan="auto")


# -- report ---------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report(
    requests: dict[str, float],
    steps: dict[str, float],
    sizes: dict[str, int],
    rates: dict[str, float] | None,
) -> str:
    lines = ["| request (in process, ASGI) | ms (median) |", "|---|---:|"]
    lines += [f"| {label} | {value:.3f} |" for label, value in requests.items()]
    lines += ["", "| step of a cold `/` | ms (median) |", "|---|---:|"]
    lines += [f"| {label} | {value:.3f} |" for label, value in steps.items()]
    cold_index = requests["`/`, cold cache"]
    cold_summary = requests["`summary.json`, cold cache"]
    restart_index = requests["`/`, cold cache and memos (as after a restart)"]
    lines += [
        "",
        f"Bodies: `/` {sizes['/']:,} bytes ({sizes['/ gzip']:,} gzipped), "
        f"`summary.json` {sizes['summary.json']:,} bytes.",
        f"Cold render p50: `/` {cold_index:.1f} ms, `summary.json` {cold_summary:.1f} ms "
        f"(target <= {TARGET_MS:.0f} ms: `/` {verdict(cold_index <= TARGET_MS)}, "
        f"`summary.json` {verdict(cold_summary <= TARGET_MS)}); `/` as after a restart "
        f"{restart_index:.1f} ms ({verdict(restart_index <= TARGET_MS)}).",
    ]
    if rates:
        lines += ["", "| server (uvicorn, 1 process, CPU 1; wrk on CPU 0) | requests/s (median) |"]
        lines += ["|---|---:|"]
        lines += [f"| {label} | {value:,.0f} |" for label, value in rates.items()]
        index_ratio = (
            rates["status page `/` (cached)"] / rates["bare static `Response`, same bytes as `/`"]
        )
        summary_ratio = (
            rates["status page `summary.json` (cached)"]
            / rates["bare static `Response`, same bytes as `summary.json`"]
        )
        lines += [
            "",
            f"Cached vs bare: `/` {index_ratio:.2f}x, `summary.json` {summary_ratio:.2f}x "
            f"(target >= {TARGET_RATIO}x: `/` {verdict(index_ratio >= TARGET_RATIO)}, "
            f"`summary.json` {verdict(summary_ratio >= TARGET_RATIO)}).",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command")
    run_serve = commands.add_parser("serve", help="one server for the throughput runs")
    run_serve.add_argument("app", choices=["statuspage", "bare"])
    run_serve.add_argument("--store")
    run_serve.add_argument("--index")
    run_serve.add_argument("--summary")
    run_serve.add_argument("--port", type=int, required=True)
    parser.add_argument("--rounds", type=int, default=21, help="render rounds")
    parser.add_argument("--wrk-rounds", type=int, default=5, help="throughput rounds")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--targets", type=int, default=TARGETS, help=f"targets of {1 + len(SERVICES)} components"
    )
    args = parser.parse_args()
    if args.command == "serve":
        serve(args)
        return
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{scratch}/monitor.db"
        asyncio.run(build_store(url, args.targets))
        requests, steps, extra = asyncio.run(render(url, args.rounds))
        rates = None
        if args.wrk_rounds and shutil.which("wrk") and shutil.which("taskset"):
            rates = throughput(
                url, extra["bodies"], args.wrk_rounds, args.duration, args.connections
            )
        elif args.wrk_rounds:
            print("wrk or taskset not found: throughput skipped (apt-get install wrk)")
    print(report(requests, steps, extra["sizes"], rates))


if __name__ == "__main__":
    main()
