"""The monitor's memory while it probes a hostile target: an answer of 1 GiB (declared), and an
endless one (no length, whitespace until the reader hangs up).

    uv run python -m benchmarks.monitor_hostile_rss [--rounds 20]

The targets are :mod:`tests.hostile.target_farm` in a process of its own, on loopback. Each
candidate is a fresh process running the real :class:`~monitor.daemon.MonitorDaemon` (its HTTP
client, the probe, a SQLite store in a temporary directory) that checks its target ``--rounds``
times in a row; it reports its peak RSS (``VmHWM``) and its RSS at the end.

Baseline (same run): the same daemon checking the farm's ``healthy`` target. Figure: growth of
the peak over the baseline's peak. Target: < 50 MB (on main before #11 a 1 GiB answer took the
monitor to 3.2 GB).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from monitor.config import MonitorConfig, Notifier, Target

CANDIDATES = {
    "healthy (baseline)": ("healthy",),
    "1 GiB answer": ("gigabyte",),
    "endless answer": ("endless",),
    "both, together": ("gigabyte", "endless"),
}
TIMEOUT = 5.0
MB = 1024 * 1024


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


async def _candidate(port: int, names: list[str], rounds: int, directory: str) -> dict[str, object]:
    from monitor.daemon import MonitorDaemon

    config = MonitorConfig(
        path=Path(directory) / "monitor.toml",
        storage_url=f"sqlite:///{directory}/monitor.db",
        targets=tuple(
            Target(name, f"http://127.0.0.1:{port}/{name}", interval=10.0, timeout=TIMEOUT)
            for name in names
        ),
        notifiers=(Notifier("log"),),
    )
    daemon = MonitorDaemon(config, environ={}, write_window=0.0)
    await daemon.prepare()
    errors: set[str] = set()
    try:
        for _ in range(rounds):
            records = await asyncio.gather(*(daemon.check_target(t) for t in config.targets))
            errors.update(str(r.error) for r in records)
    finally:
        await daemon.stop()
    return {
        "hwm_kb": _status_kb("VmHWM"),
        "rss_kb": _status_kb("VmRSS"),
        "errors": sorted(errors),
    }


def _run_candidate(port: int, names: tuple[str, ...], rounds: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as directory:
        output = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.monitor_hostile_rss",
                "--candidate",
                ",".join(names),
                "--port",
                str(port),
                "--rounds",
                str(rounds),
                "--directory",
                directory,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    result: dict[str, object] = json.loads(output.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--candidate", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--directory", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.candidate:
        names = args.candidate.split(",")
        print(json.dumps(asyncio.run(_candidate(args.port, names, args.rounds, args.directory))))
        return

    farm = subprocess.Popen(
        [sys.executable, "-m", "tests.hostile.target_farm", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert farm.stdout is not None
        port = int(farm.stdout.readline().rsplit(":", 1)[1])
        results = {
            label: _run_candidate(port, names, args.rounds) for label, names in CANDIDATES.items()
        }
    finally:
        farm.terminate()
        farm.wait()
    base = results["healthy (baseline)"]
    print(f"monitor RSS, {args.rounds} checks per target in a row (timeout {TIMEOUT:g} s)")
    print(f"{'candidate':<22} {'peak MB':>8} {'end MB':>8} {'growth MB':>10}  errors")
    for label, result in results.items():
        peak = int(str(result["hwm_kb"])) / 1024
        end = int(str(result["rss_kb"])) / 1024
        growth = peak - int(str(base["hwm_kb"])) / 1024
        print(f"{label:<22} {peak:>8.1f} {end:>8.1f} {growth:>+10.1f}  {result['errors']}")


if __name__ == "__main__":
    main()
