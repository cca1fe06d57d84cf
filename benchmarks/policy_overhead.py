"""Success-path cost of the resilience policies, against a bare call and the Python peers.

All candidates run in one process, in interleaved rounds (the order shuffled every round, so drift
in CPU frequency or cache state hits every candidate alike); each figure is the median over rounds
of the mean ns per call within a round. "Overhead" is that figure minus the bare coroutine's.

    uv run python -m benchmarks.policy_overhead [--rounds 21] [--calls 20000]

Our policies run as the backend runs them: the breaker with its per-call ``timeout`` on, the retry
with its overall deadline on. Retry and breaker together are measured in both forms: as
``Dependency.call`` and as ``@retry_with_backoff`` stacked over ``@circuit_breaker`` (given a
registry, and following the process's default registry as the seed writes them). The peers run
with their defaults, which include no timeout. The "inside a request" candidate runs within a
request deadline shorter than the breaker's timeout (so every call is cut to it), as calls do in
the backend under ``QUESTCITY_REQUEST_TIMEOUT``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

from shared.resilience import (
    CircuitBreakerConfig,
    CircuitBreakerOpenError,
    Dependency,
    HealthChecker,
    PolicyRegistry,
    RetryConfig,
    circuit_breaker,
    request_deadline,
    retry_with_backoff,
)

Call = Callable[[], Awaitable[object]]


async def succeed() -> int:
    return 1


async def fail() -> int:
    raise ConnectionError("down")


@dataclass
class Candidate:
    label: str
    call: Call
    weight: float = 1.0
    """Fraction of --calls to run per round (the slow peers need fewer to be measured well)."""
    raises: type[BaseException] | tuple[type[BaseException], ...] | None = None
    scope: Callable[[], AbstractContextManager[object]] = field(default=nullcontext)
    """Entered once around each measured loop (a request deadline for the in-request case)."""


def ours(registry: PolicyRegistry) -> list[Candidate]:
    retry_cfg = RetryConfig(max_attempts=3, base_delay=0.5, max_delay=10.0, timeout=30.0)
    breaker_cfg = CircuitBreakerConfig(failure_threshold=3, recovery_timeout=30.0, timeout=10.0)
    retried = retry_with_backoff(retry_cfg, name="bench-retry", registry=registry)(succeed)
    broken = circuit_breaker("bench-breaker", breaker_cfg, registry=registry)(succeed)
    stacked = retry_with_backoff(retry_cfg, name="bench-stacked", registry=registry)(
        circuit_breaker("bench-stacked", breaker_cfg, registry=registry)(succeed)
    )
    # Without a registry argument, as the seed writes them: each call first checks that the
    # process's default registry has not changed (a running backend installs its own).
    following = circuit_breaker("bench-following", breaker_cfg)(succeed)
    stacked_following = retry_with_backoff(retry_cfg, name="bench-stacked-following")(
        circuit_breaker("bench-stacked-following", breaker_cfg)(succeed)
    )
    dependency = Dependency("bench-dependency", critical=True, retry=retry_cfg, breaker=breaker_cfg)
    direct = registry.circuit_breaker("bench-direct", breaker_cfg)

    async def through_breaker() -> int:
        return await direct.call(succeed)

    guarded = dependency.bind(check=succeed, checker=HealthChecker(), registry=registry)

    async def through_dependency() -> int:
        return await guarded.call(succeed)

    return [
        Candidate("ours: retry (deadline on)", retried),
        Candidate("ours: breaker.call (timeout on)", through_breaker),
        Candidate("ours: @circuit_breaker (timeout on)", broken),
        Candidate("ours: retry+breaker, Dependency.call", through_dependency),
        Candidate(
            "ours: retry+breaker, Dependency.call inside a request",
            through_dependency,
            scope=lambda: request_deadline(5.0),
        ),
        Candidate("ours: retry+breaker, stacked decorators", stacked),
        Candidate("ours: @circuit_breaker, following the default registry", following),
        Candidate(
            "ours: retry+breaker, stacked decorators, following the default registry",
            stacked_following,
        ),
    ]


def peers() -> list[Candidate]:
    import aiobreaker
    import circuitbreaker
    import purgatory
    import stamina
    import tenacity

    tenacity_retry = tenacity.retry(
        stop=tenacity.stop_after_attempt(3),
        wait=tenacity.wait_exponential_jitter(max=10.0),
        retry=tenacity.retry_if_exception_type((ConnectionError, TimeoutError)),
        reraise=True,
    )(succeed)
    stamina_retry = stamina.retry(on=(ConnectionError, TimeoutError), attempts=3, timeout=30.0)(
        succeed
    )
    aio = aiobreaker.CircuitBreaker(fail_max=3)
    purgatory_factory = purgatory.AsyncCircuitBreakerFactory(default_threshold=3)
    return [
        Candidate("tenacity: retry", tenacity_retry, weight=0.05),
        Candidate("stamina: retry", stamina_retry, weight=0.05),
        Candidate("aiobreaker: breaker", aio(succeed)),
        Candidate("purgatory: breaker", purgatory_factory(circuit="bench")(succeed)),
        Candidate("circuitbreaker: breaker", circuitbreaker.circuit(failure_threshold=3)(succeed)),
    ]


async def rejected(registry: PolicyRegistry) -> list[Candidate]:
    """Calls refused by an open breaker: what a request costs during an outage."""
    import aiobreaker
    import circuitbreaker
    import purgatory

    ours_open = registry.circuit_breaker("bench-open", CircuitBreakerConfig(timeout=10.0))
    ours_open.force_open()

    async def ours_rejected() -> int:
        return await ours_open.call(fail)

    aio = aiobreaker.CircuitBreaker(fail_max=1, timeout_duration=datetime.timedelta(hours=1))
    aio_call = aio(fail)
    cb_call = circuitbreaker.circuit(failure_threshold=1, recovery_timeout=3600)(fail)
    purgatory_factory = purgatory.AsyncCircuitBreakerFactory(default_threshold=1, default_ttl=3600)
    pg_call = purgatory_factory(circuit="bench-open")(fail)
    for opener in (aio_call, cb_call, pg_call):
        for _ in range(3):
            with contextlib.suppress(Exception):
                await opener()
    return [
        Candidate("ours: rejected (open)", ours_rejected, raises=CircuitBreakerOpenError),
        Candidate("aiobreaker: rejected (open)", aio_call, raises=Exception),
        Candidate("purgatory: rejected (open)", pg_call, raises=Exception),
        Candidate("circuitbreaker: rejected (open)", cb_call, raises=Exception),
    ]


async def measure(candidate: Candidate, calls: int) -> float:
    with candidate.scope():
        return await _measure(candidate, calls)


async def _measure(candidate: Candidate, calls: int) -> float:
    fn = candidate.call
    n = max(int(calls * candidate.weight), 200)
    if candidate.raises is None:
        started = time.perf_counter_ns()
        for _ in range(n):
            await fn()
    else:
        expected = candidate.raises
        started = time.perf_counter_ns()
        for _ in range(n):
            try:  # noqa: SIM105 - contextlib.suppress would add its own cost to every call
                await fn()
            except expected:
                pass
    return (time.perf_counter_ns() - started) / n


async def run(rounds: int, calls: int, seed: int) -> dict[str, float]:
    registry = PolicyRegistry()
    candidates = [
        Candidate("bare coroutine", succeed),
        *ours(registry),
        *peers(),
        *await rejected(registry),
    ]
    samples: dict[str, list[float]] = {c.label: [] for c in candidates}
    order = random.Random(seed)
    for candidate in candidates:  # warm-up: caches, specialisation, lazy imports
        await measure(candidate, calls // 10)
    for _ in range(rounds):
        order.shuffle(candidates)
        for candidate in candidates:
            samples[candidate.label].append(await measure(candidate, calls))
    return {label: statistics.median(values) for label, values in samples.items()}


def report(medians: dict[str, float]) -> str:
    bare = medians["bare coroutine"]
    lines = ["| candidate | ns per call (median) | overhead over bare, ns |", "|---|---:|---:|"]
    for label, value in medians.items():
        overhead = "—" if label == "bare coroutine" else f"{value - bare:,.0f}"
        lines.append(f"| {label} | {value:,.0f} | {overhead} |")
    ours_both = medians["ours: retry+breaker, Dependency.call"] - bare
    peer_singles = {
        label: value - bare
        for label, value in medians.items()
        if not label.startswith("ours") and "rejected" not in label and label != "bare coroutine"
    }
    cheapest_peer = min(peer_singles, key=peer_singles.__getitem__)
    lines += [
        "",
        f"Our retry+breaker overhead: {ours_both:,.0f} ns "
        f"(target <= 1,000 ns: {'met' if ours_both <= 1000 else 'NOT met'}); "
        f"cheapest peer single wrapper: {cheapest_peer} at {peer_singles[cheapest_peer]:,.0f} ns "
        f"({'ours is lower' if ours_both < peer_singles[cheapest_peer] else 'ours is NOT lower'}).",
    ]
    stacked = medians["ours: retry+breaker, stacked decorators"] - bare
    single = medians["ours: @circuit_breaker (timeout on)"] - bare
    lines.append(
        f"Stacked decorators: {stacked:,.0f} ns, {stacked - ours_both:+,.0f} ns against "
        f"Dependency.call and {stacked - single:+,.0f} ns against @circuit_breaker alone "
        "(a decorator forwards *args and **kwargs once more than a direct call does)."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--calls", type=int, default=20_000, help="calls per candidate per round")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    medians = asyncio.run(run(args.rounds, args.calls, args.seed))
    print(report(medians))


if __name__ == "__main__":
    main()
