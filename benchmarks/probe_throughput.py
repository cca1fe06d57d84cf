"""Requests/s of the health probes on the real backend, against a bare Starlette app.

Both run in processes of their own under uvicorn with the same options (one worker, no log
config, no access log, the same loop and HTTP implementations; checked before measuring): the
backend as ``questcity backend`` on a temporary SQLite database with S3 not configured, the bare
app as one route answering a small ``JSONResponse``. wrk drives each in turn, pinned to one core
and the servers to the other, so client and server don't fight over a core. Targets are run in
interleaved rounds (the order shuffled every round); req/s is the median over rounds, and the
ratio to bare is the median of the per-round ratios (each round's figure over the bare app's in the
same round, so that load from elsewhere on the machine hits both sides of a ratio alike).

    uv run python -m benchmarks.probe_throughput [--rounds 5] [--duration 4] [--connections 32]
        [--profile DIR]   # also py-spy the backend under each endpoint's load (collapsed stacks)

Targets: /live and /ready ≥ 0.8× bare, / ≥ 0.7× bare.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import shutil
import statistics
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from benchmarks._servers import (
    BARE_PATH,
    LIVE,
    OVERALL,
    READY,
    ServerProcess,
    backend_argv,
    backend_env,
    bare_argv,
    implementations,
    load_average,
    new_port,
    option_differences,
    py_spy,
    stop_on_sigterm,
    summarize_profile,
)

CLIENT_CPU = 0
SERVER_CPU = 1


@dataclass
class Target:
    label: str
    server: ServerProcess
    path: str
    floor: float | None
    """Least acceptable ratio to the bare app; None for the bare app itself."""
    samples: list[float] = field(default_factory=list)
    """req/s, one per round."""
    cpu: list[float] = field(default_factory=list)
    """Server CPU time (user + system) per answered request, µs, one per round."""
    errors: int = 0
    """Non-2xx answers and socket errors, over every round."""

    @property
    def url(self) -> str:
        return self.server.base_url + self.path

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def ratio_to(self, bare: Target) -> float:
        return statistics.median(a / b for a, b in zip(self.samples, bare.samples, strict=True))

    def cpu_ratio_to(self, bare: Target) -> float:
        """Requests per CPU-second over the bare app's, per round (median): what the req/s ratio
        would be on an otherwise idle core."""
        return statistics.median(b / a for a, b in zip(self.cpu, bare.cpu, strict=True))


@dataclass(frozen=True)
class WrkResult:
    requests_per_second: float
    requests: int
    errors: int


_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_REQUESTS = re.compile(r"^\s*(\d+) requests in", re.MULTILINE)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def wrk(url: str, *, threads: int, connections: int, seconds: float, pin: bool) -> WrkResult:
    binary = shutil.which("wrk")
    if binary is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    argv = [binary, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", url]
    if pin:
        argv = ["taskset", "-c", str(CLIENT_CPU), *argv]
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=seconds + 30)
    found = _RPS.search(result.stdout)
    count = _REQUESTS.search(result.stdout)
    if result.returncode != 0 or found is None or count is None:
        raise RuntimeError(f"wrk failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    errors = 0
    if non_2xx := _NON_2XX.search(result.stdout):
        errors += int(non_2xx.group(1))
    if socket_errors := _SOCKET_ERRORS.search(result.stdout):
        errors += sum(int(n) for n in socket_errors.groups())
    return WrkResult(float(found.group(1)), int(count.group(1)), errors)


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def check_answers(targets: list[Target]) -> None:
    """Each target answers 200 before anything is measured (a 503 would measure the wrong path)."""
    with httpx.Client(timeout=5.0) as client:
        for target in targets:
            response = client.get(target.url)
            if response.status_code != 200:
                raise RuntimeError(
                    f"{target.label}: {response.status_code} {response.text[:300]} (expected 200)"
                )


def run(
    rounds: int,
    seconds: float,
    threads: int,
    connections: int,
    seed: int,
    profile_dir: Path | None = None,
) -> list[Target]:
    pin = (os.cpu_count() or 1) >= 2
    server_cpu = SERVER_CPU if pin else None
    with (
        tempfile.TemporaryDirectory(prefix="questcity-bench-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        workdir = Path(tmp)
        differences = option_differences(workdir)
        if differences:
            raise SystemExit(
                f"the bare app's uvicorn options differ from the backend's: {differences}"
            )
        backend_port, bare_port = new_port(), new_port()
        backend = stack.enter_context(
            ServerProcess(
                "backend",
                backend_argv(backend_port, cpu=server_cpu),
                port=backend_port,
                workdir=workdir,
                env=backend_env(workdir),
            )
        )
        bare = stack.enter_context(
            ServerProcess(
                "bare",
                bare_argv(bare_port, cpu=server_cpu),
                port=bare_port,
                workdir=workdir,
                env=backend_env(workdir),
            )
        )
        backend.wait_until(READY)
        bare.wait_until(BARE_PATH)
        targets = [
            Target("bare Starlette `GET /live`", bare, BARE_PATH, None),
            Target("`GET /api/v1/health/live`", backend, LIVE, 0.8),
            Target("`GET /api/v1/health/ready`", backend, READY, 0.8),
            Target("`GET /api/v1/health/`", backend, OVERALL, 0.7),
        ]
        check_answers(targets)
        print(
            f"# servers on CPU {server_cpu}, wrk on CPU {CLIENT_CPU if pin else 'any'}; "
            f"uvicorn options identical ({implementations()}); "
            f"wrk -t{threads} -c{connections} -d{seconds:g}s, {rounds} rounds; "
            f"load average before: {load_average()}",
            flush=True,
        )
        declared = list(targets)
        for target in targets:  # warm-up: imports, caches, first-request paths
            wrk(target.url, threads=threads, connections=connections, seconds=1, pin=pin)
        order = random.Random(seed)
        pids = {server.name: server.server_pid() for server in (backend, bare)}
        for number in range(1, rounds + 1):
            order.shuffle(targets)
            for target in targets:
                pid = pids[target.server.name]
                used = cpu_seconds(pid)
                result = wrk(
                    target.url, threads=threads, connections=connections, seconds=seconds, pin=pin
                )
                used = cpu_seconds(pid) - used
                target.samples.append(result.requests_per_second)
                target.cpu.append(used / max(result.requests, 1) * 1e6)
                target.errors += result.errors
                print(
                    f"# round {number}: {target.label}: {result.requests_per_second:,.0f} req/s",
                    flush=True,
                )
        print(f"# load average after: {load_average()}", flush=True)
        for server in (backend, bare):
            if not server.running:
                raise RuntimeError(f"{server.name} exited during the run; see {server.log_path}")
        if profile_dir is not None:  # after the measured rounds: sampling perturbs the server
            profile(declared, profile_dir, threads=threads, connections=connections, pin=pin)
        return declared


def profile(
    targets: list[Target], directory: Path, *, threads: int, connections: int, pin: bool
) -> None:
    """py-spy each server under its endpoint's load; print where our code spends the samples."""
    directory.mkdir(parents=True, exist_ok=True)
    for target in targets:
        name = target.path.strip("/").replace("/", "_") or "root"
        output = directory / f"{target.server.name}-{name}.txt"
        with py_spy(target.server.server_pid(), output):
            wrk(target.url, threads=threads, connections=connections, seconds=5, pin=pin)
        print(f"# profile of {target.label}: {output}")
        print(summarize_profile(output), flush=True)


def report(targets: list[Target]) -> str:
    bare = next(t for t in targets if t.floor is None)
    lines = [
        "| endpoint | req/s (median) | rounds (min–max) | ratio to bare | target | | "
        "server CPU µs/request | CPU ratio |",
        "|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for target in targets:
        spread = f"{min(target.samples):,.0f}–{max(target.samples):,.0f}"
        ratio = target.ratio_to(bare)
        cpu = f"{statistics.median(target.cpu):,.0f} | {target.cpu_ratio_to(bare):.2f}"
        if target.floor is None:
            row = f"| {target.label} | {target.median:,.0f} | {spread} | 1.00 | — | baseline"
            lines.append(f"{row} | {cpu} |")
            continue
        verdict = "met" if ratio >= target.floor else "**NOT met**"
        lines.append(
            f"| {target.label} | {target.median:,.0f} | {spread} | {ratio:.2f} | "
            f"≥ {target.floor:.1f} | {verdict} | {cpu} |"
        )
    errors = {t.label: t.errors for t in targets if t.errors}
    lines.append("")
    lines.append(
        "Ratio to bare: median over rounds of the round's req/s over the bare app's in that round. "
        "CPU ratio: the same for requests per CPU-second of the server process (a check that is "
        "not moved by other work on the machine taking the server's core)."
    )
    lines.append(
        "Errors (non-2xx answers, socket errors): "
        + (", ".join(f"{label}: {n}" for label, n in errors.items()) if errors else "none")
        + "."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per wrk run")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--profile", type=Path, help="after measuring, py-spy each server under load into this dir"
    )
    args = parser.parse_args()
    with stop_on_sigterm():
        targets = run(
            args.rounds, args.duration, args.threads, args.connections, args.seed, args.profile
        )
    print(report(targets))


if __name__ == "__main__":
    main()
