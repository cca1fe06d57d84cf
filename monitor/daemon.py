"""The monitor daemon: check → persist → incidents → alerts, once at start and then on a ticker.

One APScheduler 3.x ``AsyncIOScheduler`` job per target and per ``[[checks]]`` entry
(``max_instances=1``, ``coalesce=True``, ``misfire_grace_time`` of one interval, first run at
start; a check's run is :mod:`monitor.check_jobs`'), and one hourly retention job. A check that
fails is data; nothing a target does can stop the daemon.

A target's run is one round over its replicas (ARCHITECTURE §9): discover them (a ``dns:``
entry is looked up again; on a failed lookup the last known set stands, so a DNS hiccup never
retires anything), probe each concurrently under the daemon's probe limit, aggregate
(:mod:`monitor.aggregate`), and store the aggregate with every replica's own check in one
transaction; replicas that left the set are retired. A fleet of replicas changes nothing in the
scheduling: still one job per target, its replicas probed within it.

Under a leadership lease every write is fenced (``fence``): a write refused because another
monitor leads raises ``LeaseLost``, which stops this daemon's checks and calls ``on_lease_lost``.

The first runs are staggered (:mod:`monitor.schedule`): started at one instant, a thousand
checks would queue in the HTTP client's pool, time out there, and stay in phase for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from datetime import UTC, datetime

import httpx
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from monitor.aggregate import aggregate
from monitor.alerts import AlertEngine
from monitor.catalogue import Catalogue
from monitor.check_jobs import (
    NOT_LEADING,
    CheckJobs,
    Runner,
    close_private_incidents,
    default_runner,
)
from monitor.checks.spec import Check
from monitor.config import MonitorConfig, Target
from monitor.discovery import Discovery, Replica
from monitor.incidents import IncidentTracker
from monitor.maintenance_watch import MaintenanceWatch
from monitor.notifiers import Dispatcher, build_sinks
from monitor.probe import probe_replica
from monitor.public.sender import SCHEDULE, build_sender
from monitor.replica_sets import ReplicaSets
from monitor.schedule import first_retention, first_runs
from monitor.self_alerts import SelfAlerts
from monitor.store import (
    CheckRecord,
    HistoryReader,
    LeaseLost,
    ReplicaCheck,
    Status,
    StoreError,
    create_schema,
    open_engine,
)
from monitor.store.writer import Fence, HistoryWriter
from monitor.store_log import StoreLog
from shared.resilience import SYSTEM_CLOCK, Clock, wait_within

logger = logging.getLogger("monitor")

RETENTION_JOB = "retention"
MAX_CONCURRENT_CHECKS = 256
"""Probes in flight at once; the HTTP client's pool is as large, so no probe waits in it."""
KEEPALIVE_CONNECTIONS = 0
"""A fresh connection per check. At intervals of 5 s and more httpx would not reuse one anyway
(its keep-alive expiry is 5 s); each idle connection kept costs a syscall per request (httpcore
checks every pooled connection on every request: 20 idle ones cost a tenth of a core at 1,000
targets); and a kept-alive connection the target closes as it is reused would read as a failed
check."""
WRITE_WINDOW = 0.25
"""Seconds a finished check waits for others to share its transaction: at a hundred checks a
second, one transaction rather than 25 (0.25 s against 0.1 s took 1,000 targets from 39-41 %
to 33 % of a core); nothing a person could notice at 10 s intervals."""
DISCOVERY_FAILED = "replicas unknown: DNS lookup failed"
"""The round's error when a target's replicas could not be looked up and none were known yet
(no host names: the error is shown beyond operators)."""


class MonitorDaemon:
    def __init__(
        self,
        config: MonitorConfig,
        *,
        clock: Clock = SYSTEM_CLOCK,
        transport: httpx.AsyncBaseTransport | None = None,
        environ: Mapping[str, str] | None = None,
        max_concurrent_checks: int = MAX_CONCURRENT_CHECKS,
        write_window: float = WRITE_WINDOW,
        fence: Fence | None = None,
        on_lease_lost: Callable[[], None] | None = None,
        discovery: Discovery | None = None,
        check_runner: Runner | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.environ = environ
        self.engine = open_engine(config.storage_url)
        self.writer = HistoryWriter(
            self.engine, batch_window=write_window, clock=clock, fence=fence
        )
        self.discovery = discovery or Discovery(config.dns_nameservers)
        self.on_lease_lost = on_lease_lost
        self.lease_lost = False
        """Set once a fenced write found that another monitor leads; no check runs after it."""
        self.reader = HistoryReader(self.engine)
        self.replicas = ReplicaSets(self.discovery, self.writer, clock)
        self.client = httpx.AsyncClient(
            transport=transport,
            follow_redirects=True,
            limits=httpx.Limits(
                max_connections=max_concurrent_checks,
                max_keepalive_connections=KEEPALIVE_CONNECTIONS,
            ),
        )
        self.probes = asyncio.Semaphore(max_concurrent_checks)
        """Probes and ``[[checks]]`` runs in flight at once (one limit for both)."""
        self.dispatcher = Dispatcher(
            build_sinks(config.notifiers, self.client, clock, environ=environ)
        )
        self.alerts = AlertEngine(config, self.writer, self.dispatcher, self.reader)
        # The tracker and the watcher share the engine's read of the windows (issue #15).
        self.incidents = IncidentTracker(
            config, self.writer, reader=self.reader, quiet=self.alerts.quiet
        )
        self.maintenance = MaintenanceWatch(self.alerts.quiet, self.writer)
        """Marks the windows started and completed (this daemon runs only while it leads)."""
        self.self_alerts = SelfAlerts(config, self.alerts, self.writer, environ=environ)
        """The monitor's alerts about itself: tokens, missed runs, the store (issue #14)."""
        self.public_sender = build_sender(
            config.public, self.reader, self.writer, clock=clock, environ=environ
        )  # subscribers' e-mails and webhooks (issue #15); None when subscriptions are off
        self.scheduler: AsyncIOScheduler | None = None
        self.missed = 0
        """Runs APScheduler skipped: late past their grace time, or the last one still running."""
        self.checks = 0
        self.catalogue = Catalogue(config)
        runner = check_runner
        if runner is None and config.checks:
            runner = default_runner(self, transport, max_concurrent_checks)
        self.check_jobs = None if runner is None else CheckJobs(self, runner)
        """Runs the ``[[checks]]`` (None: there are none)."""
        self.store_log = StoreLog()
        """The store refusing checks, in the log: one traceback per outage."""
        self._running: set[asyncio.Task[object]] = set()
        self._started: dict[str, float] = {}
        """When each target's (or check's) run in progress started (monotonic), to tell a slow
        target's round from a stuck one."""
        self._bounds = {job.name: job.timeout + job.interval for job in self._jobs}
        """How long a run of each job may go on before a skipped run is the monitor's fault."""
        self._reporting: set[asyncio.Task[None]] = set()
        """Alerts of missed runs being written (a strong reference until done)."""

    async def prepare(self) -> None:
        """Upgrade the store's schema (its migrations), write the component catalogue, close
        the incidents of checks made private, pick up open incidents and alerts."""
        await create_schema(self.engine)
        await self.writer.sync_components(self.catalogue.configured)
        # (the sync keeps the critical flags: what the store has is what this daemon knows)
        self.catalogue.stored(await self.reader.components())
        await close_private_incidents(self.config, self.reader, self.writer, self.clock.wall())
        await self.incidents.resume(self.reader)
        await self.alerts.resume(self.reader, at=self.clock.wall())
        names = {t.name for t in self.config.targets}
        for state in await self.reader.replicas():
            if state.target in names:
                self.replicas.stored(state.target, state.replica)

    async def start(self) -> None:
        await self.prepare()
        scheduler = AsyncIOScheduler(timezone=UTC)
        now = datetime.now(UTC)
        first = first_runs(self._jobs, now)
        for job in self._jobs:
            scheduler.add_job(
                self.check_target if isinstance(job, Target) else self.run_check,
                "interval",
                args=[job],
                id=f"check:{job.name}",
                seconds=job.interval,
                next_run_time=first[job.name],
                max_instances=1,
                coalesce=True,
                misfire_grace_time=max(1, round(job.interval)),
            )
        scheduler.add_job(
            self.apply_retention,
            "interval",
            id=RETENTION_JOB,
            hours=1,
            next_run_time=first_retention(now),
            max_instances=1,
            coalesce=True,
            # A run the scheduler gets to late (its loop busy with checks) is still worth doing.
            misfire_grace_time=3600,
        )
        if self.public_sender is not None:
            scheduler.add_job(self.send_public, "interval", id="public-sender", **SCHEDULE)
        scheduler.add_listener(self._on_missed, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
        scheduler.start()
        self.scheduler = scheduler
        targets, checks = len(self.config.targets), len(self.config.checks)
        logger.info(
            "monitoring %d target(s) and %d check(s)",
            targets,
            checks,
            extra={"event": "monitor_started", "targets": targets, "checks": checks},
        )

    @property
    def _jobs(self) -> tuple[Target | Check, ...]:
        return (*self.config.targets, *self.config.checks)

    def _on_missed(self, event: JobEvent) -> None:
        self.missed += 1
        logger.warning(
            "check %s missed its run",
            event.job_id,
            extra={"event": "check_missed", "job": event.job_id},
        )
        if self.lease_lost or self._slow_target(event):
            return
        at = self.clock.wall()
        missed = self.self_alerts.missed(event.job_id, at)
        if missed is not None:
            # The listener is called on the loop, by the scheduler; the alert is written now, not
            # at the target's next run: a run still stuck would never get to it.
            self._spawn(self._report_missed(*missed, at))

    def _spawn(self, work: Coroutine[object, object, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._reporting.add(task)
        task.add_done_callback(self._reporting.discard)

    async def _report_missed(self, target: str, summary: str, at: float) -> None:
        with self._tracked():
            try:
                await self.self_alerts.report_missed(target, summary, at)
            except LeaseLost:
                self.lost_lease()
            except Exception:
                logger.exception(
                    "could not record the missed check of %s",
                    target,
                    extra={"event": "store_error", "target": target},
                )

    async def check_target(self, target: Target) -> CheckRecord:
        self._started[target.name] = self.clock.monotonic()
        try:
            with self._tracked():
                return await self._check(target)
        finally:
            self._started.pop(target.name, None)

    async def run_check(self, check: Check) -> CheckRecord:
        """A ``[[checks]]`` entry's job (:mod:`monitor.check_jobs`)."""
        assert self.check_jobs is not None  # (a job per check only when there are checks)
        self._started[check.name] = self.clock.monotonic()
        try:
            with self._tracked():
                return await self.check_jobs.run(check)
        finally:
            self._started.pop(check.name, None)

    def _slow_target(self, event: JobEvent) -> bool:
        """A run skipped because the last is still running *within its bound*: the target (or
        check) is slow (a hung API takes the whole timeout, and with the group commit a round may
        outlast a short interval), which its own alerts say — not the monitor failing. A run
        still going past its timeout and a whole interval more is stuck: that one is the
        monitor's."""
        if event.code != EVENT_JOB_MAX_INSTANCES:
            return False
        name = event.job_id.removeprefix("check:")
        started, bound = self._started.get(name), self._bounds.get(name)
        return (
            started is not None and bound is not None and self.clock.monotonic() - started <= bound
        )

    @contextlib.contextmanager
    def _tracked(self) -> Iterator[None]:
        """A job's run, for :meth:`stop` to wait for."""
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            yield
        finally:
            if task is not None:
                self._running.discard(task)

    async def _check(self, target: Target) -> CheckRecord:
        at = self.clock.wall()
        started = self.clock.monotonic()
        if self.lease_lost:  # a run that started as the scheduler was being paused
            return CheckRecord(target.name, at, Status.UNKNOWN, None, None, NOT_LEADING)
        replicas = await self.replicas.current(target)
        if replicas is None:
            record = CheckRecord(target.name, at, Status.UNREACHABLE, None, None, DISCOVERY_FAILED)
            checks: list[ReplicaCheck] = []
        else:
            token = target.token(self.environ)
            # One deadline for the round, the target's timeout (less than its interval: a check
            # ends before the next is due): the probes get what the lookup left.
            left = max(0.0, target.timeout - (self.clock.monotonic() - started))
            checks = list(
                await asyncio.gather(*(self._probe(target, r, token, left) for r in replicas))
            )
            record = aggregate(target.name, at, checks, target.expected_replicas)
        added = self.catalogue.to_write(target, record)
        # A target without `replicas` is its one replica, and its own checks are that
        # replica's history: rows of their own would double the writes of every check of a
        # single-backend fleet (+6 points of a core at 1,000 targets) to say nothing new.
        rows = checks if target.replicas else ()

        async def write(record: CheckRecord) -> CheckRecord:
            stored = await self.writer.record_check(record, replicas=rows, new_components=added)
            if stored is record:
                self.catalogue.written(target, added)
            return stored

        return await self.settle(
            target, record, started, write, checks, retire=replicas is not None
        )

    async def settle(
        self,
        job: Target | Check,
        record: CheckRecord,
        started: float,
        write: Callable[[CheckRecord], Awaitable[CheckRecord]],
        replicas: Sequence[ReplicaCheck] = (),
        *,
        retire: bool = False,
    ) -> CheckRecord:
        """What follows a target's round or a check's run (one sequence for both): ``record``
        stored by ``write`` (which returns what the store kept), then judged — ``retire``: the
        target's replicas that left the set retired; the maintenance windows; the incidents (a
        target's, a public check's: a private check's trouble is its operators' alone); the
        alerts on ``record`` and ``replicas`` (the round's replicas' answers); the self-alerts.
        ``started``: the run's start (monotonic), for the missed-run self-alert. What the store
        refuses stays the store's (``LeaseLost`` stops the daemon's checks; another error is
        logged and paged as the monitor's own, and the daemon keeps checking)."""
        name, at = job.name, record.at
        try:
            try:
                stored = await write(record)
            except StoreError as error:
                if not isinstance(error, LeaseLost):
                    self.self_alerts.store_failed(error, at, name)
                raise
            await self.self_alerts.store_written(at, name)
            if stored is not record:  # the store refused a value of the answer: a failed check
                logger.warning(
                    "the check of %s was stored as failed: %s",
                    name,
                    stored.error,
                    extra={"event": "check_refused", "target": name},
                )
                record = stored
                # Alerts judge what incidents judge: the failed check the store kept. The store
                # cannot say which replica's value it refused, so every replica of the round is
                # judged on it (each under its own key and instance, so their windows stay
                # theirs); a single-replica target's one replica is that failed check, as before
                # the fleet (its target_unreachable sees the failure).
                replicas = [dataclasses.replace(c, record=stored) for c in replicas]
            if retire and isinstance(job, Target):
                await self.replicas.retire(job, {c.replica for c in replicas}, at)
            # The windows first: one starting or ending is marked before what it held or
            # released is told (the window's story reads in order).
            await self.maintenance.look(at)
            if isinstance(job, Target) or job.public:
                await self.incidents.observe(record)
            await self.alerts.observe(record, replicas)
            took = self.clock.monotonic() - started
            if isinstance(job, Target):
                await self.self_alerts.after_check(job, replicas, at, took=took)
            else:
                await self.self_alerts.ran(name, job.interval, at, took=took)
            self.store_log.written(name, at)
        except LeaseLost:
            self.lost_lease()
        except Exception as error:
            # The store is ours, not the job's: say so loudly, and keep checking.
            self.store_log.failed(name, error, at)
        self.checks += 1
        return record

    async def _probe(
        self, target: Target, replica: Replica, token: str | None, budget: float
    ) -> ReplicaCheck:
        # The wait for a probe slot is not counted: it is this monitor's load, not the target's,
        # and a busy monitor's queue must not be stored as its targets' failures.
        async with self.probes:
            return await probe_replica(
                self.client,
                target,
                replica.url,
                token=token,
                clock=self.clock,
                key=replica.key,
                budget=budget,
            )

    def lost_lease(self) -> None:
        """Another monitor leads: say so once, stop checking, tell whoever runs this daemon."""
        if self.lease_lost:
            return
        self.lease_lost = True
        logger.warning(
            "this monitor no longer leads; it stops checking",
            extra={"event": "lease_lost"},
        )
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.pause()
        if self.on_lease_lost is not None:
            self.on_lease_lost()

    async def send_public(self) -> None:
        """A round of the subscribers' sender (:mod:`monitor.public.sender`)."""
        if self.public_sender is not None and not self.lease_lost:
            try:
                with self._tracked():
                    await self.public_sender.tick()
            except LeaseLost:
                self.lost_lease()

    async def apply_retention(self) -> None:
        if self.lease_lost:
            return
        try:
            await self._apply_retention()
        except LeaseLost:
            self.lost_lease()

    async def _apply_retention(self) -> None:
        retention = self.config.retention
        with self._tracked():
            removed = await self.writer.apply_retention(
                self.clock.wall(),
                raw_days=retention.raw_days,
                hourly_days=retention.hourly_days,
                daily_days=retention.daily_days,
            )
        logger.info("retention applied", extra={"event": "retention", **removed})
        with self._tracked():
            strips = await self.writer.compact_day_strips(self.clock.wall())
        if strips:
            logger.info("day strips rebuilt", extra={"event": "day_strips", "strips": strips})

    async def stop(self, grace: float = 10.0) -> None:
        """Stop scheduling, let the checks in flight finish (bounded by ``grace``), then close.

        Cancelling a check mid-write would leave its connection to be torn down while the engine
        is disposed under it; a check is short (its probe has a timeout), so waiting is cheap."""
        if self.scheduler is not None:
            self.scheduler.pause()
            # A run the scheduler submitted just before the pause starts on the next turn of the
            # loop: let it register, or shutdown() would cancel it mid-check.
            await asyncio.sleep(0)
            late = await wait_within(set(self._running), grace, self.clock)
            while not late and self._running:
                late = await wait_within(set(self._running), grace, self.clock)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
            # On AsyncIOScheduler, shutdown() only schedules itself on the loop: let it run.
            self.scheduler.shutdown(wait=False)
            await asyncio.sleep(0)
            self.scheduler = None
        flushing = asyncio.ensure_future(self.writer.flush())
        try:
            # Checks that finished before the stop are written, unless the store is stuck.
            if await wait_within({flushing}, grace, self.clock):
                flushing.cancel()
                logger.error(
                    "the store did not take the last checks within %.1f s",
                    grace,
                    extra={"event": "store_error"},
                )
        finally:
            await self.dispatcher.drain()
            await self.client.aclose()
            if self.check_jobs is not None:
                await self.check_jobs.aclose()
            await self.engine.dispose()
