"""Status page cold render, issue #15's scenario against its baselines, in one run:

- **before #15**: the code before the issue (a git worktree of that commit; no written incidents,
  windows or languages): 50 components × 90 days, 4 automatic incidents;
- **#15, no content**: this code, the same store (the cost of the languages' machinery);
- **#15, with content**: this code, plus 5 written incidents with 10 updates each and 2
  maintenance windows (one active, one upcoming), pages in English and in Russian.

Each is :mod:`benchmarks.statuspage_render` (in-process ASGI, cold cache, interleaved rounds)
run by its path in a process of its own with ``PYTHONPATH=<checkout>``; the three alternate,
``--runs`` times each (the order rotated every run), so a machine whose speed moves through the
day moves all three. Figures: p50 and p95 of each run, as the range over the runs; the CPU time
of the process per request beside them (less moved by other work on the machine).

    git worktree add /tmp/bench-old b68f62d^
    uv run python -m benchmarks.statuspage_compare --old-root /tmp/bench-old [--runs 2]
        [--rounds 21] [--candidate /tmp/other-checkout]

``--candidate``: a fourth variant, another checkout with the content (a change to weigh, A/B).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

RENDER = Path(__file__).with_name("statuspage_render.py")
HERE = Path(__file__).resolve().parent.parent
TARGET_MS = 20.0
TARGET_RATIO = 0.8


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0-1) of ``values``, interpolated between the nearest two."""
    ordered = sorted(values)
    at = (len(ordered) - 1) * q
    low = int(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


def wall(samples: list[list[float]], q: float) -> float:
    return percentile([s[0] for s in samples], q)


def cpu(samples: list[list[float]], q: float) -> float:
    return percentile([s[1] for s in samples], q)


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def single_report(found: dict[str, Any]) -> str:
    """One run of :mod:`benchmarks.statuspage_render`, as its own command prints it."""
    requests, steps, sizes, rates = (found[k] for k in ("requests", "steps", "sizes", "rates"))
    lines = [
        "| request (in process, ASGI) | ms p50 | ms p95 | CPU ms p50 |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {label} | {wall(v, 0.5):.3f} | {wall(v, 0.95):.3f} | {cpu(v, 0.5):.3f} |"
        for label, v in requests.items()
    ]
    lines += ["", "| step of a cold render | ms p50 | CPU ms p50 |", "|---|---:|---:|"]
    lines += [f"| {label} | {wall(v, 0.5):.3f} | {cpu(v, 0.5):.3f} |" for label, v in steps.items()]
    cold = {label: wall(v, 0.5) for label, v in requests.items() if "cold cache" in label}
    worst = max(cold, key=cold.__getitem__)
    lines += [
        "",
        f"Bodies: `/` {sizes['/']:,} bytes ({sizes['/ gzip']:,} gzipped; Russian "
        f"{sizes['/ (ru)']:,}), `summary.json` {sizes['summary.json']:,} bytes.",
        f"Cold render p50 (target <= {TARGET_MS:.0f} ms): slowest: {worst} {cold[worst]:.1f} ms "
        f"({verdict(cold[worst] <= TARGET_MS)}).",
    ]
    if rates:
        lines += ["", "| server (uvicorn, 1 process, CPU 1; wrk on CPU 0) | requests/s (median) |"]
        lines += ["|---|---:|"]
        lines += [f"| {label} | {value:,.0f} |" for label, value in rates.items()]
        ratios = {
            path: rates[f"status page `{path}` (cached)"]
            / rates[f"bare static `Response`, same bytes as `{path}`"]
            for path in ("/", "summary.json")
        }
        lines += [
            "",
            "Cached vs bare (target >= {TARGET_RATIO}x): "
            + ", ".join(
                f"`{p}` {r:.2f}x ({verdict(r >= TARGET_RATIO)})" for p, r in ratios.items()
            ),
        ]
    return "\n".join(lines)


def describe(root: Path) -> str:
    found = subprocess.run(
        ["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=7"],
        capture_output=True,
        text=True,
        check=False,
    )
    return found.stdout.strip() or "?"


def run_one(root: Path, rounds: int, targets: int, content: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch, "samples.json")
        argv = [sys.executable, str(RENDER), "--rounds", str(rounds), "--wrk-rounds", "0"]
        argv += ["--targets", str(targets), "--json", str(out)]
        argv += [] if content else ["--no-content"]
        env = {**os.environ, "PYTHONPATH": str(root)}
        subprocess.run(argv, cwd=root, env=env, check=True, stdout=subprocess.DEVNULL)
        found: dict[str, Any] = json.loads(out.read_text())
        return found


def span(values: list[float]) -> str:
    low, high = min(values), max(values)
    digits = 2 if high < 1 else 1
    return (
        f"{low:.{digits}f}"
        if f"{low:.{digits}f}" == f"{high:.{digits}f}"
        else (f"{low:.{digits}f}–{high:.{digits}f}")
    )


def table(
    runs: dict[str, list[dict[str, Any]]], part: str, columns: list[tuple[str, Any, float]]
) -> list[str]:
    """One row per label of ``part`` (requests or steps), for each variant the range over its
    runs of each column (name, figure, quantile)."""
    labels: list[str] = []
    for found in runs.values():
        labels += [label for label in found[0][part] if label not in labels]
    head = [f"{variant}: {name}" for variant in runs for name, _, _ in columns]
    lines = ["| " + part + " | " + " | ".join(head) + " |", "|---" + "|---:" * len(head) + "|"]
    for label in labels:
        cells = []
        for found in runs.values():
            for _, figure, q in columns:
                values = [figure(f[part][label], q) for f in found if label in f[part]]
                cells.append(span(values) if values else "—")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--old-root", type=Path, required=True, help="checkout before #15")
    parser.add_argument("--runs", type=int, default=2, help="runs of each variant")
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--targets", type=int, default=10)
    parser.add_argument(
        "--candidate", type=Path, help="a checkout with a change to weigh: run with content too"
    )
    args = parser.parse_args()
    variants = [
        (f"before #15 ({describe(args.old_root)})", args.old_root.resolve(), False),
        ("#15, no content", HERE, False),
        ("#15, with content", HERE, True),
    ]
    if args.candidate:
        root = args.candidate.resolve()
        variants.append((f"candidate {root.name} ({describe(root)}), with content", root, True))
    before, load = describe(HERE), os.getloadavg()[0]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in variants}
    for n in range(args.runs):
        for name, root, content in variants[n % len(variants) :] + variants[: n % len(variants)]:
            print(f"run {n + 1}/{args.runs}: {name}", file=sys.stderr, flush=True)
            runs[name].append(run_one(root, args.rounds, args.targets, content))
    after = describe(HERE)
    print(f"This code: {HERE} at {before} (at the end: {after}); 1-min load average at the start")
    print(f"{load:.1f}, at the end {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)\n")
    p50_p95 = [("p50", wall, 0.5), ("p95", wall, 0.95)]
    print("\n".join(table(runs, "requests", p50_p95)))
    print()
    print("\n".join(table(runs, "requests", [("CPU p50", cpu, 0.5)])))
    print()
    print("\n".join(table(runs, "steps", [("p50", wall, 0.5), ("CPU p50", cpu, 0.5)])))
    for name, found in runs.items():
        sizes = found[0]["sizes"]
        print(
            f"\n{name}: `/` {sizes['/']:,} bytes, Russian {sizes['/ (ru)']:,}, "
            f"summary.json {sizes['summary.json']:,}"
        )
    worst = {
        name: max(
            (max(wall(f["requests"][label], 0.5) for f in found), label)
            for label in found[0]["requests"]
            if "cold cache" in label
        )
        for name, found in runs.items()
    }
    for name, (ms, label) in worst.items():
        print(
            f"{name}: slowest cold p50 {ms:.1f} ms ({label}): target <= {TARGET_MS:.0f} ms "
            f"{verdict(ms <= TARGET_MS)}"
        )


if __name__ == "__main__":
    main()
