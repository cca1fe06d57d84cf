"""The monitor's history store: check results, roll-ups, incidents and alerts.

A port with adapters. Readers (the TUI, the status page) are written against
:class:`~monitor.store.ports.HistoryRead`, served by :class:`HistoryReader`; the writer (the
daemon; the TUI for checks, resets and notes) against :class:`~monitor.store.ports.HistoryWrite`,
served by :class:`monitor.store.writer.HistoryWriter`, which is imported from its own module: this
package exposes the read side, the values (:mod:`monitor.store.models`) and the errors
(:mod:`monitor.store.errors`) only, so a reader never loads the write side. Whatever the database
raises reaches callers as a :class:`StoreError`.
"""

from monitor.store.engine import create_schema, open_engine
from monitor.store.errors import (
    StoreError,
    StoreNotInitialised,
    StoreSchemaMismatch,
    StoreUnavailable,
    StoreURLError,
)
from monitor.store.models import (
    TARGET_COMPONENT,
    Alert,
    AlertState,
    BarSeries,
    CheckRecord,
    Component,
    ComponentState,
    Incident,
    IncidentEvent,
    IncidentState,
    LatencyPoint,
    LatestCheck,
    ServiceSample,
    Status,
    UptimeBar,
)
from monitor.store.ports import HistoryRead, HistoryWrite
from monitor.store.reader import HistoryReader, open_reader

__all__ = [
    "TARGET_COMPONENT",
    "Alert",
    "AlertState",
    "BarSeries",
    "CheckRecord",
    "Component",
    "ComponentState",
    "HistoryRead",
    "HistoryReader",
    "HistoryWrite",
    "Incident",
    "IncidentEvent",
    "IncidentState",
    "LatencyPoint",
    "LatestCheck",
    "ServiceSample",
    "Status",
    "StoreError",
    "StoreNotInitialised",
    "StoreSchemaMismatch",
    "StoreURLError",
    "StoreUnavailable",
    "UptimeBar",
    "create_schema",
    "open_engine",
    "open_reader",
]
