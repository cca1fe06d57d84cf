"""Status page: render time with a cold cache, and requests/s when cached, each against a bare
Starlette app serving the same bytes, measured in the same run.

    uv run python -m benchmarks.statuspage_render [--rounds 21] [--wrk-rounds 5] [--duration 5]
        [--no-content] [--json FILE]

The store: 10 targets with 4 services each (50 components; ``--targets`` changes the 10), 90 days
of daily and 48 hours of hourly roll-ups written straight into the roll-up table (as the daemon's
``HistoryWriter`` would have left them), a few raw checks per target (current status and
"since"), and 4 automatic incidents. Unless ``--no-content`` (and only on code that has them,
issue #15): what people write (:mod:`benchmarks.statuspage_content`): 5 written incidents with
10 updates each and 2 maintenance windows, one active and one upcoming.

1. Render, in process through the ASGI app (no network, no HTTP client), with the cache cleared
   before every request (a cold cache: the store's change token, the board, for ``/`` the 90-day
   history, then the template): ``/`` (also as after a restart: every memo emptied too),
   ``/incidents/{id}`` (an automatic incident, and a written one with 10 updates),
   ``summary.json`` and ``scheduled-maintenances.json``; the pages in English and in Russian
   (``Accept-Language: ru-RU,ru;q=0.9,en;q=0.8``, as a browser sends it) on code that speaks it.
   Then ``/`` and ``summary.json`` cached, and a bare Starlette app answering a static
   ``Response`` of the same bytes. Interleaved rounds in shuffled order; p50 and p95 of every call
   timed alone. Then where the cold time goes: each step timed on its own, the same way.
2. Throughput (:mod:`benchmarks._statuspage_wrk`): the status page and the bare app under uvicorn
   (same options, one process each, pinned to CPU 1 with ``taskset``), loaded by ``wrk`` pinned
   to CPU 0, for ``/`` and ``summary.json`` from the cache; interleaved rounds, median
   requests/s. Needs ``wrk`` and ``taskset`` (Debian: ``apt-get install wrk``).

``--json FILE``: every sample, for :mod:`benchmarks.statuspage_compare`, which runs this file by
its path against an older checkout too (so it imports only what that code has).

    python -m benchmarks.statuspage_render serve statuspage --store URL --port N   # by hand
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import importlib.util
import json
import random
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
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
PUBLIC = importlib.util.find_spec("monitor.i18n") is not None
"""The code under test has issue #15's languages, written incidents and windows."""
RUSSIAN = [(b"accept-language", b"ru-RU,ru;q=0.9,en;q=0.8")]

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


async def build_store(url: str, targets: int = TARGETS, content: bool = False) -> dict[str, int]:
    """The store; the incidents the benchmark requests by id (``auto``: an automatic incident
    with a note and a state change; with ``content``, two written ones)."""
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
    ids = {"auto": 1}
    if content:
        from benchmarks.statuspage_content import add_public_content

        ids |= await add_public_content(url, NOW)
    return ids


# -- in-process render ----------------------------------------------------------------------------


async def asgi_get(
    app: Any, path: str, headers: list[tuple[bytes, bytes]] | None = None
) -> tuple[int, bytes]:
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
        "headers": [(b"host", b"bench"), *(headers or ())],
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


async def measure(call: Call, repeat: int) -> list[tuple[float, float]]:
    """Milliseconds of each of ``repeat`` calls: wall time, and the process's CPU time (every
    thread's: the reads run in worker threads), which a loaded machine inflates less."""
    times = []
    for _ in range(repeat):
        started, cpu = time.perf_counter(), time.process_time()
        await call()
        times.append(((time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000))
    return times


Samples = dict[str, list[tuple[float, float]]]


async def interleaved(candidates: dict[str, tuple[Call, int]], rounds: int) -> Samples:
    """Every call's (wall, CPU) milliseconds over ``rounds`` rounds; order shuffled every
    round."""
    samples: Samples = {label: [] for label in candidates}
    order = list(candidates)
    shuffle = random.Random(1)
    for label in order:  # warm-up: imports, template compilation, connection pool
        await measure(candidates[label][0], 2)
    for _ in range(rounds):
        shuffle.shuffle(order)
        for label in order:
            call, repeat = candidates[label]
            samples[label].extend(await measure(call, repeat))
    return samples


def cold_requests(ids: dict[str, int]) -> dict[str, tuple[str, str, bool]]:
    """label: (path, language, as after a restart) of every cold request measured."""
    wanted: dict[str, tuple[str, str, bool]] = {}
    for lang in ("en", "ru") if PUBLIC else ("en",):
        suffix = "" if lang == "en" else " (ru)"
        wanted[f"`/`{suffix}, cold cache"] = ("/", lang, False)
        wanted[f"`/`{suffix}, cold cache and memos (as after a restart)"] = ("/", lang, True)
        wanted[f"`/incidents/{{id}}`{suffix} automatic, cold cache"] = (
            f"/incidents/{ids['auto']}",
            lang,
            False,
        )
        if "written_open" in ids:
            wanted[f"`/incidents/{{id}}`{suffix} written, 10 updates, cold cache"] = (
                f"/incidents/{ids['written_open']}",
                lang,
                False,
            )
    wanted["`summary.json`, cold cache"] = ("/api/v2/summary.json", "en", False)
    if PUBLIC:
        wanted["`scheduled-maintenances.json`, cold cache"] = (
            "/api/v2/scheduled-maintenances.json",
            "en",
            False,
        )
    return wanted


async def render(
    url: str, rounds: int, ids: dict[str, int]
) -> tuple[Samples, Samples, dict[str, Any]]:
    from statuspage.app import create_app
    from statuspage.model import opaque_id, slugify

    app = create_app(url, clock=lambda: NOW, public_url="http://bench")
    async with app.router.lifespan_context(app):
        page = app.state.statuspage
        cache = page.cache
        wanted = cold_requests(ids)
        bodies: dict[tuple[str, str], bytes] = {}
        for path, lang, _ in wanted.values():
            status, bodies[path, lang] = await asgi_get(app, path, RUSSIAN if lang == "ru" else [])
            assert status == 200, (path, lang, status)
        if PUBLIC:  # the Russian page is Russian, and the content is on it
            assert bodies["/", "ru"] != bodies["/", "en"]
            if "written_open" in ids:  # the incidents and both windows are on the page
                for shown in (b"Quests do not start", b"Database upgrade", b"Search index"):
                    assert shown in bodies["/", "en"], shown
        index_body, summary_body = bodies["/", "en"], bodies["/api/v2/summary.json", "en"]
        bare = bare_app(
            {
                "/": (index_body, "text/html; charset=utf-8"),
                "/api/v2/summary.json": (summary_body, "application/json"),
            }
        )

        def cold(path: str, lang: str, restart: bool) -> Call:
            """``restart``: cold as after one: the page cache and every memo of pure
            functions (decoded day strips, bar segments, ids, day names) empty."""
            headers = RUSSIAN if lang == "ru" else []

            async def call() -> None:
                cache.clear()
                if restart:
                    cache._source.reader.clear_memos()
                    page.renderer.clear_memos()
                    opaque_id.cache_clear()
                    slugify.cache_clear()
                await asgi_get(app, path, headers)

            return call

        def warm(target: Any, path: str) -> Call:
            async def call() -> None:
                await asgi_get(target, path)

            return call

        candidates = {label: (cold(*request), 3) for label, request in wanted.items()}
        candidates |= {
            "`/`, cached": (warm(app, "/"), 200),
            "`summary.json`, cached": (warm(app, "/api/v2/summary.json"), 200),
            "bare static `Response`, same bytes as `/`": (warm(bare, "/"), 200),
        }
        requests = await interleaved(candidates, rounds)
        steps = await where_the_time_goes(page, cache, rounds, ids)
    sizes = {
        "/": len(index_body),
        "/ gzip": len(gzip.compress(index_body, compresslevel=6, mtime=0)),
        "/ (ru)": len(bodies.get(("/", "ru"), b"")),
        "summary.json": len(summary_body),
    }
    return requests, steps, {"bodies": (index_body, summary_body), "sizes": sizes}


async def where_the_time_goes(page: Any, cache: Any, rounds: int, ids: dict[str, int]) -> Samples:
    from statuspage import api

    source = cache._source
    board = await source.board(NOW)
    history = await source.history(board)
    reader = source.reader
    first = board.components[1]
    incident_id = ids.get("written_open", ids["auto"])
    incident = await source.incident(incident_id, board)
    reads = "4 reads: + maintenance windows" if PUBLIC else "3 reads"

    async def token() -> None:
        await source.change_token()

    async def load_board() -> None:
        await source.board(NOW)

    async def load_history() -> None:
        await source.history(board)

    async def load_incident() -> None:
        await source.incident(incident_id, board)

    async def one_bars() -> None:
        await reader.bars(first.target, first.service, now=NOW)

    async def states() -> None:
        await reader.states()

    def template(lang: str) -> Call:
        async def call() -> None:
            if PUBLIC:
                page.renderer.index(board, history, lang)
            else:
                page.renderer.index(board, history)

        return call

    def incident_template(lang: str) -> Call:
        async def call() -> None:
            if PUBLIC:
                page.renderer.incident(board, incident, lang)
            else:
                page.renderer.incident(board, incident)

        return call

    async def summary() -> None:
        api.encode(api.summary_json(board))

    segments = f"{len(board.components)} × 90 segments"
    steps: dict[str, tuple[Call, int]] = {
        "change token (1 query)": (token, 20),
        f"board: catalogue, component states, incidents ({reads} at once)": (load_board, 5),
        "one `HistoryReader.states()` call (every component's status and since)": (states, 20),
        "history: `series_many` + `latency_series_many` (at once)": (load_history, 5),
        "one `HistoryReader.bars()` call": (one_bars, 20),
        f"template `/` (Jinja2, {segments})": (template("en"), 5),
        f"incident {incident_id} read (`/incidents/{{id}}`)": (load_incident, 10),
        f"template `/incidents/{{id}}` ({incident_id})": (incident_template("en"), 10),
        "`summary.json` build + encode": (summary, 20),
    }
    if PUBLIC:
        steps[f"template `/` (ru, {segments})"] = (template("ru"), 5)
        steps[f"template `/incidents/{{id}}` (ru, {incident_id})"] = (incident_template("ru"), 10)
    return await interleaved(steps, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
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
    parser.add_argument(
        "--no-content",
        action="store_true",
        help="no written incidents or windows (the code before #15 never has them)",
    )
    parser.add_argument("--json", type=Path, help="write every sample here")
    args = parser.parse_args()
    if args.command == "serve":
        from benchmarks._statuspage_wrk import serve

        serve(args)
        return
    content = PUBLIC and not args.no_content
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{scratch}/monitor.db"
        ids = asyncio.run(build_store(url, args.targets, content))
        requests, steps, extra = asyncio.run(render(url, args.rounds, ids))
        rates = None
        if args.wrk_rounds and shutil.which("wrk") and shutil.which("taskset"):
            from benchmarks._statuspage_wrk import throughput

            rates = throughput(
                url, extra["bodies"], args.wrk_rounds, args.duration, args.connections
            )
        elif args.wrk_rounds:
            print("wrk or taskset not found: throughput skipped (apt-get install wrk)")
    found = {"content": content, "languages": PUBLIC, "requests": requests, "steps": steps}
    found |= {"sizes": extra["sizes"], "rates": rates}
    if args.json:  # read by statuspage_compare, which may have run this against older code
        args.json.write_text(json.dumps(found))
        return
    from benchmarks.statuspage_compare import single_report

    print(single_report(found))


if __name__ == "__main__":
    main()
