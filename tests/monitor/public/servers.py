"""Real destinations for the sender's integration tests: an SMTP server (aiosmtpd, in its own
thread, with a login and a mailbox that does not exist) and a webhook receiver (aiohttp) on
127.0.0.1 that keeps what it was sent and can be told to fail."""

from __future__ import annotations

import email.policy
import json
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from types import TracebackType
from typing import Any, Self

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from questcity.embedded.ports import free_port

PASSWORD = "subscribersSMTPpassw0rd"
NO_SUCH_MAILBOX = "nobody@questcity.test"


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()
        self.connections = 0
        """Sessions greeted (one EHLO per connection: no STARTTLS here)."""

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        with self.lock:
            self.connections += 1
        return responses

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address == NO_SUCH_MAILBOX:
            return f"550 5.1.1 <{address}>: no such mailbox here, secret-server-detail"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        message = message_from_bytes(envelope.original_content or b"", policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.messages.append(message)
        return "250 OK"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: object
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.password == PASSWORD.encode()
        return AuthResult(success=ok, handled=False)  # handled=True would send no answer


class Mailbox:
    """``async with Mailbox() as box``: an SMTP server on 127.0.0.1:``box.port``."""

    def __init__(self, *, login: bool = False) -> None:
        self.port = free_port()
        self._box = _Mailbox()
        self._login = login
        self._controller = self._make()

    def _make(self) -> Controller:
        return Controller(
            self._box,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=self._box.authenticate if self._login else None,
            auth_require_tls=False,
        )

    @property
    def messages(self) -> list[EmailMessage]:
        with self._box.lock:
            return list(self._box.messages)

    @property
    def connections(self) -> int:
        with self._box.lock:
            return self._box.connections

    def restart(self) -> None:
        """Stop (dropping every connection) and start again on the same port."""
        self._controller.stop()
        self._controller = self._make()
        self._controller.start()

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


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    return "" if part is None else str(part.get_content()).replace("\r\n", "\n")


@dataclass
class Receiver:
    """A webhook endpoint at ``/hook/{name}``; ``status`` is what it answers."""

    port: int = 0
    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    status: int = 200
    _runner: web.AppRunner | None = None

    def url(self, name: str = "a", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/hook/{name}?secret=s3cr3t"

    async def _handle(self, request: web.Request) -> web.Response:
        self.bodies.append(json.loads(await request.read()))
        self.headers.append(dict(request.headers))
        if 300 <= self.status < 400:
            return web.Response(status=self.status, headers={"Location": "http://10.0.0.1/"})
        return web.Response(status=self.status, text="receiver's own words, never logged")

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post("/hook/{name}", self._handle)
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
