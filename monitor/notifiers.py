"""Where alerts go: the log, JSON webhooks, and every service Apprise knows (``type = "apprise"``,
:mod:`monitor.apprise_sink`).

A webhook or an Apprise service is sent in the background through the policy library (retry
with backoff inside a circuit breaker per receiver, :class:`Guarded`), so a dead or slow receiver
can never stall the checks.

Delivery is at least once. The store keeps an outbox (``alerts.notified``): a notice is marked
handled once every sink took it or gave up on it, and a monitor that resumes (a new leader after
a takeover, or a restart) sends again every notice not marked. A monitor killed between the
delivery and the mark therefore has its successor send that notice a second time — rarely, but
a receiver must expect it: each notice carries a stable idempotency key, ``"id": "<alert
id>:<state>"`` in the JSON body and the ``Idempotency-Key`` header, the same on every send of
that notice, by which a receiver drops a duplicate.

Reminders (``repeat_every`` on a notifier): while an alert fires, unacknowledged and not
silenced, the engine calls :meth:`Dispatcher.remind` on every check; a sink whose notifier has
``repeat_every`` gets a reminder notice (``reminder=n``, key ``<id>:firing:reminder:<n>``) once
that long has passed since the alert's last send to it. The table of last sends is in memory
(bounded; :meth:`Dispatcher.forget` on resolve): a monitor that resumes seeds it at its first
check, so a takeover may delay a reminder by up to one ``repeat_every``, never send it twice
under two numbers. Reminders are not in the outbox.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, replace

import httpx

from monitor.config import Notifier
from monitor.notices import AlertNotice, AlertSink, Guarded
from shared.resilience import SYSTEM_CLOCK, Clock
from shared.resilience.background import BackgroundTasks

logger = logging.getLogger("monitor.alerts")

__all__ = [
    "MAX_REMINDED_ALERTS",
    "AlertNotice",
    "AlertSink",
    "Dispatcher",
    "Done",
    "Guarded",
    "LogSink",
    "WebhookError",
    "WebhookSink",
    "build_sinks",
    "notifiers_or_exit",
]

MAX_REMINDED_ALERTS = 10_000
"""Alerts whose reminders are tracked at once; past it the oldest entry is dropped (its next
reminder is then seeded afresh, i.e. delayed): memory stays bounded whatever fires."""


Done = Callable[["AlertNotice"], Awaitable[None]]
"""Called once a notice is handled: every sink delivered it or gave up on it."""


class LogSink:
    def __init__(self, *, repeat_every: float | None = None) -> None:
        self.repeat_every = repeat_every

    async def send(self, notice: AlertNotice) -> None:
        level = logging.WARNING if notice.state == "firing" else logging.INFO
        reminder = f" (reminder {notice.reminder})" if notice.reminder else ""
        logger.log(
            level,
            "alert %s%s: %s",
            notice.state,
            reminder,
            notice.summary,
            # "name" is a LogRecord attribute (logging refuses it in extra): display_name.
            extra={"event": "alert", "key": notice.key, **_log_fields(notice)},
        )


def _log_fields(notice: AlertNotice) -> dict[str, object]:
    fields = asdict(notice)
    fields["display_name"] = fields.pop("name")
    return fields


class WebhookError(ConnectionError):
    """The receiver did not take the notice (refused, timed out, or answered 5xx)."""


class WebhookSink:
    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient,
        *,
        timeout: float,
        clock: Clock = SYSTEM_CLOCK,
        repeat_every: float | None = None,
    ) -> None:
        self._url = url
        self._client = client
        self._timeout = timeout
        self._guarded = Guarded("webhook", timeout=timeout, clock=clock)
        self.repeat_every = repeat_every

    async def send(self, notice: AlertNotice) -> None:
        await self._guarded.send(self._post, notice)

    async def _post(self, notice: AlertNotice) -> None:
        try:
            response = await self._client.post(
                self._url,
                json=notice.payload(),
                headers={"Idempotency-Key": notice.key},
                timeout=self._timeout,
            )
        except httpx.HTTPError as error:
            raise WebhookError(type(error).__name__) from None
        if response.status_code >= 500:
            raise WebhookError(f"HTTP {response.status_code}")
        if response.status_code >= 400:
            logger.error(
                "webhook refused the alert (HTTP %d); check its URL",
                response.status_code,
                extra={"event": "webhook_refused", "status": response.status_code},
            )


@dataclass(slots=True)
class _Sent:
    """One alert's last send to one reminding sink, and how many reminders it has had."""

    at: float
    reminders: int


class Dispatcher:
    """Sends each notice to every sink in the background; failures are logged, never raised.

    A sink with a ``repeat_every`` attribute (seconds, or None) gets reminders
    (:meth:`remind`); sinks without one (tests' fakes) never do."""

    def __init__(self, sinks: list[AlertSink]) -> None:
        self._sinks = sinks
        self._every: list[tuple[int, float]] = [
            (index, every)
            for index, sink in enumerate(sinks)
            if (every := getattr(sink, "repeat_every", None)) is not None and every > 0
        ]
        self._sent: dict[int, dict[int, _Sent]] = {}
        """Alert id → reminding sink's index → its last send (insertion order: oldest first)."""
        self._tasks = BackgroundTasks()

    def dispatch(
        self, notice: AlertNotice, on_done: Done | None = None, *, at: float | None = None
    ) -> None:
        """Send ``notice`` to every sink at once, in the background; then, once each sink has
        delivered it or given up (its retries spent), ``on_done(notice)``. A notice cut short
        (the process killed, or cancelled at the end of :meth:`drain`) is never reported done.

        A firing notice counts as a send for reminders, at ``at`` (default ``notice.at``, its
        firing time; a notice re-sent at resume should pass the check's time); a resolved one
        forgets the alert's reminders."""
        self._tasks.spawn(self._deliver(notice, on_done))
        if notice.alert_id is None:
            return
        if notice.state == "resolved":
            self.forget(notice.alert_id)
        elif notice.state == "firing" and not notice.reminder and self._every:
            sent_at = notice.at if at is None else at
            table = self._table(notice.alert_id)
            for index, every in self._every:
                last = table.get(index)
                if last is None:
                    table[index] = _Sent(sent_at, _numbered(notice, sent_at, every))
                else:
                    last.at = max(last.at, sent_at)

    def remind(self, notice: AlertNotice, at: float) -> None:
        """Called on every check of a firing alert that is neither acknowledged nor silenced
        (``notice`` is its firing notice, ``at`` the check's time): each sink whose
        ``repeat_every`` has passed since the alert's last send to it gets the next reminder
        (``reminder=n``, its own idempotency key), in the background. An alert this dispatcher
        has not sent (a monitor that resumed) is seeded at ``at``: its first reminder comes
        ``repeat_every`` later, numbered after those a predecessor would have sent."""
        if notice.alert_id is None or notice.state != "firing" or not self._every:
            return
        table = self._sent.get(notice.alert_id)
        if table is None:
            table = self._table(notice.alert_id)
            for index, every in self._every:
                # Numbered on from a predecessor's: its keys are not reused for different
                # sends (a receiver would drop ours as duplicates).
                table[index] = _Sent(at, _numbered(notice, at, every))
            return
        for index, every in self._every:
            last = table.setdefault(index, _Sent(at, 0))
            if at - last.at < every:
                continue
            last.at = at
            last.reminders += 1
            reminder = replace(notice, reminder=last.reminders)
            self._tasks.spawn(self._send(self._sinks[index], reminder))

    def forget(self, alert_id: int) -> None:
        """No more reminders of this alert (it resolved): its entry leaves the table."""
        self._sent.pop(alert_id, None)

    @property
    def reminded(self) -> int:
        """Alerts whose reminders are tracked now (bounded by :data:`MAX_REMINDED_ALERTS`)."""
        return len(self._sent)

    def _table(self, alert_id: int) -> dict[int, _Sent]:
        table = self._sent.get(alert_id)
        if table is None:
            while len(self._sent) >= MAX_REMINDED_ALERTS:
                dropped = next(iter(self._sent))
                del self._sent[dropped]
                logger.warning(
                    "reminders: more than %d alerts firing; alert %d's next reminder is delayed",
                    MAX_REMINDED_ALERTS,
                    dropped,
                    extra={"event": "reminders_full", "alert_id": dropped},
                )
            table = self._sent[alert_id] = {}
        return table

    async def _deliver(self, notice: AlertNotice, on_done: Done | None) -> None:
        await asyncio.gather(*(self._send(sink, notice) for sink in self._sinks))
        if on_done is None:
            return
        try:
            await on_done(notice)
        except Exception as error:
            logger.warning(
                "alert notice not marked sent: %s",
                type(error).__name__,
                extra={"event": "notify_mark_failed", "rule": notice.rule},
            )

    async def _send(self, sink: AlertSink, notice: AlertNotice) -> None:
        try:
            await sink.send(notice)
        except Exception as error:
            logger.warning(
                "alert notification failed: %s",
                type(error).__name__,
                extra={
                    "event": "notify_failed",
                    "rule": notice.rule,
                    "cause": type(error).__name__,
                },
            )

    async def drain(self, grace: float = 5.0) -> None:
        await self._tasks.drain(grace)


def _numbered(notice: AlertNotice, at: float, every: float) -> int:
    """Reminders an alert fired at ``notice.at`` has had by ``at`` if one went out every
    ``every`` seconds: 0 for a notice sent as it fires, more for one a resuming monitor takes
    over, whose reminders then go on from there."""
    return max(0, int((at - notice.at) // every))


def build_sinks(
    notifiers: tuple[Notifier, ...],
    client: httpx.AsyncClient,
    clock: Clock = SYSTEM_CLOCK,
    *,
    environ: Mapping[str, str] | None = None,
) -> list[AlertSink]:
    """One sink per ``[[notifiers]]`` table. An ``apprise`` notifier reads its URLs from
    ``environ`` (default ``os.environ``): an unusable URL raises
    :class:`monitor.apprise_sink.AppriseConfigError` (naming the variable and the URL's
    position, never the URL); an unset variable is logged as an error and its notices go to
    the log only (see :mod:`monitor.apprise_sink` for why it does not stop the monitor)."""
    sinks: list[AlertSink] = []
    for index, notifier in enumerate(notifiers):
        every = notifier.repeat_every
        if notifier.kind == "webhook" and notifier.url:
            sinks.append(
                WebhookSink(
                    notifier.url, client, timeout=notifier.timeout, clock=clock, repeat_every=every
                )
            )
        elif notifier.kind == "apprise":
            # Imported here: Apprise loads its plugins on import, which a monitor without an
            # apprise notifier (and every CLI command) need not pay.
            from monitor.apprise_sink import AppriseSink

            sink = AppriseSink.from_notifier(notifier, index, clock=clock, environ=environ)
            sinks.append(sink)
        else:
            sinks.append(LogSink(repeat_every=every))
    return sinks


def notifiers_or_exit(
    notifiers: tuple[Notifier, ...], environ: Mapping[str, str] | None = None
) -> None:
    """For ``questcity monitor`` before it starts: an Apprise URL that cannot be used stops it
    here with exit 2 and a line naming the variable and the URL's position (never the URL) —
    not later, in a leader's start, where it would pass the lease from monitor to monitor. An
    unset variable is left to the sink (logged as an error; the monitor runs)."""
    for index, notifier in enumerate(notifiers):
        if notifier.kind != "apprise" or not notifier.apprise_urls(environ):
            continue
        from monitor.apprise_sink import AppriseConfigError, AppriseSink

        try:
            AppriseSink.from_notifier(notifier, index, environ=environ)
        except AppriseConfigError as error:
            print(f"questcity: {error}", file=sys.stderr)
            raise SystemExit(2) from None
