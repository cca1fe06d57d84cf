"""Prometheus metrics for the backend, on a registry of the caller's (never the global one).

Two kinds of series:

- read **at scrape time** from the live objects, so they are never stale and cost nothing between
  scrapes: breaker state and call counts (from a :class:`PolicyRegistry`), each service's health
  status (from a :class:`HealthChecker`), the database pool figures (from a ``pool_stats``
  callable);
- **counted as things happen**, through :attr:`Metrics.observer` (a ``DependencyObserver``) and a
  few methods: breaker transitions, retries and give-ups, health-check durations and failures,
  pool exhaustion, S3 operations, HTTP request durations (:mod:`.middleware`).

The seed's recommended alerts, in PromQL over these series::

    # circuit breaker OPEN > 5 minutes. An OPEN breaker reads HALF_OPEN once its recovery timeout
    # has passed and flips back on a failed trial, so "not closed for 5 minutes" is the test:
    min_over_time(questcity_circuit_breaker_state[5m]) >= 1

    # health-check failure rate > 50 %
    rate(questcity_health_check_failures_total[5m])
      / rate(questcity_health_check_duration_seconds_count[5m]) > 0.5

    # database connection pool exhausted
    increase(questcity_db_pool_exhausted_total[5m]) > 0 or questcity_db_pool_waiting > 0

    # S3 operation failure rate > 30 %
    sum(rate(questcity_s3_operations_total{outcome!~"success|ignored"}[5m]))
      / sum(rate(questcity_s3_operations_total[5m])) > 0.3

Scrape-time reads touch the breakers and the checker, which live on the event loop: render from
the loop's thread (an ``async`` /metrics endpoint does), not from prometheus_client's threaded
``start_http_server``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Final, Literal, TypeVar, get_args

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from shared.resilience.circuit_breaker import BreakerMetrics, CircuitState, StateChange
from shared.resilience.errors import CallTimeoutError, CircuitBreakerOpenError
from shared.resilience.health_check import HealthChecker
from shared.resilience.health_report import CheckResult, HealthStatus
from shared.resilience.registry import PolicyRegistry
from shared.resilience.retry import RetryDetails

__all__ = [
    "BREAKER_STATE_VALUES",
    "Metrics",
    "MetricsObserver",
    "PoolStats",
    "S3Outcome",
    "classify_outcome",
    "render",
]

logger = logging.getLogger("backend.observability")

S = TypeVar("S")

PoolStats = Callable[[], Mapping[str, int]]
"""Returns the pool's figures: any of ``size``, ``checked_out``, ``overflow``, ``waiting``."""

S3Outcome = Literal["success", "failure", "timeout", "rejected", "ignored"]
"""``rejected``: refused by the open breaker; ``ignored``: a business answer (no such key), which
is neither a success nor a failure of S3 itself."""

_S3_OUTCOMES: Final = frozenset(get_args(S3Outcome))

BREAKER_STATE_VALUES: Final[Mapping[CircuitState, int]] = {
    CircuitState.CLOSED: 0,
    CircuitState.HALF_OPEN: 1,
    CircuitState.OPEN: 2,
}

_POOL_GAUGES: Final = (
    ("size", "questcity_db_pool_size", "Connections the database pool keeps open."),
    ("checked_out", "questcity_db_pool_checked_out", "Pool connections in use."),
    ("overflow", "questcity_db_pool_overflow", "Connections open beyond the pool size."),
    ("waiting", "questcity_db_pool_waiting", "Callers waiting for a pool connection."),
)

HEALTH_CHECK_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
HTTP_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip


def classify_outcome(error: BaseException | None) -> S3Outcome:
    """The outcome of a call that raised ``error`` (None: it succeeded), for the S3 counter.

    Business answers (``ignored``) cannot be told apart here; the caller knows which errors those
    are and records them itself.
    """
    if error is None:
        return "success"
    if isinstance(error, CircuitBreakerOpenError):
        return "rejected"
    if isinstance(error, CallTimeoutError | TimeoutError):
        return "timeout"
    if isinstance(error, LookupError):
        return "ignored"  # a missing object is an answer, not a failure of the service
    return "failure"


class MetricsObserver:
    """A ``DependencyObserver`` that counts retries, transitions and health-check results.

    Pass it as ``Dependency.bind(..., observer=metrics.observer)``; or, for a policy made by hand,
    add ``observer.on_retry`` to ``RetryConfig.hooks`` and ``breaker.add_listener(
    observer.on_transition)``. Attach each source once: a second attachment counts twice.
    """

    __slots__ = ("_metrics",)

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def on_retry(self, details: RetryDetails) -> None:
        if details.gave_up is None:
            self._metrics.retries.labels(details.name).inc()
        else:
            self._metrics.retry_give_ups.labels(details.name, details.gave_up).inc()

    def on_transition(self, change: StateChange) -> None:
        transitions = self._metrics.breaker_transitions
        transitions.labels(change.name, change.old.value, change.new.value).inc()

    def on_check(self, name: str, result: CheckResult) -> None:
        metrics = self._metrics
        metrics.health_check_duration.labels(name).observe(result.duration)
        failures = metrics.health_check_failures.labels(name)  # the series exists from the start
        if not result.ok:
            failures.inc()


class Metrics:
    """Every backend series, registered on ``registry``.

    ``policies`` (its breakers), ``checker`` (each service's status) and ``pool_stats`` are read at
    scrape time; a source not given is left out. ``pool_stats`` may also come later, through
    :meth:`set_pool_stats`. Registering two ``Metrics`` on one registry is an error (duplicated
    series).
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        policies: PolicyRegistry | None = None,
        checker: HealthChecker | None = None,
        pool_stats: PoolStats | None = None,
    ) -> None:
        self.registry = registry
        self._collector = _LiveCollector(policies, checker, pool_stats)
        # Registered first, so that a scrape reads the breakers (an OPEN breaker past its recovery
        # timeout turns HALF_OPEN when read) before the transitions counter is written out.
        registry.register(self._collector)
        self.breaker_transitions = Counter(
            "questcity_circuit_breaker_transitions",
            "Circuit breaker state transitions.",
            ("name", "from_state", "to_state"),
            registry=registry,
        )
        self.retries = Counter(
            "questcity_retries",
            "Retries made (failed attempts followed by another attempt).",
            ("policy",),
            registry=registry,
        )
        self.retry_give_ups = Counter(
            "questcity_retry_give_ups",
            "Calls a retry policy gave up on, by reason.",
            ("policy", "reason"),
            registry=registry,
        )
        self.health_check_duration = Histogram(
            "questcity_health_check_duration_seconds",
            "Duration of health checks.",
            ("service",),
            buckets=HEALTH_CHECK_BUCKETS,
            registry=registry,
        )
        self.health_check_failures = Counter(
            "questcity_health_check_failures",
            "Health checks that failed.",
            ("service",),
            registry=registry,
        )
        self.db_pool_exhausted = Counter(
            "questcity_db_pool_exhausted",
            "Times a caller timed out waiting for a database pool connection.",
            registry=registry,
        )
        self.s3_operations = Counter(
            "questcity_s3_operations",
            "S3 operations by outcome.",
            ("operation", "outcome"),
            registry=registry,
        )
        self.http_request_duration = Histogram(
            "questcity_http_request_duration_seconds",
            "HTTP request duration, by route template and final status.",
            ("method", "route", "status"),
            buckets=HTTP_BUCKETS,
            registry=registry,
        )
        self.observer = MetricsObserver(self)
        """A ``DependencyObserver`` feeding the event-driven series."""

    def set_pool_stats(self, pool_stats: PoolStats) -> None:
        """Read the pool's figures from ``pool_stats`` from now on (the pool is often made after
        the metrics)."""
        self._collector.pool_stats = pool_stats

    def on_pool_exhausted(self) -> None:
        """Count one pool timeout (SQLAlchemy raises ``sqlalchemy.exc.TimeoutError``)."""
        self.db_pool_exhausted.inc()

    def record_s3_operation(self, operation: str, outcome: S3Outcome) -> None:
        """Count one S3 call, e.g. ``record_s3_operation("put_object", classify_outcome(exc))``.

        ``operation`` should come from a fixed set of names (the client method), never from user
        input: every distinct value is a series.
        """
        if outcome not in _S3_OUTCOMES:
            raise ValueError(f"unknown S3 outcome {outcome!r}; one of {sorted(_S3_OUTCOMES)}")
        self.s3_operations.labels(operation, outcome).inc()


class _LiveCollector:
    """The series read from live objects at scrape time."""

    def __init__(
        self,
        policies: PolicyRegistry | None,
        checker: HealthChecker | None,
        pool_stats: PoolStats | None,
    ) -> None:
        self.policies = policies
        self.checker = checker
        self.pool_stats = pool_stats

    def describe(self) -> Iterable[Metric]:
        """The families this collector yields (so the registry can refuse duplicates)."""
        return [
            _breaker_state_family(),
            _breaker_calls_family(),
            _health_status_family(),
            *(GaugeMetricFamily(name, doc) for _, name, doc in _POOL_GAUGES),
        ]

    def collect(self) -> Iterable[Metric]:
        families: list[Metric] = []
        if self.policies is not None:
            families.extend(_guarded("circuit breakers", self._breakers, self.policies))
        if self.checker is not None:
            families.extend(_guarded("health checker", self._health, self.checker))
        if self.pool_stats is not None:
            families.extend(_guarded("database pool", self._pool, self.pool_stats))
        return families

    @staticmethod
    def _breakers(policies: PolicyRegistry) -> list[Metric]:
        state = _breaker_state_family()
        calls = _breaker_calls_family()
        for breaker in policies.circuit_breakers():
            m = breaker.metrics  # one snapshot: state and counts agree
            state.add_metric([m.name], BREAKER_STATE_VALUES[m.state])
            for outcome, count in _call_outcomes(m):
                calls.add_metric([m.name, outcome], count)
        return [state, calls]

    @staticmethod
    def _health(checker: HealthChecker) -> list[Metric]:
        family = _health_status_family()
        for name in checker.services():
            current = checker.service_status(name)
            for status in HealthStatus:
                family.add_metric([name, status.value], 1.0 if status is current else 0.0)
        return [family]

    @staticmethod
    def _pool(pool_stats: PoolStats) -> list[Metric]:
        stats = pool_stats()
        families: list[Metric] = []
        for key, name, doc in _POOL_GAUGES:
            value = stats.get(key)
            if value is not None:
                families.append(GaugeMetricFamily(name, doc, value=value))
        return families


def _guarded(what: str, read: Callable[[S], list[Metric]], source: S) -> list[Metric]:
    """A source that fails is left out of this scrape (and logged); the others still answer."""
    try:
        return read(source)
    except Exception:
        logger.warning(
            "metrics: reading the %s failed; its series are left out of this scrape",
            what,
            exc_info=True,
            extra={"event": "metrics_source_failed", "source": what},
        )
        return []


def _call_outcomes(m: BreakerMetrics) -> tuple[tuple[str, int], ...]:
    """Disjoint outcomes whose sum is ``total_calls`` (``failed_calls`` includes timeouts)."""
    return (
        ("success", m.successful_calls),
        ("failure", m.failed_calls - m.timed_out_calls),
        ("timeout", m.timed_out_calls),
        ("rejected", m.rejected_calls),
        ("ignored", m.ignored_calls),
        ("cancelled", m.cancelled_calls),
    )


def _breaker_state_family() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "questcity_circuit_breaker_state",
        "Circuit breaker state: 0 closed, 1 half_open, 2 open.",
        labels=("name",),
    )


def _breaker_calls_family() -> CounterMetricFamily:
    return CounterMetricFamily(
        "questcity_circuit_breaker_calls",
        "Calls through a circuit breaker, by outcome.",
        labels=("name", "outcome"),
    )


def _health_status_family() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "questcity_health_check_status",
        "1 for the service's current health status, 0 for the others.",
        labels=("service", "status"),
    )


def render(registry: CollectorRegistry) -> tuple[bytes, str]:
    """The Prometheus text exposition of ``registry``: (body, content type) for /metrics."""
    return generate_latest(registry), CONTENT_TYPE_LATEST
