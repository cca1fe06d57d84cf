"""Backend memory while clients push huge bodies at it: the body limits hold while bodies stream in.

One backend process (``questcity backend`` on a temporary SQLite database, S3 not configured) is
started and left idle; its ``VmRSS`` then is the baseline. Four phases follow, each with
``--clients`` clients at once, each sending a ``--megabytes`` body over a raw socket in 1 MiB
writes until the server answers or closes (or the whole body is sent):

- ``register, Content-Length``: ``POST /api/v1/auth/register`` (anonymous; JSON, 64 KiB limit)
  declaring the body's length;
- ``register, chunked``: the same, ``Transfer-Encoding: chunked`` (no length to refuse up front);
- ``avatar, Content-Length`` and ``avatar, chunked``: ``PUT /api/v1/users/me/avatar`` with a
  player's token (image upload, 5 MiB limit); the body starts as a PNG, so it passes the image
  sniff and meets the size limit: each client may hold up to 5 MiB in the server.

A client may see no answer ("none"): the server answered and closed while the client was still
writing, and the reset that follows discards the answer from the client's receive buffer.

While a phase runs, the server process's ``VmRSS`` is sampled every 20 ms from
``/proc/PID/status``; a phase's figure is its peak. MB here are 10^6 bytes.

    uv run python -m benchmarks.body_bounds [--clients 8] [--megabytes 300]

Target: the peak during every phase exceeds the idle baseline by less than 50 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks._servers import (
    HOST,
    READY,
    ServerProcess,
    backend_argv,
    backend_env,
    kib,
    load_average,
    new_port,
    proc_status,
    stop_on_sigterm,
)

TARGET_GROWTH_MB = 50.0
WRITE = 1024 * 1024
SAMPLE_EVERY = 0.02
ANSWER_TIMEOUT = 120.0
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass
class Outcome:
    status: int | None = None
    sent: int = 0
    seconds: float = 0.0


@dataclass
class Phase:
    label: str
    path: str
    chunked: bool
    token: str | None = None
    peak_kib: int = 0
    outcomes: list[Outcome] = field(default_factory=list)

    def head(self, size: int) -> bytes:
        lines = [f"{'PUT' if 'avatar' in self.path else 'POST'} {self.path} HTTP/1.1"]
        lines.append(f"Host: {HOST}")
        lines.append(
            "Content-Type: " + ("image/png" if "avatar" in self.path else "application/json")
        )
        if self.token:
            lines.append(f"Authorization: Bearer {self.token}")
        lines.append("Transfer-Encoding: chunked" if self.chunked else f"Content-Length: {size}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()


def mb(kibibytes: float) -> float:
    return kibibytes * 1024 / 1e6


async def _status(reader: asyncio.StreamReader) -> int:
    line = await reader.readline()
    return int(line.split()[1]) if line else 0


async def send_one(port: int, phase: Phase, size: int) -> Outcome:
    """One client: the head, then the body in 1 MiB writes until an answer, a close, or the end."""
    outcome = Outcome()
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(HOST, port)
    answer = asyncio.ensure_future(_status(reader))
    # Upload bodies start as a PNG, so they pass the image sniff and meet the size limit.
    prefix = PNG_MAGIC if "avatar" in phase.path else b""
    first = prefix + b"x" * (WRITE - len(prefix))
    block = b"x" * WRITE
    try:
        writer.write(phase.head(size))
        while outcome.sent < size and not answer.done():
            data = first if outcome.sent == 0 else block
            writer.write(b"%x\r\n%s\r\n" % (WRITE, data) if phase.chunked else data)
            await writer.drain()
            outcome.sent += WRITE
        if phase.chunked and not answer.done():
            writer.write(b"0\r\n\r\n")
            await writer.drain()
    except ConnectionError:
        pass  # the server closed on us: it refused the rest
    try:
        outcome.status = await asyncio.wait_for(answer, ANSWER_TIMEOUT)
    except (ConnectionError, TimeoutError, asyncio.IncompleteReadError, ValueError):
        outcome.status = None
    outcome.seconds = time.perf_counter() - started
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    return outcome


async def run_phase(port: int, pid: int, phase: Phase, clients: int, size: int) -> None:
    done = asyncio.Event()

    async def sample() -> None:
        while not done.is_set():
            phase.peak_kib = max(phase.peak_kib, kib(proc_status(pid)["VmRSS"]))
            await asyncio.sleep(SAMPLE_EVERY)

    sampler = asyncio.ensure_future(sample())
    try:
        phase.outcomes = list(
            await asyncio.gather(*(send_one(port, phase, size) for _ in range(clients)))
        )
    finally:
        done.set()
        await sampler
    phase.peak_kib = max(phase.peak_kib, kib(proc_status(pid)["VmRSS"]))


def player_token(base_url: str) -> str:
    import httpx

    credentials = {"username": f"bench-{uuid.uuid4().hex[:8]}", "password": "correct horse"}
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        client.post("/api/v1/auth/register", json=credentials).raise_for_status()
        response = client.post("/api/v1/auth/token", json=credentials)
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token


def run(clients: int, megabytes: int, idle: float) -> tuple[int, list[Phase], str]:
    size = megabytes * 1000 * 1000
    with tempfile.TemporaryDirectory(prefix="questcity-bench-") as tmp:
        port = new_port()
        workdir = Path(tmp)
        with ServerProcess(
            "backend", backend_argv(port), port=port, workdir=workdir, env=backend_env(workdir)
        ) as server:
            server.wait_until(READY)
            token = player_token(server.base_url)
            server.idle(idle)
            pid = server.server_pid()
            baseline = kib(proc_status(pid)["VmRSS"])
            phases = [
                Phase("register, Content-Length", "/api/v1/auth/register", chunked=False),
                Phase("register, chunked", "/api/v1/auth/register", chunked=True),
                Phase("avatar, Content-Length", "/api/v1/users/me/avatar", False, token),
                Phase("avatar, chunked", "/api/v1/users/me/avatar", True, token),
            ]
            for phase in phases:
                asyncio.run(run_phase(port, pid, phase, clients, size))
                print(f"# {phase.label}: peak VmRSS {mb(phase.peak_kib):.1f} MB", flush=True)
            return baseline, phases, f"pid {pid}"


def report(baseline: int, phases: list[Phase], clients: int, megabytes: int, seen: str) -> str:
    lines = [
        f"Baseline: the same backend idle, VmRSS {mb(baseline):.1f} MB ({seen}).",
        "",
        f"| phase ({clients} clients × {megabytes} MB) | answers | sent per client MB "
        "(median) | seconds to answer (max) | peak VmRSS MB | growth over idle MB |",
        "|---|---|---:|---:|---:|---:|",
    ]
    worst = 0.0
    for phase in phases:
        statuses: dict[str, int] = {}
        for outcome in phase.outcomes:
            name = str(outcome.status) if outcome.status else "none"
            statuses[name] = statuses.get(name, 0) + 1
        sent = sorted(o.sent for o in phase.outcomes)[len(phase.outcomes) // 2] / 1e6
        slowest = max(o.seconds for o in phase.outcomes)
        growth = mb(phase.peak_kib - baseline)
        worst = max(worst, growth)
        answers = ", ".join(f"{n}× {s}" for s, n in sorted(statuses.items()))
        lines.append(
            f"| {phase.label} | {answers} | {sent:.1f} | {slowest:.2f} | "
            f"{mb(phase.peak_kib):.1f} | {growth:+.1f} |"
        )
    lines += [
        "",
        f"Load average at the end {load_average()}. Worst growth {worst:.1f} MB (target < "
        f"{TARGET_GROWTH_MB:g} MB): {'met' if worst < TARGET_GROWTH_MB else '**NOT met**'}.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--megabytes", type=int, default=300, help="body size per client")
    parser.add_argument("--idle", type=float, default=3.0, help="seconds idle before baseline")
    args = parser.parse_args()
    with stop_on_sigterm():
        baseline, phases, seen = run(args.clients, args.megabytes, args.idle)
    print(report(baseline, phases, args.clients, args.megabytes, seen))


if __name__ == "__main__":
    main()
