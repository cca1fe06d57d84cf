"""Synthetic history for the benchmarks that read the monitor's store: roll-up rows as the
daemon's ``HistoryWriter`` would leave them, the same numbers for the same seed in every run."""

from __future__ import annotations

from typing import Any

from monitor.store import Status


def synthetic_rollup(
    target: str, service: str, period: str, start: int, seed: int
) -> dict[str, Any]:
    """One ``rollups`` row: a check every 10 s, a bad period now and then."""
    checks = 8640 if period == "day" else 360
    down = (seed * 7919) % 5 if seed % 11 == 0 else 0
    worst = Status.UNHEALTHY if down else (Status.DEGRADED if seed % 17 == 0 else Status.HEALTHY)
    latency = 30.0 + (seed * 31) % 50
    return {
        "target": target,
        "service": service,
        "period": period,
        "start": start,
        "checks": checks,
        "up": checks - down,
        "worst": worst.severity,
        "latency_sum": latency * checks,
        "latency_count": checks,
        "latency_max": latency * 4,
    }
