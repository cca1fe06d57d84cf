"""The monitor daemon: check → persist → incidents → alerts, once at start and then on a ticker.

One APScheduler 3.x ``AsyncIOScheduler`` job per target (``max_instances=1``, ``coalesce=True``,
``misfire_grace_time`` of one interval, first run at once), and one hourly retention job. A
check that fails is data; nothing a target does can stop the daemon.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime

import httpx
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from monitor.alerts import AlertEngine
from monitor.config import MonitorConfig, Target
from monitor.incidents import IncidentTracker
from monitor.notifiers import Dispatcher, build_sinks
from monitor.probe import probe
from monitor.store import (
    TARGET_COMPONENT,
    CheckRecord,
    Component,
    HistoryReader,
    HistoryWriter,
    create_schema,
    open_engine,
)
from shared.resilience import SYSTEM_CLOCK, Clock

logger = logging.getLogger("monitor")

RETENTION_JOB = "retention"


class MonitorDaemon:
    def __init__(
        self,
        config: MonitorConfig,
        *,
        clock: Clock = SYSTEM_CLOCK,
        transport: httpx.AsyncBaseTransport | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.environ = environ
        self.engine = open_engine(config.storage_url)
        self.writer = HistoryWriter(self.engine)
        self.reader = HistoryReader(self.engine)
        self.client = httpx.AsyncClient(transport=transport, follow_redirects=True)
        self.dispatcher = Dispatcher(build_sinks(config.notifiers, self.client, clock))
        self.incidents = IncidentTracker(config, self.writer)
        self.alerts = AlertEngine(config.alerts, self.writer, self.dispatcher)
        self.scheduler: AsyncIOScheduler | None = None
        self.missed = 0
        """Runs APScheduler skipped: late past their grace time, or the last one still running."""
        self.checks = 0
        self._catalogue = catalogue(config)
        self._running: set[asyncio.Task[object]] = set()

    async def prepare(self) -> None:
        """Create the schema, write the component catalogue, pick up open incidents and alerts."""
        await create_schema(self.engine)
        await self.writer.sync_components(self._catalogue)
        await self.incidents.resume(self.reader)
        await self.alerts.resume(self.reader)

    async def start(self) -> None:
        await self.prepare()
        scheduler = AsyncIOScheduler(timezone=UTC)
        now = datetime.now(UTC)
        for target in self.config.targets:
            scheduler.add_job(
                self.check_target,
                "interval",
                args=[target],
                id=f"check:{target.name}",
                seconds=target.interval,
                next_run_time=now,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=max(1, round(target.interval)),
            )
        scheduler.add_job(
            self.apply_retention,
            "interval",
            id=RETENTION_JOB,
            hours=1,
            next_run_time=now,
            max_instances=1,
            coalesce=True,
        )
        scheduler.add_listener(self._on_missed, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
        scheduler.start()
        self.scheduler = scheduler
        logger.info(
            "monitoring %d target(s)",
            len(self.config.targets),
            extra={"event": "monitor_started", "targets": len(self.config.targets)},
        )

    def _on_missed(self, event: JobExecutionEvent) -> None:
        self.missed += 1
        logger.warning(
            "check %s missed its run",
            event.job_id,
            extra={"event": "check_missed", "job": event.job_id},
        )

    async def check_target(self, target: Target) -> CheckRecord:
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            return await self._check(target)
        finally:
            if task is not None:
                self._running.discard(task)

    async def _check(self, target: Target) -> CheckRecord:
        record = await probe(
            self.client, target, token=target.token(self.environ), clock=self.clock
        )
        try:
            await self._discover(target, record)
            await self.writer.record_check(record)
            await self.incidents.observe(record)
            await self.alerts.observe(record)
        except Exception:
            # The store is ours, not the target's: say so loudly, and keep checking.
            logger.exception(
                "could not record the check of %s",
                target.name,
                extra={"event": "store_error", "target": target.name},
            )
        self.checks += 1
        return record

    async def _discover(self, target: Target, record: CheckRecord) -> None:
        """Services the config does not name still get a place (and a title) in the catalogue."""
        known = {(c.target, c.service) for c in self._catalogue}
        new = [s.service for s in record.services if (target.name, s.service) not in known]
        if not new:
            return
        for service in new:
            self._catalogue.append(
                Component(
                    target.name,
                    service,
                    target.service_title(service),
                    target.group,
                    len(self._catalogue),
                )
            )
        self._catalogue.sort(
            key=lambda c: (
                self.config.targets.index(self.config.target(c.target))
                if c.target in {t.name for t in self.config.targets}
                else len(self.config.targets),
                c.position,
            )
        )
        self._catalogue = [
            Component(c.target, c.service, c.display_name, c.group, n)
            for n, c in enumerate(self._catalogue)
        ]
        await self.writer.sync_components(self._catalogue)

    async def apply_retention(self) -> None:
        retention = self.config.retention
        removed = await self.writer.apply_retention(
            self.clock.wall(),
            raw_days=retention.raw_days,
            hourly_days=retention.hourly_days,
            daily_days=retention.daily_days,
        )
        logger.info("retention applied", extra={"event": "retention", **removed})

    async def stop(self, grace: float = 10.0) -> None:
        """Stop scheduling, let the checks in flight finish (bounded by ``grace``), then close.

        Cancelling a check mid-write would leave its connection to be torn down while the engine
        is disposed under it; a check is short (its probe has a timeout), so waiting is cheap."""
        if self.scheduler is not None:
            self.scheduler.pause()
            if self._running:
                _done, late = await asyncio.wait(set(self._running), timeout=grace)
                for task in late:
                    task.cancel()
                await asyncio.gather(*late, return_exceptions=True)
            # On AsyncIOScheduler, shutdown() only schedules itself on the loop: let it run.
            self.scheduler.shutdown(wait=False)
            await asyncio.sleep(0)
            self.scheduler = None
        await self.dispatcher.drain()
        await self.client.aclose()
        await self.engine.dispose()


def catalogue(config: MonitorConfig) -> list[Component]:
    """Display names and groups for every target and the services named in its config."""
    components: list[Component] = []
    for target in config.targets:
        components.append(
            Component(target.name, TARGET_COMPONENT, target.title, target.group, len(components))
        )
        for service in target.services:
            components.append(
                Component(
                    target.name,
                    service,
                    target.service_title(service),
                    target.group,
                    len(components),
                )
            )
    return components
