"""The daemon's ``[[checks]]`` jobs (issue #16, :class:`CheckJobs`): each entry's runs, recorded
and judged as a target's round is.

One APScheduler job per check (``check:NAME``, as a target's: the same ``max_instances``,
``coalesce`` and grace, its first run staggered with the targets'). A run takes a slot of the
daemon's probe limit (one limit: the monitor's load is one load, whatever it checks), runs
through the :class:`~monitor.checks.run.CheckRunner` within the check's ``timeout``, and is
stored through the same group commit as the targets' checks — fenced, rolled up, in the day
strips and the component's state. Then, as after a target's round: the maintenance windows,
the incidents (**public checks only**: an incident is the public's story, and a private check's
trouble is its operators' alone — it pages them and is told nowhere else), the alerts
(``check_failing``, ``certificate_expiring``: :func:`monitor.alerting.rules.judge_check`) and the
missed-run self-alert. A check made private while its automatic incident is open has that
incident closed when the daemon starts (:func:`close_private_incidents`).

The runner never raises for anything a check's target does. Should it raise or hang all the
same (a fault of ours), the run is cancelled :data:`RUN_GRACE` after its timeout and recorded
``unknown`` with one log line: one bad check never stops another, nor a target. A run that does
not end on its cancellation either (it swallowed it) is not waited for: after
:data:`CANCEL_GRACE` more it is left behind — held, logged when it ends at last, cancelled again
at the daemon's stop — and the job records its ``unknown`` and goes on. While it is left behind,
that check's runs start no other beside it (at most one per check) and are recorded ``unknown``
(:data:`LEFT_RUNNING`), so ``check_failing`` pages its operators.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import TYPE_CHECKING, Protocol

import httpx

from monitor.checks.run import CheckRunner
from monitor.checks.spec import Check, Outcome
from monitor.config import MonitorConfig
from monitor.incidents import OPEN_READ
from monitor.store import (
    TARGET_COMPONENT,
    CheckRecord,
    HistoryRead,
    HistoryWrite,
    IncidentOrigin,
    IncidentState,
    Status,
)
from shared.resilience import wait_within

if TYPE_CHECKING:
    from monitor.daemon import MonitorDaemon

logger = logging.getLogger("monitor")

RUN_GRACE = 1.0
"""Seconds past a check's timeout before a runner still running is cancelled: the runner keeps
the timeout itself, so this is only ever reached by a fault of ours."""
CANCEL_GRACE = 1.0
"""Seconds a cancelled run has to end before it is left behind (the job no longer waits)."""
NOT_LEADING = "this monitor no longer leads"
OVERRAN = "the monitor's run of this check did not end within its timeout"
FAILED = "the monitor could not run this check"
LEFT_RUNNING = "the monitor's last run of this check has not ended"


class Runner(Protocol):
    """What runs checks (:class:`~monitor.checks.run.CheckRunner`; a test's fake)."""

    async def run(self, check: Check) -> Outcome:
        """One run of ``check``, within its timeout."""

    async def aclose(self) -> None:
        """Close what it holds (its HTTP clients)."""


def default_runner(
    daemon: MonitorDaemon, transport: httpx.AsyncBaseTransport | None, max_connections: int
) -> Runner:
    """The runner a daemon makes for itself: its clock, environment and name servers, and the
    transport its probes use (a test's network)."""
    runner = CheckRunner(
        daemon.clock,
        environ=daemon.environ,
        nameservers=daemon.config.dns_nameservers,
        transport=transport,
        max_connections=max_connections,
    )
    runner.load({check.kind for check in daemon.config.checks})
    return runner


class CheckJobs:
    """Runs the daemon's checks (:meth:`run`, a check job's body)."""

    def __init__(self, daemon: MonitorDaemon, runner: Runner) -> None:
        self._daemon = daemon
        self.runner = runner
        self._left: dict[str, asyncio.Task[Outcome]] = {}
        """Runs that ignored their cancellation, by check (at most one each; a strong
        reference until they end)."""

    async def run(self, check: Check) -> CheckRecord:
        """One run of ``check``: its outcome stored, then judged, as a target's round is
        (:meth:`~monitor.daemon.MonitorDaemon.settle`)."""
        daemon = self._daemon
        clock = daemon.clock
        at = clock.wall()
        started = clock.monotonic()
        if daemon.lease_lost:  # a run that started as the scheduler was being paused
            return Outcome(Status.UNKNOWN, None, error=NOT_LEADING).record(check, at)
        if check.name in self._left:  # bounded: no second run beside one left behind
            outcome = Outcome(Status.UNKNOWN, None, error=LEFT_RUNNING)
        else:
            # The wait for a slot is the monitor's load, not the check's: its latency is the
            # runner's own measure, from the run's start.
            async with daemon.probes:
                outcome = await self._outcome(check)
        return await daemon.settle(
            check, outcome.record(check, at), started, daemon.writer.record_check
        )

    async def _outcome(self, check: Check) -> Outcome:
        """The runner's outcome; ``unknown`` if it raised or overran (logged: a fault of ours).
        A run that overran is cancelled, and left behind if that does not end it."""
        clock = self._daemon.clock
        run = asyncio.ensure_future(self.runner.run(check))
        try:
            late = await wait_within({run}, check.timeout + RUN_GRACE, clock)
            if late:
                run.cancel()
                if await wait_within({run}, CANCEL_GRACE, clock):
                    self._leave(check.name, run)
        except BaseException:  # this job cancelled (the daemon stopping): its run with it
            run.cancel()
            raise
        if not run.done() or run.cancelled():
            logger.error(
                "the run of check %s did not end within its timeout: cut off",
                check.name,
                extra={"event": "check_overran", "target": check.name},
            )
            return Outcome(Status.UNKNOWN, None, error=OVERRAN)
        try:
            return run.result()
        except Exception:
            logger.exception(
                "the check %s could not be run",
                check.name,
                extra={"event": "check_crashed", "target": check.name},
            )
            return Outcome(Status.UNKNOWN, None, error=FAILED)

    def _leave(self, name: str, run: asyncio.Task[Outcome]) -> None:
        logger.error(
            "the run of check %s ignored its cancellation: left behind",
            name,
            extra={"event": "check_left_running", "target": name},
        )
        self._left[name] = run
        run.add_done_callback(functools.partial(self._ended, name))

    def _ended(self, name: str, run: asyncio.Task[Outcome]) -> None:
        """A run left behind ended at last: the check runs again (what it said is stale)."""
        if self._left.get(name) is run:
            del self._left[name]
        error = None if run.cancelled() else run.exception()
        logger.warning(
            "the run of check %s left behind has ended",
            name,
            exc_info=error,
            extra={"event": "check_left_ended", "target": name},
        )

    async def aclose(self) -> None:
        """Cancel the runs left behind again (waiting :data:`CANCEL_GRACE` for them), then close
        the runner."""
        left = set(self._left.values())
        for run in left:
            run.cancel()
        if left:
            await wait_within(left, CANCEL_GRACE, self._daemon.clock)
        await self.runner.aclose()


async def close_private_incidents(
    config: MonitorConfig, reader: HistoryRead, writer: HistoryWrite, at: float
) -> list[int]:
    """Close the automatic incidents still open of checks that are private now (made private
    while their incident was open): an internal note says why, then the incident is resolved.
    Their ids, in the order read.

    Why at start, rather than feeding a private check's runs to the incident tracker until its
    incident resolves: a check's ``public`` changes only with the config, which the daemon reads
    at start (a new leader's start included), so this is the one moment it can change; a private
    check has no incident in the model (its trouble is its operators', paged by
    ``check_failing``), whereas fed on, it would keep writing state changes into a story the
    public no longer sees, and keep it open as long as the check fails — for ever, perhaps; and
    it costs nothing per run. An incident a person took over is left alone: theirs to close."""
    private = {check.name: check for check in config.checks if not check.public}
    if not private:
        return []
    closed: list[int] = []
    for incident in await reader.incidents(state=IncidentState.OPEN, limit=OPEN_READ):
        check = private.get(incident.target)
        if (
            check is None
            or incident.service != TARGET_COMPONENT
            or incident.origin is IncidentOrigin.WRITTEN
            or incident.taken_over
        ):
            continue
        await writer.add_note(
            incident.id,
            f"{check.title} is no longer public (its check was made private): the monitor "
            "closes this incident; the check's alerts go on.",
            public=False,
            actor=None,
            at=at,
        )
        await writer.resolve_incident(incident.id, at, f"{check.title} is no longer public.")
        logger.info(
            "incident %d closed: %s is no longer public",
            incident.id,
            check.name,
            extra={"event": "incident_private", "incident": incident.id, "target": check.name},
        )
        closed.append(incident.id)
    return closed
