"""The monitor's history store: check results, roll-ups, incidents and alerts.

Writers (the daemon; the TUI for resets and notes) use :class:`HistoryWriter`; readers (the TUI,
the status page) use :class:`HistoryReader` and the values in :mod:`monitor.store.models`.
"""

from monitor.store.engine import StoreURLError, create_schema, open_engine
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
from monitor.store.reader import HistoryReader
from monitor.store.writer import HistoryWriter

__all__ = [
    "TARGET_COMPONENT",
    "Alert",
    "AlertState",
    "BarSeries",
    "CheckRecord",
    "Component",
    "ComponentState",
    "HistoryReader",
    "HistoryWriter",
    "Incident",
    "IncidentEvent",
    "IncidentState",
    "LatencyPoint",
    "LatestCheck",
    "ServiceSample",
    "Status",
    "StoreURLError",
    "UptimeBar",
    "create_schema",
    "open_engine",
]
