"""Paging through Apprise (DESIGN §9): one ``[[notifiers]] type = "apprise"`` sends every alert
notice to each URL in the environment variable it names (``urls_env``, space-separated) — Slack,
PagerDuty, Opsgenie, Telegram, e-mail, ntfy, a JSON endpoint: whatever Apprise knows, with no
code of ours per service.

Each URL is its own receiver: its own Apprise object, sent through :class:`Guarded` (retries
inside a circuit breaker, as a webhook is), each attempt bounded by the notifier's ``timeout``
on the monitor's clock. So a dead Slack neither holds back nor re-sends the e-mail.

Apprise URLs hold secrets (tokens, passwords), so they never reach a log line, an error or an
exception text of ours: a URL is named by its variable and position (``$QUESTCITY_APPRISE_URLS
#2``) and its service ("Slack"). Apprise logs on the ``apprise`` logger; its debug lines carry
URLs and request paths, and its errors about an unusable URL quote it. That logger is therefore
held at WARNING, its records scrubbed of anything URL-shaped and of every part of the configured
URLs, and silenced outright while the URLs are checked at start-up.

An unset or blank variable does not stop the monitor: it is logged as an error at start-up and
again with every notice that nobody was paged, while the checks, incidents and status page go
on — a monitor refusing to start would take all of those down over one missing channel, and a
config shared by a laptop's ``questcity up`` and production legitimately lacks the secret on the
laptop. A variable that is set but holds a URL Apprise cannot use is a mistake made just now
and is refused at start-up (:class:`AppriseConfigError`), naming the variable and the position.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qsl, unquote, urlsplit

from apprise import Apprise, AppriseAsset, AppriseResultStatus, NotifyFormat, NotifyType

from monitor.config import Notifier
from monitor.notices import AlertNotice, Guarded
from shared.resilience import SYSTEM_CLOCK, Clock
from shared.resilience.sanitize import one_line
from shared.resilience.timebox import within

logger = logging.getLogger("monitor.alerts")

with warnings.catch_warnings():
    # Apprise's e-mail plugin imports imghdr, deprecated since Python 3.11 (Apprise shims it
    # where it is gone): loaded here once, quietly, instead of warning at the first mailto://.
    warnings.simplefilter("ignore", DeprecationWarning)
    import apprise.utils.pgp  # noqa: F401

MAX_THROTTLE = 1.0
"""Seconds between two requests to one URL, at most. Apprise waits 5.5 s by default for most
services ("most servers do not like more than one request per 5 seconds"): made for bulk
senders, it would page the second of two causes of one outage 5.5 s after the first (the
drill's e-mail paged the database 10.9 s after the fault). A monitor sends a handful of notices;
one a second per URL is within every service's limits (Slack's is one a second per channel)."""
MAX_URLS = 50
"""URLs one variable may hold."""
MAX_URL_SIZE = 8192
"""Characters of one URL."""
MAX_SUMMARY = 1000
"""Characters of an alert's summary in a notice (pagers and SMS cut far shorter anyway)."""
_SECRET_PART = 6
"""Parts of a configured URL at least this long are scrubbed from Apprise's log lines; shorter
ones ("en", "json") are ordinary words — except the userinfo's password and the values of
secret-looking query keys (:data:`_SECRET_KEY`), scrubbed whatever their length (a short SMTP
password is still a password)."""
_SECRET_KEY = re.compile(r"pass|pwd|secret|token|key|auth|sig|cred|session|hook", re.IGNORECASE)


class AppriseConfigError(ValueError):
    """An Apprise URL that cannot be used; ``str()`` names the variable and position only."""


class AppriseDeliveryError(ConnectionError):
    """An Apprise service did not take the notice (failed or timed out): worth another try."""


# -- keeping the URLs out of the logs ----------------------------------------------------------

_URL_SHAPED = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,31}:/+[^\s'\"<>]*")
_checking: contextvars.ContextVar[bool] = contextvars.ContextVar("apprise_checking", default=False)


class _Scrub(logging.Filter):
    """On Apprise's loggers: drops their records while URLs are checked, and rewrites every
    other record without anything URL-shaped or any part of a configured URL."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if _checking.get():
            return False
        try:
            text = record.getMessage()
        except Exception:  # a bad format string in a plugin: keep only its words
            text = str(record.msg)
        clean = self.scrub(text)
        if record.exc_info is not None and record.exc_info[0] is not None:
            # A traceback's text may quote a URL: only the exception's class goes on.
            clean = f"{clean} ({record.exc_info[0].__name__})"
            record.exc_info = None
            record.exc_text = None
        record.msg, record.args = clean, None
        return True

    def scrub(self, text: str) -> str:
        text = _URL_SHAPED.sub("<url>", text)
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text


_SCRUB = _Scrub()


_SCRUBBED_LOGGERS = ("apprise", "urllib3.connectionpool")
"""Apprise's logger, and that of urllib3 (under requests, which most Apprise services send
through: its debug lines quote request paths, where many services keep their tokens)."""


def _guard_apprise_logger() -> None:
    # Apprise's INFO and DEBUG lines ("JSON POST URL: …", "Loaded … URL: …") carry URLs.
    logging.getLogger("apprise").setLevel(logging.WARNING)
    for name in _SCRUBBED_LOGGERS:
        scrubbed = logging.getLogger(name)
        if _SCRUB not in scrubbed.filters:
            scrubbed.addFilter(_SCRUB)


_guard_apprise_logger()


def secret_parts(url: str) -> set[str]:
    """The parts of an Apprise URL that may be secret: the URL, its user, password, host (the
    token, for many services), path segments and query values — those long enough to be one."""
    parts = {url}
    always: list[str | None] = []
    try:
        split = urlsplit(url)
        candidates = [split.username, split.password, split.hostname, split.netloc]
        candidates += split.path.split("/")
        query = parse_qsl(split.query)
        candidates += [value for _key, value in query]
        always = [split.password] + [value for key, value in query if _SECRET_KEY.search(key)]
    except ValueError:
        candidates = re.split(r"[/:@?&=#\s]+", url)
    for part in candidates:
        if part and len(part) >= _SECRET_PART:
            parts.update({part, unquote(part)})
    parts.update(found for part in always if part for found in (part, unquote(part)) if found)
    return parts


@contextlib.contextmanager
def _quiet_apprise() -> Iterator[None]:
    """Apprise's own lines while a URL is checked quote the URL: none of them is logged."""
    token = _checking.set(True)
    try:
        yield
    finally:
        _checking.reset(token)


# -- the notice as people read it ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    title: str
    body: str
    notify_type: NotifyType


def when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def compose(notice: AlertNotice) -> Message:
    """Title and body of a notice. The title names the alert and only the alert
    (``#42 QuestCity API / Database: service_down``): the same on its firing, reminders and
    resolved notices, because incident tools match a resolve to its trigger by it — Apprise's
    PagerDuty (``action=map``) takes its dedup key from the title (merged into the body's first
    line), Opsgenie (``action=map``) closes the alerts it opened under the same title. The state
    (FIRING / RESOLVED / REMINDER n) is the body's first word and the Apprise type: failure
    (opens), success (resolves, closes), info for a reminder (Opsgenie adds it to the open alert
    as a note; warning would open another). Then the component's name and key, the rule and
    since when."""
    key = notice.component or (
        f"{notice.target}/{notice.service}" if notice.service else notice.target
    )
    name = one_line(notice.name or key, 200)
    if notice.state == "resolved":
        word, kind = "RESOLVED", NotifyType.SUCCESS
        timing = f"Resolved at {when(notice.at)}"
    elif notice.reminder:
        word, kind = f"REMINDER {notice.reminder}", NotifyType.INFO
        timing = f"Firing since {when(notice.at)}, not acknowledged"
    else:
        word, kind = "FIRING", NotifyType.FAILURE
        timing = f"Firing since {when(notice.at)}"
    lines = [
        f"{word}: {one_line(notice.summary, MAX_SUMMARY)}",
        "",
        f"Component: {name} ({one_line(key, 200)})",
        f"Rule: {one_line(notice.rule, 100)}",
        timing,
    ]
    if notice.state == "firing" and notice.alert_id is not None:
        lines.append(
            f"Acknowledge (stops reminders): questcity alert ack {notice.alert_id} --by NAME"
        )
    lines.append(f"Ref: {notice.key}")
    alert = "" if notice.alert_id is None else f"#{notice.alert_id} "
    return Message(f"{alert}{name}: {one_line(notice.rule, 100)}", "\n".join(lines), kind)


# -- the sink --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Service:
    label: str
    """``$VAR #n``: how logs and errors name this URL."""
    kind: str
    """Apprise's name of the service ("JSON", "E-Mail", "Slack"): no secret in it."""
    apprise: Apprise
    guarded: Guarded
    throttle: float
    """Seconds Apprise waits between two requests to this service (5.5 for most plugins, in a
    worker thread): a send may have to wait that long before it starts."""
    turn: asyncio.Lock = field(default_factory=asyncio.Lock)
    """One send at a time per URL: Apprise throttles them anyway, and a send bounded by our
    timeout while it waits out the throttle would be abandoned, not stopped — its worker
    thread delivers it later, and the retry delivers it again (a duplicate page)."""


class AppriseSink:
    """Sends every notice to each Apprise URL of one notifier."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        urls_env: str,
        where: str = "notifiers",
        timeout: float = 5.0,
        clock: Clock = SYSTEM_CLOCK,
        repeat_every: float | None = None,
    ) -> None:
        """``urls`` as read from ``$urls_env``; :class:`AppriseConfigError` if one cannot be
        used. ``where`` names the notifier in messages (``notifiers[1]``)."""
        self.urls_env = urls_env
        self.repeat_every = repeat_every
        self._where = where
        self._timeout = timeout
        self._clock = clock
        if len(urls) > MAX_URLS:
            raise AppriseConfigError(
                f"${urls_env} ({where}) holds {len(urls)} URLs; at most {MAX_URLS}"
            )
        for url in urls:
            _SCRUB.secrets.update(secret_parts(url))
        self._services = [
            self._service(url, position, len(urls)) for position, url in enumerate(urls, 1)
        ]
        if not self._services:
            logger.error(
                "%s (apprise): $%s is not set or empty, so nobody is paged through it (alerts "
                "go to the log only); export %s with its Apprise URLs, space-separated",
                where,
                urls_env,
                urls_env,
                extra={"event": "notifier_unconfigured", "urls_env": urls_env},
            )

    @classmethod
    def from_notifier(
        cls,
        notifier: Notifier,
        index: int,
        *,
        clock: Clock = SYSTEM_CLOCK,
        environ: Mapping[str, str] | None = None,
    ) -> AppriseSink:
        """The sink of ``[[notifiers]]`` table ``index`` (from 0, as config errors count)."""
        return cls(
            notifier.apprise_urls(environ),
            urls_env=notifier.urls_env or "",
            where=f"notifiers[{index}]",
            timeout=notifier.timeout,
            clock=clock,
            repeat_every=notifier.repeat_every,
        )

    def _service(self, url: str, position: int, count: int) -> _Service:
        label = f"${self.urls_env} #{position}"
        problem = None
        if len(url) > MAX_URL_SIZE:
            problem = f"is longer than {MAX_URL_SIZE} characters"
        apprise = Apprise(
            asset=AppriseAsset(
                app_id="QuestCity",
                app_desc="QuestCity monitor",
                async_mode=True,
                secure_logging=True,
                storage_mode="memory",  # nothing of the URLs' services written to disk
            )
        )
        if problem is None:
            with _quiet_apprise():
                if not apprise.add(url) or len(apprise) == 0:
                    problem = "is not one Apprise can use (an unknown service, or a part missing)"
        if problem is not None:
            raise AppriseConfigError(
                f"${self.urls_env} ({self._where}): URL {position} of {count} {problem}; "
                "see https://appriseit.com/services/ for each service's URL form"
            )
        kind = str(getattr(apprise[0], "service_name", "") or "Apprise")
        plugin = apprise[0]
        throttle = getattr(plugin, "request_rate_per_sec", 0.0)
        wait = max(0.0, float(throttle)) if isinstance(throttle, int | float) else 0.0
        if wait > MAX_THROTTLE:
            # See MAX_THROTTLE: the second of two pages must not wait 5.5 s behind the first.
            plugin.request_rate_per_sec = wait = MAX_THROTTLE
        return _Service(
            label,
            one_line(kind, 40),
            apprise,
            Guarded(f"apprise {label}", timeout=self._timeout + wait, clock=self._clock),
            wait,
        )

    @property
    def services(self) -> list[str]:
        """How each URL is named (``$VAR #1 (JSON)``), for logs and tests."""
        return [f"{service.label} ({service.kind})" for service in self._services]

    async def send(self, notice: AlertNotice) -> None:
        """Send ``notice`` to every URL at once; :class:`AppriseDeliveryError` naming those that
        did not take it (their retries spent), after the others have."""
        if not self._services:
            logger.warning(
                "alert %s not paged: $%s is not set (%s)",
                notice.key,
                self.urls_env,
                self._where,
                extra={"event": "notify_unconfigured", "key": notice.key},
            )
            return
        message = compose(notice)
        outcomes = await asyncio.gather(
            *(self._deliver(service, message, notice) for service in self._services),
            return_exceptions=True,
        )
        failed = []
        for service, outcome in zip(self._services, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                if isinstance(outcome, asyncio.CancelledError):
                    raise outcome
                failed.append(f"{service.label} ({service.kind})")
                logger.warning(
                    "alert %s not delivered to %s (%s): %s",
                    notice.key,
                    service.label,
                    service.kind,
                    type(outcome).__name__,
                    extra={
                        "event": "apprise_failed",
                        "key": notice.key,
                        "service": service.kind,
                        "url": service.label,
                        "cause": type(outcome).__name__,
                    },
                )
        if failed:
            raise AppriseDeliveryError(
                f"{len(failed)} of {len(self._services)} not delivered: {', '.join(failed)}"
            )

    async def _deliver(self, service: _Service, message: Message, notice: AlertNotice) -> None:
        # The bound (ours, Apprise's own deadline, and the breaker's) covers Apprise's throttle
        # wait too: only a receiver slower than our timeout counts as failed.
        bound = self._timeout + service.throttle

        async def attempt(_notice: AlertNotice) -> None:
            result = await within(
                service.apprise.async_notify(
                    body=message.body,
                    title=message.title,
                    notify_type=message.notify_type,
                    body_format=NotifyFormat.TEXT,
                    timeout=bound,
                ),
                bound,
                self._clock,
            )
            with result:
                if result.status != AppriseResultStatus.SUCCESS:
                    raise AppriseDeliveryError(
                        f"{service.label} ({service.kind}): {result.status.name.lower()}"
                    )

        # One notice at a time per URL, its retries included: queued behind another, a send
        # would spend its bound waiting and be abandoned, not stopped (see ``turn``).
        async with service.turn:
            await service.guarded.send(attempt, notice)
