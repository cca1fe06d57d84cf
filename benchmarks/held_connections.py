"""``/live`` latency while 20,000 idle connections are held against the real backend.

The backend runs as ``questcity backend`` (SQLite, no S3, its default connection bounds: a cap of
1024, a 10 s header deadline). Flood processes (each with its own loopback source address, so
ephemeral ports do not run out, and its open-file limit raised) open ``--connections`` TCP
connections that never send a byte. Meanwhile a prober sends ``GET /api/v1/health/live`` on a new
connection every ``--every`` seconds (as a load balancer or the monitor would) and records its
latency; a probe that gets no answer within 5 s counts as 5 s.

Three phases, the same probe, one run:

- **baseline**: no flood;
- **held**: the flood opens its connections once and keeps whatever the server leaves open;
- **sustained**: the flood re-opens every connection the server closes, for the whole phase.

    uv run python -m benchmarks.held_connections [--connections 20000] [--seconds 15]

Target: ``/live`` p99 under 1 s in both flood phases (on main it stopped answering at all).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from benchmarks._servers import (
    HOST,
    LIVE,
    READY,
    ServerProcess,
    backend_argv,
    backend_env,
    load_average,
    new_port,
    stop_on_sigterm,
)

TARGET_P99 = 1.0
PROBE_TIMEOUT = 5.0
PER_PROCESS = 10_000
"""Connections per flood process (each source address has about 28,000 ephemeral ports)."""


def raise_files(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise SystemExit(f"{needed} open files are needed, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


# -- the flood (a process of its own) -------------------------------------------------------------


async def flood(port: int, count: int, source: str, reconnect: bool) -> None:
    """Hold ``count`` idle connections from ``source``; re-open closed ones if ``reconnect``."""
    raise_files(count + 100)
    opening = asyncio.Semaphore(256)

    async def slot() -> None:
        while True:
            async with opening:
                try:
                    reader, writer = await asyncio.open_connection(
                        HOST, port, local_addr=(source, 0)
                    )
                except OSError:
                    await asyncio.sleep(0.05)
                    continue
            try:
                await reader.read()  # until the server closes it
            except OSError:
                pass
            finally:
                writer.close()
            if not reconnect:
                await asyncio.Event().wait()  # keep the slot (and its closed socket) quiet

    await asyncio.gather(*(slot() for _ in range(count)))


def flood_argv(port: int, count: int, source: str, reconnect: bool) -> list[str]:
    argv = [sys.executable, "-m", "benchmarks.held_connections", "flood", "--port", str(port)]
    argv += ["--count", str(count), "--source", source]
    return argv + (["--reconnect"] if reconnect else [])


@contextlib.contextmanager
def flooding(port: int, total: int, reconnect: bool) -> Iterator[None]:
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for n, start in enumerate(range(0, total, PER_PROCESS)):
            count = min(PER_PROCESS, total - start)
            argv = flood_argv(port, count, f"127.0.0.{n + 2}", reconnect)
            processes.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL))
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# -- the probe ----------------------------------------------------------------------------------


async def probe_once(port: int) -> float:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            reader, writer = await asyncio.open_connection(HOST, port)
            try:
                writer.write(
                    f"GET {LIVE} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode()
                )
                answer = await reader.read()
            finally:
                writer.close()
    except (TimeoutError, OSError):
        return PROBE_TIMEOUT
    if not answer.startswith(b"HTTP/1.1 200 "):
        return PROBE_TIMEOUT  # a refusal is as bad as no answer for a liveness probe
    return time.perf_counter() - started


async def probe(port: int, seconds: float, every: float) -> list[float]:
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        latencies.append(await probe_once(port))
        await asyncio.sleep(every)
    return latencies


def p(values: list[float], q: int) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[q - 1]
        if len(values) > 1
        else values[0]
    )


def server_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def report(label: str, latencies: list[float], files: int | None) -> float:
    p50, p99 = p(latencies, 50), p(latencies, 99)
    failed = sum(1 for value in latencies if value >= PROBE_TIMEOUT)
    held = f"; server holds {files} files" if files is not None else ""
    print(
        f"{label:<10} probes {len(latencies):4d}  p50 {p50 * 1000:8.1f} ms  "
        f"p99 {p99 * 1000:8.1f} ms  max {max(latencies) * 1000:8.1f} ms  "
        f"unanswered {failed}{held}",
        flush=True,
    )
    return p99


def run(total: int, seconds: float, every: float, ramp: float) -> bool:
    raise_files(1000)
    with tempfile.TemporaryDirectory(prefix="questcity-bench-") as tmp, stop_on_sigterm():
        workdir = Path(tmp)
        port = new_port()
        with ServerProcess(
            "backend", backend_argv(port), port=port, workdir=workdir, env=backend_env(workdir)
        ) as backend:
            backend.wait_until(READY)
            pid = backend.server_pid()
            print(
                f"# backend pid {pid}, {total} idle connections from "
                f"{-(-total // PER_PROCESS)} processes, a /live probe on a new connection every "
                f"{every * 1000:g} ms for {seconds:g} s a phase; load average {load_average()}",
                flush=True,
            )
            baseline = asyncio.run(probe(port, seconds, every))
            report("baseline", baseline, server_files(pid))
            ok = True
            for label, reconnect in (("held", False), ("sustained", True)):
                with flooding(port, total, reconnect):
                    latencies = asyncio.run(probe(port, ramp + seconds, every))
                    files = server_files(pid)
                p99 = report(label, latencies, files)
                ok = ok and p99 < TARGET_P99
                if not backend.running:
                    print(f"the backend exited during the {label} flood", flush=True)
                    return False
            print(
                f"# target: /live p99 < {TARGET_P99:g} s under both floods: "
                f"{'met' if ok else 'NOT met'}; load average after: {load_average()}"
            )
            return ok


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    commands = parser.add_subparsers(dest="command")
    flood_parser = commands.add_parser("flood", help="(internal) one flood process")
    flood_parser.add_argument("--port", type=int, required=True)
    flood_parser.add_argument("--count", type=int, required=True)
    flood_parser.add_argument("--source", required=True)
    flood_parser.add_argument("--reconnect", action="store_true")
    parser.add_argument("--connections", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=15.0, help="probing time per phase")
    parser.add_argument("--every", type=float, default=0.02, help="seconds between probes")
    parser.add_argument(
        "--ramp", type=float, default=5.0, help="probing time while the flood opens (counted)"
    )
    args = parser.parse_args(argv)
    if args.command == "flood":
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(flood(args.port, args.count, args.source, args.reconnect))
        return
    sys.exit(0 if run(args.connections, args.seconds, args.every, args.ramp) else 1)


if __name__ == "__main__":
    main()
