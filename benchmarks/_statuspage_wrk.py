"""The status page benchmark's throughput part: the status page and a bare Starlette app serving
the same bytes, each under uvicorn in one process pinned to CPU 1 (``taskset``), loaded by
``wrk`` pinned to CPU 0; interleaved rounds, median requests/s. Needs ``wrk`` and ``taskset``.
The servers are ``python -m benchmarks.statuspage_render serve …`` (see that module)."""

from __future__ import annotations

import argparse
import contextlib
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"


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

    from benchmarks.statuspage_render import NOW, bare_app

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
