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
before it is parsed, a refusal said as :func:`~monitor.checks.run.failure_of` says it for an
``http`` check too (OpenSSL's own verify message and reason code, cut; the name checked is the
operator's own setting, not a secret). The host is looked up by the context's resolver, never
on the loop's default executor; the CAs trusted are :func:`monitor.checks.trust.trust`'s, the
same as an ``http`` check's. Once ``notAfter`` is read the connection is dropped, with no
close_notify: a probe has nothing to say goodbye to, and a peer that never answers one must not
hold the run until its deadline.
"""

from __future__ import annotations

import asyncio
import ssl

from monitor.checks.conditions import Observation
from monitor.checks.context import RunContext
from monitor.checks.resolve import Unresolved, elapsed_ms, open_connection
from monitor.checks.run import failure_of, judged, unreached, unrunnable
from monitor.checks.spec import Check, Outcome, TlsSettings
from monitor.checks.trust import Unreadable, trust
from monitor.store.models import Status

NOT_AFTER_CHARS = 40
"""``notAfter`` as Python writes it is ``Jun  1 12:00:00 2030 GMT`` (24 characters)."""
DAY = 86400.0


async def run(check: Check, context: RunContext) -> Outcome:
    """One run; the overall deadline is the runner's (a handshake that never ends is cut by
    it: ``timed out after N s``)."""
    settings = check.settings
    if not isinstance(settings, TlsSettings):
        raise TypeError(f"{check.name} is a {check.kind} check, not tls")
    try:
        verifying = trust(settings.ca_file)
    except Unreadable:
        return unrunnable("ca_file cannot be read as PEM certificates")
    clock = context.clock
    started = clock.monotonic()
    name = settings.server_name or settings.host
    writer: asyncio.StreamWriter | None = None
    try:
        try:
            _reader, writer = await open_connection(context.resolver, settings.host, settings.port)
            await writer.start_tls(verifying, server_hostname=name)
        except Unresolved as error:
            return unreached(check, error.reason, latency_ms=elapsed_ms(clock, started))
        except (OSError, ssl.SSLError) as error:
            # A certificate or handshake refused (an SSLError, itself an OSError: unhealthy);
            # refused, no route, a connection cut (unreachable). Said as a class, as for an
            # http check, never the exception's text.
            status, text = failure_of(error, check.timeout)
            return unreached(check, text, latency_ms=elapsed_ms(clock, started), status=status)
        latency_ms = elapsed_ms(clock, started)
        not_after = _not_after(writer)
    finally:
        # Read, refused, cut or cancelled at the deadline: dropped at once, no close_notify.
        if writer is not None:
            writer.transport.abort()
    if not_after is None:
        return Outcome(
            Status.UNHEALTHY, latency_ms, error="certificate has no readable expiry date"
        )
    seconds = not_after - clock.wall()
    problem, warning = _expiry(settings, seconds)
    seen = Observation(connected=True, response_ms=latency_ms, certificate_seconds=seconds)
    return judged(check, seen, latency_ms=latency_ms, failure=problem, warning=warning)


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
