"""Subscribers' e-mail: one message per delivery through the ``[smtp]`` server (aiosmtplib),
over a few connections kept for a round.

Every failure becomes one of a few short classes (:mod:`monitor.public.outcomes`): ``timeout``,
``refused`` (no connection), ``unavailable`` (the server said try later), ``rejected`` (it
refused this recipient, for good), ``auth failed``, ``failed``. The server's reply text is never
kept: it can hold the address, the server's name or worse, and it is stored and shown nowhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

import aiosmtplib

from monitor.public.outcomes import Broken, Refused, Unreachable
from monitor.public.settings import SmtpSettings
from shared.resilience.sanitize import one_line

DESTINATION = "smtp"
"""The breaker key of every e-mail: they all go through the one server."""


@dataclass(frozen=True, slots=True)
class Email:
    """One message to one subscriber, before it is put on the wire."""

    to: str
    subject: str
    text: str
    language: str
    message_id: str
    """Stable for the delivery (a re-send after a crash carries the same one)."""
    unsubscribe_url: str | None = None
    """Every message to a subscriber has one; the confirmation request has none."""
    at: float = 0.0
    headers: Mapping[str, str] = field(default_factory=dict)


def message_id(delivery_id: int, sender: str) -> str:
    """``<questcity.delivery.<id>.<hash>@<sender's domain>>``: the same on every send of one
    delivery, so a receiver may drop a duplicate (a crash between sending and recording)."""
    domain = sender.rpartition("@")[2] or "localhost"
    tag = hashlib.blake2b(f"{delivery_id}\x00{sender}".encode(), digest_size=6).hexdigest()
    return f"<questcity.delivery.{delivery_id}.{tag}@{domain}>"


def compose(email: Email, *, sender: str, sender_name: str) -> EmailMessage:
    """The message as sent: plain text in UTF-8, with the headers bulk senders must carry (one
    click unsubscribe, RFC 8058; ``Auto-Submitted``, RFC 3834, so auto-responders stay quiet)."""
    # one_line: a line break in a header value would be a header injection.
    message = EmailMessage(policy=SMTP)
    local, _, domain = sender.rpartition("@")
    message["From"] = Address(one_line(sender_name, 100), local, domain)
    message["To"] = email.to
    message["Subject"] = one_line(email.subject, 250)
    message["Date"] = format_datetime(datetime.fromtimestamp(email.at, UTC))
    message["Message-ID"] = email.message_id
    message["Auto-Submitted"] = "auto-generated"
    message["Content-Language"] = email.language
    if email.unsubscribe_url is not None:
        message["List-Unsubscribe"] = f"<{email.unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    for name, value in email.headers.items():
        message[name] = one_line(value, 900)
    message.set_content(email.text, charset="utf-8")
    return message


SESSIONS = 4
"""SMTP connections a round keeps open at most (the sender's e-mail lane is as wide)."""


class Mailer:
    """Sends through ``[smtp]``, over a few connections kept for the round: each e-mail takes
    an idle one (or opens one), sends, and gives it back; a connection that failed is closed
    (the next e-mail opens a fresh one), and :meth:`aclose` ends them all at the round's end,
    so none is left to go stale between rounds."""

    def __init__(self, settings: SmtpSettings, *, password: str | None, sender_name: str) -> None:
        self._settings = settings
        self._password = password
        self._sender_name = sender_name
        self._idle: list[aiosmtplib.SMTP] = []
        self.connections = 0
        """Connections opened so far (figures and tests)."""

    @property
    def timeout(self) -> float:
        return self._settings.timeout

    def destination(self) -> str:
        return DESTINATION

    async def _connect(self) -> aiosmtplib.SMTP:
        settings = self._settings
        client = aiosmtplib.SMTP(
            hostname=settings.host,
            port=settings.port,
            username=settings.username,
            password=self._password if settings.username else None,
            use_tls=settings.security == "tls",
            start_tls=settings.security == "starttls",
            timeout=settings.timeout,
        )
        self.connections += 1
        await client.connect()  # logs in too when a username is set
        return client

    async def send(self, email: Email) -> None:
        settings = self._settings
        message = compose(email, sender=settings.sender, sender_name=self._sender_name)
        kept = self._idle.pop() if self._idle else None
        if kept is not None and not kept.is_connected:
            kept = None
        # A kept connection the server dropped while idle is tried once more on a fresh one
        # (a duplicate is as unlikely as after any crash: the Message-ID lets receivers drop it).
        for client_or_none in (kept, None) if kept is not None else (None,):
            client = client_or_none
            try:
                if client is None:
                    client = await self._connect()
                await client.send_message(message, sender=settings.sender, recipients=[email.to])
            except Exception as error:
                if client is not None:
                    client.close()
                if client_or_none is not None and isinstance(
                    error, aiosmtplib.SMTPServerDisconnected
                ):
                    continue
                failure = classify(error)
                break
            self._idle.append(client)
            return
        # Raised outside the handler: the server's reply (in the original) is not even kept as
        # the exception's context, so no traceback can print it.
        raise failure

    async def aclose(self) -> None:
        """End the idle connections (politely; a server that does not answer is just dropped)."""
        idle, self._idle = self._idle, []
        for client in idle:
            try:
                await client.quit(timeout=min(self._settings.timeout, 2.0))
            except Exception:  # its reply is of no interest, nor is its failure
                client.close()


def classify(error: Exception) -> Exception:
    """An aiosmtplib (or socket) error as one of the short classes."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        return _refused(min((r.code for r in error.recipients), default=550))
    if isinstance(error, aiosmtplib.SMTPRecipientRefused):
        return _refused(error.code)
    if isinstance(error, aiosmtplib.SMTPAuthenticationError):
        return Broken("auth failed")
    if isinstance(error, TimeoutError):  # aiosmtplib's timeouts are TimeoutErrors too
        return Unreachable("timeout")
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return Unreachable("unavailable") if 400 <= error.code < 500 else Broken("rejected")
    if isinstance(error, OSError):  # SMTPConnectError, SMTPServerDisconnected, sockets
        return Unreachable("refused")
    if isinstance(error, aiosmtplib.SMTPException):
        return Broken("failed")
    return error


def _refused(code: int) -> Exception:
    """A recipient refused: 5xx is for good (no such mailbox); 4xx is a later try (greylisting,
    a full mailbox)."""
    if 400 <= code < 500:
        return Refused("deferred")
    return Refused("rejected", final=True)


def mask_address(address: str) -> str:
    """An e-mail address as logs may show it: ``j***@example.org``."""
    local, at, domain = address.rpartition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"
