"""Observability for the backend: Prometheus metrics, request timing, and the process's name
(:class:`BackendInstance`); JSON logs come from ``shared.resilience.jsonlog``, shared with the
monitor.

Wired at the composition root (``create_app``): one
:class:`Metrics` on the app's own ``CollectorRegistry``, fed by ``Dependency.bind(...,
observer=metrics.observer)`` and reading the policy registry, the health checker and the pool at
scrape time; :class:`RequestMetricsMiddleware` around the app; :func:`render` behind ``/metrics``.
"""

from backend.observability.instance import BackendInstance, instance_of
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
    "UNMATCHED",
    "BackendInstance",
    "Metrics",
    "MetricsObserver",
    "PoolStats",
    "RequestMetricsMiddleware",
    "S3Outcome",
    "classify_outcome",
    "instance_of",
    "render",
]
