"""The read side of the store's SQL adapter: what the TUI and the status page show.

:class:`HistoryReader` implements :class:`monitor.store.ports.HistoryRead` from one module per
noun (:mod:`monitor.store.reading`); every read goes through one funnel that turns the
database's errors into :mod:`monitor.store.errors`. The status page imports this side (and the
models) and nothing of the writer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from monitor.store.engine import open_engine, thread_engine
from monitor.store.ports import HistoryRead
from monitor.store.reading.alerts import AlertReads
from monitor.store.reading.base import DAY, HOUR
from monitor.store.reading.catalogue import CatalogueReads
from monitor.store.reading.checks import CheckReads
from monitor.store.reading.day_strips import STRIP_DAYS, DayStripReads, settled_day
from monitor.store.reading.incidents import IncidentReads
from monitor.store.reading.public import PublicReads
from monitor.store.reading.replicas import ReplicaReads
from monitor.store.reading.rollups import ROLLUP_FIGURES, RollupReads

__all__ = [
    "DAY",
    "HOUR",
    "ROLLUP_FIGURES",
    "STRIP_DAYS",
    "HistoryReader",
    "open_reader",
    "settled_day",
]


class HistoryReader(
    CatalogueReads,
    CheckReads,
    RollupReads,
    DayStripReads,
    IncidentReads,
    AlertReads,
    ReplicaReads,
    PublicReads,
):
    """Reads the store (``HistoryReader(engine, threaded=...)``). Each method is one read on one
    connection, and raises a :class:`~monitor.store.errors.StoreError` if the store fails it
    (:class:`~monitor.store.errors.StoreNotInitialised` where it has no tables yet)."""


@asynccontextmanager
async def open_reader(url: str) -> AsyncIterator[HistoryReader]:
    """A reader of the store at ``url`` for a process that only reads it (the status page, the
    TUI): read-only engines, reads of a SQLite file each whole in a worker thread; both engines
    disposed of on the way out."""
    engine = open_engine(url, read_only=True)
    threaded = thread_engine(url)
    try:
        yield HistoryReader(engine, threaded=threaded)
    finally:
        try:
            await engine.dispose()
        finally:
            if threaded is not None:
                threaded.dispose()


def _implements_the_port(reader: HistoryReader) -> HistoryRead:
    return reader  # mypy checks that the adapter has every method of the port
