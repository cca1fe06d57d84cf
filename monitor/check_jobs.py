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
missed-run self-alert.

The runner never raises for anything a check's target does. Should it raise or hang all the
same (a fault of ours), the run is cut off a little after its timeout and recorded ``unknown``
with one log line: one bad check never stops another, nor a target.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

import httpx

from monitor.checks.run import CheckRunner
from monitor.checks.spec import Check, Outcome
from monitor.schedule import first_runs as first_runs  # (re-exported: benchmarks.monitor_checks)
from monitor.store import CheckRecord, Status
from shared.resilience import within

if TYPE_CHECKING:
    from monitor.daemon import MonitorDaemon

logger = logging.getLogger("monitor")

RUN_GRACE = 1.0
"""Seconds past a check's timeout before a runner still running is cut off: the runner keeps
the timeout itself, so this is only ever reached by a fault of ours."""
NOT_LEADING = "this monitor no longer leads"
OVERRAN = "the monitor's run of this check did not end within its timeout"
FAILED = "the monitor could not run this check"


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
    return CheckRunner(
        daemon.clock,
        environ=daemon.environ,
        nameservers=daemon.config.dns_nameservers,
        transport=transport,
        max_connections=max_connections,
    )


class CheckJobs:
    """Runs the daemon's checks (:meth:`run`, a check job's body)."""

    def __init__(self, daemon: MonitorDaemon, runner: Runner) -> None:
        self._daemon = daemon
        self.runner = runner

    async def run(self, check: Check) -> CheckRecord:
        """One run of ``check``: its outcome stored, then judged, as a target's round is
        (:meth:`~monitor.daemon.MonitorDaemon.settle`)."""
        daemon = self._daemon
        clock = daemon.clock
        at = clock.wall()
        started = clock.monotonic()
        if daemon.lease_lost:  # a run that started as the scheduler was being paused
            return Outcome(Status.UNKNOWN, None, error=NOT_LEADING).record(check, at)
        # The wait for a slot is the monitor's load, not the check's: its latency is the
        # runner's own measure, from the run's start.
        async with daemon.probes:
            outcome = await self._outcome(check)
        return await daemon.settle(
            check, outcome.record(check, at), started, daemon.writer.record_check
        )

    async def _outcome(self, check: Check) -> Outcome:
        """The runner's outcome; ``unknown`` if it raised or overran (logged: a fault of ours)."""
        try:
            return await within(
                self.runner.run(check), check.timeout + RUN_GRACE, self._daemon.clock
            )
        except TimeoutError:
            logger.error(
                "the run of check %s did not end within its timeout: cut off",
                check.name,
                extra={"event": "check_overran", "target": check.name},
            )
            return Outcome(Status.UNKNOWN, None, error=OVERRAN)
        except Exception:
            logger.exception(
                "the check %s could not be run",
                check.name,
                extra={"event": "check_crashed", "target": check.name},
            )
            return Outcome(Status.UNKNOWN, None, error=FAILED)
