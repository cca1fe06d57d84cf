"""Observability for the backend: JSON logs, Prometheus metrics, request timing.

Wired at the composition root (``create_app``): :func:`configure_logging` once per process; one
:class:`Metrics` on the app's own ``CollectorRegistry``, fed by ``Dependency.bind(...,
observer=metrics.observer)`` and reading the policy registry, the health checker and the pool at
scrape time; :class:`RequestMetricsMiddleware` around the app; :func:`render` behind ``/metrics``.
"""

from backend.observability.logging import NOISY_LOGGERS, JsonFormatter, configure_logging
from backend.observability.metrics import (
    BREAKER_STATE_VALUES,
    Metrics,
    MetricsObserver,
    PoolStats,
    S3Outcome,
    classify_outcome,
    render,
)
from backend.observability.middleware import UNMATCHED, RequestMetricsMiddleware

__all__ = [
    "BREAKER_STATE_VALUES",
    "NOISY_LOGGERS",
    "UNMATCHED",
    "JsonFormatter",
    "Metrics",
    "MetricsObserver",
    "PoolStats",
    "RequestMetricsMiddleware",
    "S3Outcome",
    "classify_outcome",
    "configure_logging",
    "render",
]
