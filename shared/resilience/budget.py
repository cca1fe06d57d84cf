"""Retry budgets: retries may be at most a fraction of calls, plus a small floor per second.

Without a budget, every caller retrying an outage multiplies the load on the dependency by its
``max_attempts`` exactly when it can least take it (a retry storm). Like Finagle's ``RetryBudget``
and Envoy's retry budgets, a :class:`RetryBudget` allows, over the last ``ttl`` seconds,
``ratio * calls + min_per_second * ttl`` retries; past that a failing call is not retried.

The success path only counts (``record_call``); the sliding window, approximated with two fixed
windows the way rate limiters do, is rolled on the failure path. The approximation only ever errs
toward fewer retries: calls counted before a long quiet spell are forgotten, not carried over.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.resilience.clock import Clock


@dataclass(frozen=True, slots=True)
class RetryBudgetConfig:
    ratio: float = 0.2
    """Retries allowed per call made (0.2: one retry for every five calls)."""
    min_per_second: float = 10.0
    """Retries allowed per second regardless of traffic, so rare callers can still retry."""
    ttl: float = 10.0
    """Seconds over which calls and retries are counted."""

    def __post_init__(self) -> None:
        if self.ratio < 0:
            raise ValueError(f"RetryBudgetConfig.ratio must be >= 0, got {self.ratio!r}")
        if self.min_per_second < 0:
            raise ValueError(
                f"RetryBudgetConfig.min_per_second must be >= 0, got {self.min_per_second!r}"
            )
        if self.ttl <= 0:
            raise ValueError(f"RetryBudgetConfig.ttl must be > 0, got {self.ttl!r}")


class RetryBudget:
    """One policy's budget, shared by all of its callers."""

    __slots__ = (
        "_clock",
        "_prev_calls",
        "_prev_retries",
        "_retries",
        "_window_start",
        "calls",
        "config",
        "exhausted",
    )

    def __init__(self, config: RetryBudgetConfig, clock: Clock) -> None:
        self.config = config
        self._clock = clock
        self._window_start = clock.monotonic()
        self.calls = 0
        """Calls counted in the current window (hot paths may increment it directly)."""
        self._retries = 0
        self._prev_calls = 0.0
        self._prev_retries = 0.0
        self.exhausted = 0
        """How many retries were refused."""

    def record_call(self) -> None:
        self.calls += 1

    def try_spend(self) -> bool:
        """Take one retry from the budget; False (and nothing taken) when there is none left."""
        now = self._clock.monotonic()
        self._roll(now)
        ttl = self.config.ttl
        weight = 1.0 - (now - self._window_start) / ttl
        calls = self.calls + self._prev_calls * weight
        retries = self._retries + self._prev_retries * weight
        allowed = self.config.ratio * calls + self.config.min_per_second * ttl
        if retries + 1.0 > allowed:
            self.exhausted += 1
            return False
        self._retries += 1
        return True

    def _roll(self, now: float) -> None:
        elapsed = now - self._window_start
        ttl = self.config.ttl
        if elapsed < ttl:
            return
        if elapsed < 2 * ttl:
            self._prev_calls, self._prev_retries = float(self.calls), float(self._retries)
            self._window_start += ttl
        else:
            self._prev_calls = self._prev_retries = 0.0
            self._window_start = now
        self.calls = 0
        self._retries = 0
