"""``c``: check the selected component now, and record it as a manual check.

A target is probed through its health API (:func:`monitor.probe.probe`); a ``[[checks]]`` entry
is run by its kind (:class:`monitor.checks.run.CheckRunner`, or the runner the app was given).
Either way the record is marked manual: asked for by a person, it sets the component's current
state but stays out of roll-ups, uptime and the public latency chart (a cold check on demand is
not the service's latency). The engineer is told what it found, and whether it was written.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from monitor.checks.spec import Check
from monitor.config import Target
from monitor.probe import probe
from monitor.store import CheckRecord, Status, StoreError
from monitor.tui.checks import outcome_words
from monitor.tui.data import ComponentRow
from monitor.tui.formatting import millis

if TYPE_CHECKING:
    from monitor.tui.app import MonitorApp


def check_now(app: MonitorApp, row: ComponentRow) -> None:
    """Run the row's check (one at a time: a second ``c`` replaces a check still running)."""
    if not row.is_check:
        target = app.config.target(row.target)
        app.run_worker(check_target(app, target), group="check", exclusive=True)
        return
    try:
        check = app.config.check(row.target)
    except KeyError:
        app.tell(f"{row.title} is not in this TUI's monitor.toml: it cannot be run here.", "error")
        return
    app.run_worker(check_entry(app, check), group="check", exclusive=True)


async def check_target(app: MonitorApp, target: Target) -> None:
    record = await probe(app.http, target, token=target.token(app.environ), clock=app.clock)
    result = f"{record.status.value} in {millis(record.latency_ms)}"
    if record.error:
        result += f" ({record.error})"
    fine = record.status is Status.HEALTHY
    await _record(app, target.title, replace(record, manual=True), result, fine=fine)


async def check_entry(app: MonitorApp, check: Check) -> None:
    at = app.clock.wall()
    try:
        outcome = await app.check_runner.run(check)
    except Exception as error:  # a bug in one kind's run must not end the on-call's TUI
        app.tell(f"{check.title} could not be run ({type(error).__name__}).", "error")
        return
    fine = outcome.status is Status.HEALTHY and outcome.warning is None
    record = outcome.record(check, at, manual=True)
    await _record(app, check.title, record, outcome_words(outcome), fine=fine)


async def _record(
    app: MonitorApp, title: str, record: CheckRecord, result: str, *, fine: bool
) -> None:
    try:
        await app.writer.record_check(record)
    except StoreError as error:
        app.tell(
            f"Checked {title}: {result}, but could not write it to the history "
            f"({type(error).__name__}).",
            "error",
        )
        return
    app.tell(f"Checked {title}: {result}.", "information" if fine else "warning")
    app.refresh_now()
