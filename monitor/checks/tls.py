"""A ``tls`` check: connect to ``host:port``, complete a TLS handshake that verifies the chain
for the name (``server_name``, else ``host``, also sent as SNI), and read how long the
certificate has left.

- healthy: the chain is valid for the name and at least ``min_days`` are left; fewer than
  ``warn_days`` left is still healthy, with a warning (``certificate expires in 20 days
  (warn_days 30)``) that raises ``certificate_expiring``;
- unhealthy: the certificate is not valid (expired, self-signed or from a CA not trusted, for
  another name: ``certificate not valid: …``), the handshake failed otherwise, fewer than
  ``min_days`` are left, or a written condition failed;
- unreachable: refused, timed out, the host name does not resolve, the connection was cut.

Days left are counted on the context's wall clock (a test's clock may be moved on); OpenSSL
itself refuses a certificate that has expired by the system's clock. Everything read from the
peer is bounded: the handshake by the check's timeout, ``notAfter`` to a few dozen characters
before it is parsed, OpenSSL's messages cut to :data:`MESSAGE_CHARS` printable characters. A
refusal never carries an exception's text beyond OpenSSL's own verify message and reason code
(the name checked is the operator's own setting, not a secret).
"""

from __future__ import annotations

import asyncio
import os
import ssl

from monitor.checks.conditions import Observation
from monitor.checks.context import RunContext
from monitor.checks.run import failure_of, judged, unreached, unrunnable
from monitor.checks.spec import Check, Outcome, TlsSettings
from monitor.store.models import Status
from shared.resilience import Clock
from shared.resilience.sanitize import one_line

MESSAGE_CHARS = 80
"""OpenSSL's verify message (``certificate has expired``, ``Hostname mismatch, …``), cut."""
NOT_AFTER_CHARS = 40
"""``notAfter`` as Python writes it is ``Jun  1 12:00:00 2030 GMT`` (24 characters)."""
CLOSE_SECONDS = 1.0
"""How long the TLS close (close_notify) may take before the connection is dropped."""
CONTEXTS = 32
"""Trust settings kept ready (one SSLContext per ca_file and its modification time)."""
DAY = 86400.0

_contexts: dict[tuple[str | None, int | None], ssl.SSLContext] = {}


class _Unreadable(Exception):
    """The ca_file cannot be read or holds no certificate."""


async def run(check: Check, context: RunContext) -> Outcome:
    """One run; the overall deadline is the runner's (a handshake that never ends is cut by
    it: ``timed out after N s``)."""
    settings = check.settings
    if not isinstance(settings, TlsSettings):
        raise TypeError(f"{check.name} is a {check.kind} check, not tls")
    try:
        trust = _trust(settings.ca_file)
    except _Unreadable:
        return unrunnable("ca_file cannot be read as PEM certificates")
    clock = context.clock
    started = clock.monotonic()
    name = settings.server_name or settings.host
    writer: asyncio.StreamWriter | None = None
    finished = False
    try:
        try:
            _reader, writer = await asyncio.open_connection(settings.host, settings.port)
            await writer.start_tls(trust, server_hostname=name)
        except ssl.SSLCertVerificationError as error:
            message = one_line(error.verify_message or "certificate verify failed", MESSAGE_CHARS)
            return _refused(f"certificate not valid: {message}", started, clock)
        except (OSError, ssl.SSLError) as error:
            # SSLError (a handshake refused: unhealthy) is an OSError; so are refused, no route,
            # a connection cut (unreachable). Said as a class, never the exception's text.
            status, text = failure_of(error, check.timeout)
            return unreached(check, text, latency_ms=_ms(started, clock), status=status)
        latency_ms = _ms(started, clock)
        not_after = _not_after(writer)
        finished = True
    finally:
        if writer is not None:
            if finished:
                await _close(writer)
            else:  # refused, cut or cancelled at the deadline: nothing to say goodbye to
                writer.transport.abort()
    if not_after is None:
        return _refused("certificate has no readable expiry date", started, clock)
    seconds = not_after - clock.wall()
    problem, warning = _expiry(settings, seconds)
    seen = Observation(connected=True, response_ms=latency_ms, certificate_seconds=seconds)
    return judged(check, seen, latency_ms=latency_ms, failure=problem, warning=warning)


def _ms(started: float, clock: Clock) -> float:
    return (clock.monotonic() - started) * 1000.0


def _refused(error: str, started: float, clock: Clock) -> Outcome:
    """Reached, but the certificate is wrong: unhealthy whatever the written conditions say (a
    certificate that is not valid is never healthy, and there are no days left to judge)."""
    return Outcome(Status.UNHEALTHY, _ms(started, clock), error=error)


def _expiry(settings: TlsSettings, seconds: float) -> tuple[str | None, str | None]:
    """``(problem, warning)`` for ``seconds`` left on the certificate."""
    if seconds < 0:
        return "certificate has expired", None
    if seconds < settings.min_days * DAY:
        return f"certificate expires {_in_days(seconds)} (min_days {settings.min_days})", None
    if seconds < settings.warn_days * DAY:
        return None, f"certificate expires {_in_days(seconds)} (warn_days {settings.warn_days})"
    return None, None


def _in_days(seconds: float) -> str:
    days = int(seconds // DAY)
    if days == 0:
        return "in less than a day"
    return "in 1 day" if days == 1 else f"in {days} days"


def _not_after(writer: asyncio.StreamWriter) -> float | None:
    """When the peer's certificate expires (seconds since the epoch); None when it cannot be
    read."""
    ssl_object = writer.get_extra_info("ssl_object")
    if not isinstance(ssl_object, ssl.SSLObject):
        return None
    certificate = ssl_object.getpeercert()
    if not certificate:
        return None
    value = certificate.get("notAfter")
    if not isinstance(value, str) or len(value) > NOT_AFTER_CHARS:
        return None
    try:
        return float(ssl.cert_time_to_seconds(value))
    except (ValueError, OverflowError):
        return None


async def _close(writer: asyncio.StreamWriter) -> None:
    """Say goodbye (TLS close_notify) for at most :data:`CLOSE_SECONDS`, else drop it."""
    writer.close()
    try:
        async with asyncio.timeout(CLOSE_SECONDS):
            await writer.wait_closed()
    except (TimeoutError, OSError, ssl.SSLError):
        writer.transport.abort()


def _trust(ca_file: str | None) -> ssl.SSLContext:
    """The client context for ``ca_file`` (None: the system's CAs): chain and name verified.
    Made once per file and modification time, so a renewed private CA is picked up."""
    mtime: int | None = None
    if ca_file is not None:
        try:
            mtime = os.stat(ca_file).st_mtime_ns
        except OSError:
            raise _Unreadable from None
    key = (ca_file, mtime)
    found = _contexts.get(key)
    if found is not None:
        return found
    try:
        made = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError, ValueError):
        raise _Unreadable from None
    made.check_hostname = True
    made.verify_mode = ssl.CERT_REQUIRED
    if len(_contexts) >= CONTEXTS:
        _contexts.pop(next(iter(_contexts)))
    _contexts[key] = made
    return made
