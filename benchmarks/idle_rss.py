"""Resident memory of the idle backend, against a bare Starlette app under the same uvicorn.

Each server is started in a process of its own (the backend as ``questcity backend`` on a
temporary SQLite database with S3 not configured; the bare app as one route answering a small
``JSONResponse``), answers its readiness probe, is left idle for ``--idle`` seconds, and then
``VmRSS`` (resident now) and ``VmHWM`` (the peak) are read from ``/proc/PID/status`` of the
process that listens on its port: the Python process running uvicorn itself, not a wrapper
(``uv run``, ``setpriv``). Servers alternate over ``--rounds`` rounds, a fresh process each time;
figures are medians. MB here are 10^6 bytes.

    uv run python -m benchmarks.idle_rss [--rounds 3] [--idle 5]

Target: backend idle VmRSS ≤ 150 MB.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks._servers import (
    BARE_PATH,
    READY,
    ServerProcess,
    backend_argv,
    backend_env,
    bare_argv,
    command_line,
    kib,
    load_average,
    new_port,
    proc_status,
    stop_on_sigterm,
)

TARGET_MB = 150.0
FIELDS = ("VmRSS", "VmHWM", "RssAnon", "RssFile")


@dataclass
class Candidate:
    label: str
    argv: Callable[[int], list[str]]
    ready_path: str
    samples: dict[str, list[int]] = field(default_factory=lambda: {f: [] for f in FIELDS})
    threads: list[int] = field(default_factory=list)
    seen: str = ""
    """The measured process: its pid and command line, and the wrapper's pid when different."""

    def median_mb(self, name: str) -> float:
        return statistics.median(self.samples[name]) * 1024 / 1e6


def measure(candidate: Candidate, idle: float, workdir: Path, number: int) -> None:
    port = new_port()
    rundir = workdir / f"{candidate.label.split()[0]}-{number}"
    rundir.mkdir()
    with ServerProcess(
        candidate.label,
        candidate.argv(port),
        port=port,
        workdir=rundir,
        env=backend_env(rundir),
    ) as server:
        server.wait_until(candidate.ready_path)
        server.idle(idle)
        pid = server.server_pid()
        status = proc_status(pid)
        for name in FIELDS:
            candidate.samples[name].append(kib(status[name]))
        candidate.threads.append(int(status["Threads"]))
        wrapper = "" if pid == server.launched_pid else f" (launched as pid {server.launched_pid})"
        candidate.seen = f"pid {pid}: `{command_line(pid)}`{wrapper}"


def run(rounds: int, idle: float) -> list[Candidate]:
    candidates = [
        Candidate("bare Starlette app", bare_argv, BARE_PATH),
        Candidate("backend (`questcity backend`)", backend_argv, READY),
    ]
    with tempfile.TemporaryDirectory(prefix="questcity-bench-") as tmp:
        for number in range(rounds):
            order = candidates if number % 2 == 0 else candidates[::-1]
            for candidate in order:
                measure(candidate, idle, Path(tmp), number)
                print(
                    f"# round {number + 1}: {candidate.label}: "
                    f"VmRSS {candidate.samples['VmRSS'][-1] * 1024 / 1e6:.1f} MB",
                    flush=True,
                )
    return candidates


def report(candidates: list[Candidate], idle: float) -> str:
    bare, backend = candidates
    lines = [
        "| server | VmRSS MB (median) | VmHWM MB | RssAnon MB | RssFile MB | threads | "
        "VmRSS over bare |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for candidate in candidates:
        over = candidate.median_mb("VmRSS") - bare.median_mb("VmRSS")
        lines.append(
            f"| {candidate.label} | {candidate.median_mb('VmRSS'):.1f} | "
            f"{candidate.median_mb('VmHWM'):.1f} | {candidate.median_mb('RssAnon'):.1f} | "
            f"{candidate.median_mb('RssFile'):.1f} | {statistics.median(candidate.threads):g} | "
            + ("—" if candidate is bare else f"+{over:.1f}")
            + " |"
        )
    rss = backend.median_mb("VmRSS")
    lines += [
        "",
        f"Idle {idle:g} s after the readiness probe answered 200; load average at the end "
        f"{load_average()}. Measured processes: "
        f"bare {bare.seen}; backend {backend.seen}.",
        f"Backend idle VmRSS {rss:.1f} MB (target ≤ {TARGET_MB:g} MB): "
        f"{'met' if rss <= TARGET_MB else '**NOT met**'}.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle", type=float, default=5.0, help="seconds idle before reading")
    args = parser.parse_args()
    with stop_on_sigterm():
        candidates = run(args.rounds, args.idle)
    print(report(candidates, args.idle))


if __name__ == "__main__":
    main()
