"""Where pages land in a drill: a local HTTP endpoint behind an Apprise ``json://`` URL and a
local SMTP server (aiosmtpd, with a login) behind ``mailto://``. Each keeps what arrived and when
(``time.time()``, the clock the monitor's check times are on), so a test or a benchmark can say
how long a page took and that nothing else came.

Both start and stop with the block (``async with JsonReceiver() as hook``); the SMTP server runs
in aiosmtpd's own thread, so a test's event loop being busy does not delay a delivery.
"""

from __future__ import annotations

import email.policy
import re
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from types import TracebackType
from typing import Self

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from questcity.embedded.ports import free_port

HOOK_TOKEN = "drillHOOKtoken7Qz2"
"""The secret part of the ``json://`` URL's path: it must never show in a log or on a page."""
SMTP_PASSWORD = "drillSMTPpassw0rd"
"""The SMTP login's password (in the ``mailto://`` URL): the same."""


@dataclass(frozen=True)
class Arrival:
    at: float
    """``time.time()`` when it arrived."""
    title: str
    body: str
    kind: str
    """``failure``/``success``/``warning``/``info`` (JSON: Apprise's type), ``mail`` for e-mail."""

    @property
    def state(self) -> str:
        """``FIRING``, ``RESOLVED``, ``REMINDER n``: the body's first word (the title's bracket
        in notices from before the title named the alert only)."""
        if self.title.startswith("["):
            return self.title[1 : self.title.find("]")]
        first = self.body.split("\n", 1)[0]
        return first.split(":", 1)[0] if ":" in first else ""

    @property
    def headline(self) -> str:
        """The title without the alert's number (or state): ``NAME: rule``."""
        return re.sub(r"^(#\d+ |\[[^]]*\] )", "", self.title)

    @property
    def component(self) -> str:
        """The component key from the body's ``Component: NAME (KEY)`` line ("" if none)."""
        found = re.search(r"^Component: .* \(([^()]*)\)$", self.body, re.MULTILINE)
        return found.group(1) if found else ""

    @property
    def rule(self) -> str:
        """The rule, after the title's last ``: ``."""
        return self.title.rsplit(": ", 1)[-1]


@dataclass
class JsonReceiver:
    """A POST endpoint at ``/hooks/TOKEN`` as Apprise's ``json://`` plugin calls it."""

    port: int = 0
    arrivals: list[Arrival] = field(default_factory=list)
    bodies: list[dict[str, object]] = field(default_factory=list)
    refused: int = 0
    """Requests with the wrong token (a test asserts none)."""
    _runner: web.AppRunner | None = None

    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hooks/{HOOK_TOKEN}"

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != HOOK_TOKEN:
            self.refused += 1
            return web.Response(status=403)
        body = await request.json()
        assert isinstance(body, dict)
        self.bodies.append(body)
        self.arrivals.append(
            Arrival(
                time.time(),
                str(body.get("title", "")),
                str(body.get("message", "")),
                str(body.get("type", "")),
            )
        )
        return web.Response(status=200)

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post("/hooks/{token}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[float, EmailMessage]] = []
        self.failed_logins = 0
        self._lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        message = message_from_bytes(envelope.original_content or b"", policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.messages.append((time.time(), message))
        return "250 OK"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: object
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.password == SMTP_PASSWORD.encode()
        if not ok:
            self.failed_logins += 1
        return AuthResult(success=ok)


class SmtpReceiver:
    """An SMTP server on 127.0.0.1 that takes mail from ``oncall`` with :data:`SMTP_PASSWORD`."""

    def __init__(self) -> None:
        self.port = free_port()
        self._mailbox = _Mailbox()
        self._controller = Controller(
            self._mailbox,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=self._mailbox.authenticate,
            auth_require_tls=False,  # a local test server: no TLS to offer
        )

    def url(self) -> str:
        return (
            f"mailto://oncall:{SMTP_PASSWORD}@127.0.0.1:{self.port}?mode=insecure"
            "&from=monitor@questcity.test&to=oncall@questcity.test"
        )

    @property
    def failed_logins(self) -> int:
        return self._mailbox.failed_logins

    @property
    def arrivals(self) -> list[Arrival]:
        with self._mailbox._lock:
            messages = list(self._mailbox.messages)
        return [Arrival(at, str(m["Subject"]), _text(m), "mail") for at, m in messages]

    async def __aenter__(self) -> Self:
        self._controller.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._controller.stop()


def _text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    return "" if part is None else str(part.get_content()).replace("\r\n", "\n")
