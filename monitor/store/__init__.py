"""The monitor's history store: check results, roll-ups, incidents and alerts.

A port with adapters. Readers (the TUI, the status page) are written against
:class:`~monitor.store.ports.HistoryRead`, served by :class:`HistoryReader`; the writer (the
daemon; the TUI for checks, resets and notes) against :class:`~monitor.store.ports.HistoryWrite`,
served by :class:`monitor.store.writer.HistoryWriter`, which is imported from its own module: this
package exposes the read side, the values (:mod:`monitor.store.models`) and the errors
(:mod:`monitor.store.errors`) only, so a reader never loads the write side. Whatever the database
raises reaches callers as a :class:`StoreError`.

The values, the errors and the ports are plain Python; what needs SQLAlchemy (the reader, the
engine) is imported on first use, so ``monitor.store.settings`` and ``monitor.store.errors`` stay
cheap to import (a config check, a migration script).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from monitor.store.errors import (
    LeaseLost,
    StoreError,
    StoreNotInitialised,
    StoreSchemaMismatch,
    StoreUnavailable,
    StoreURLError,
)
from monitor.store.models import (
    DECLARED_IMPACTS,
    PHASES,
    TARGET_COMPONENT,
    Alert,
    AlertState,
    BarSeries,
    CheckRecord,
    Component,
    ComponentState,
    Incident,
    IncidentComponent,
    IncidentEvent,
    IncidentOrigin,
    IncidentState,
    Instance,
    LatencyPoint,
    LatestCheck,
    LeaderLease,
    ReplicaCheck,
    ReplicaState,
    ServiceSample,
    Silence,
    Status,
    UptimeBar,
    component_key,
    split_component_key,
)
from monitor.store.ports import HistoryRead, HistoryWrite
from monitor.store.public_models import (
    Delivery,
    DeliveryState,
    Maintenance,
    MaintenanceEvent,
    PublicMessage,
    SubscribeOutcome,
    Subscriber,
    SubscriberKind,
)

if TYPE_CHECKING:
    from monitor.store.engine import create_schema, open_engine
    from monitor.store.reader import HistoryReader, open_reader

_LAZY = {
    "HistoryReader": "monitor.store.reader",
    "open_reader": "monitor.store.reader",
    "create_schema": "monitor.store.engine",
    "open_engine": "monitor.store.engine",
}

__all__ = [
    "DECLARED_IMPACTS",
    "PHASES",
    "TARGET_COMPONENT",
    "Alert",
    "AlertState",
    "BarSeries",
    "CheckRecord",
    "Component",
    "ComponentState",
    "Delivery",
    "DeliveryState",
    "HistoryRead",
    "HistoryReader",
    "HistoryWrite",
    "Incident",
    "IncidentComponent",
    "IncidentEvent",
    "IncidentOrigin",
    "IncidentState",
    "Instance",
    "LatencyPoint",
    "LatestCheck",
    "LeaderLease",
    "LeaseLost",
    "Maintenance",
    "MaintenanceEvent",
    "PublicMessage",
    "ReplicaCheck",
    "ReplicaState",
    "ServiceSample",
    "Silence",
    "Status",
    "StoreError",
    "StoreNotInitialised",
    "StoreSchemaMismatch",
    "StoreURLError",
    "StoreUnavailable",
    "SubscribeOutcome",
    "Subscriber",
    "SubscriberKind",
    "UptimeBar",
    "component_key",
    "create_schema",
    "open_engine",
    "open_reader",
    "split_component_key",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
