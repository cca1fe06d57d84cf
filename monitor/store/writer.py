"""The write side of the store's SQL adapter: the daemon's (and the TUI's resets and notes).

:class:`HistoryWriter` implements :class:`monitor.store.ports.HistoryWrite` from one module per
noun (:mod:`monitor.store.writing`): checks with their roll-ups and component states, incidents
(the daemon's and people's), maintenance windows and subscribers' deliveries, alerts, the
catalogue, retention. Its errors are :mod:`monitor.store.errors`.

Imported by its own path (``from monitor.store.writer import HistoryWriter``): the package
``monitor.store`` exposes the read side only, so a reader never loads this.
"""

from __future__ import annotations

from monitor.store.ports import HistoryWrite
from monitor.store.writing.alerts import AlertWrites
from monitor.store.writing.base import Fence
from monitor.store.writing.catalogue import CatalogueWrites
from monitor.store.writing.checks import REFUSED, CheckWrites, refused_check
from monitor.store.writing.public import PublicWrites
from monitor.store.writing.replicas import ReplicaWrites
from monitor.store.writing.retention import RetentionWrites
from monitor.store.writing.written import WrittenIncidentWrites

__all__ = ["REFUSED", "Fence", "HistoryWriter", "refused_check"]


class HistoryWriter(
    CheckWrites,
    ReplicaWrites,
    WrittenIncidentWrites,
    PublicWrites,
    AlertWrites,
    CatalogueWrites,
    RetentionWrites,
):
    """Writes to the store: ``HistoryWriter(engine, batch_window=..., max_batch=..., clock=...,
    fence=...)``.

    Checks are group-committed (:class:`~monitor.store.writing.checks.CheckWrites`); each other
    write is one transaction. Every method raises a :class:`~monitor.store.errors.StoreError`
    if the store fails it. With a ``fence`` (:data:`~monitor.store.writing.base.Fence`) every
    transaction runs it first, and one it refuses raises
    :class:`~monitor.store.errors.LeaseLost` with nothing written."""


def _implements_the_port(writer: HistoryWriter) -> HistoryWrite:
    return writer  # mypy checks that the adapter has every method of the port
