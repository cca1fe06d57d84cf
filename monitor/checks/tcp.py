"""A ``tcp`` check: connect to ``host:port``, optionally send a line and read until ``expect``
is seen (a Redis ``PING`` → ``+PONG``, an SMTP banner), judged by ``[CONNECTED]``, ``[BODY]``
and ``[RESPONSE_TIME]``.

What the server sends is outside input: read up to :data:`MAX_READ_BYTES`, and for at most
:data:`READ_SHARE` of the check's timeout (a server that says nothing, or never the expected
text, is an answer: ``expect "+PONG" not seen: got nothing``, not a timeout). Without ``expect``
nothing is read unless a condition reads ``[BODY]`` (then until the server closes, the bound or
that share of the timeout). The connection is closed however the run ends. The host is looked
up by the context's resolver (:mod:`monitor.checks.resolve`), never on the loop's default
executor.
"""

from __future__ import annotations

import asyncio
import contextlib

from monitor.checks.conditions import Observation
from monitor.checks.context import RunContext
from monitor.checks.resolve import Unresolved, elapsed_ms, open_connection
from monitor.checks.run import failure_of, judged, names, quoted, unreached
from monitor.checks.spec import OBSERVED_CHARS, Check, Outcome, TcpSettings
from shared.resilience import Clock, within
from shared.resilience.sanitize import one_line

MAX_READ_BYTES = 64 * 1024
READ_SHARE = 0.9
"""Reading stops at this share of the check's timeout (counted from the start of the run),
so that a silent server is judged on what it sent, before the runner's overall deadline."""


async def run(check: Check, context: RunContext) -> Outcome:
    settings = check.settings
    assert isinstance(settings, TcpSettings)
    clock = context.clock
    started = clock.monotonic()
    try:
        reader, writer = await open_connection(context.resolver, settings.host, settings.port)
    except Unresolved as error:
        return unreached(check, error.reason, latency_ms=elapsed_ms(clock, started))
    except OSError as error:  # refused, no route, unreachable
        status, text = failure_of(error, check.timeout)
        return unreached(check, text, latency_ms=elapsed_ms(clock, started), status=status)
    received = bytearray()
    try:
        if settings.send:
            writer.write(settings.send.encode())
            await writer.drain()
        if settings.expect or names(check, "BODY"):
            left = check.timeout * READ_SHARE - (clock.monotonic() - started)
            await _read(reader, received, settings.expect, left, clock)
    except OSError:
        pass  # reset or closed mid-way: what it sent before is judged like any other answer
    finally:
        await _close(writer)
    latency_ms = elapsed_ms(clock, started)
    failure = None
    if settings.expect and settings.expect.encode() not in received:
        expected = one_line(settings.expect, OBSERVED_CHARS)
        failure = f'expect "{expected}" not seen: got {quoted(received.decode("utf-8", "replace"))}'
    seen = Observation(
        connected=True, response_ms=latency_ms, body=received.decode("utf-8", errors="replace")
    )
    return judged(check, seen, latency_ms=latency_ms, failure=failure)


async def _read(
    reader: asyncio.StreamReader,
    received: bytearray,
    expect: str | None,
    seconds: float,
    clock: Clock,
) -> None:
    """Into ``received`` until ``expect`` is in it, the server closes, :data:`MAX_READ_BYTES`,
    or ``seconds``: whatever was read by then stays in ``received``."""
    wanted = expect.encode() if expect else None

    async def reading() -> None:
        while len(received) < MAX_READ_BYTES:
            chunk = await reader.read(MAX_READ_BYTES - len(received))
            if not chunk:
                return
            # Only the new bytes (and the few before them a match may start in) are searched:
            # a server trickling a byte at a time costs linear time, not quadratic.
            start = max(0, len(received) - len(wanted) + 1) if wanted else 0
            received.extend(chunk)
            if wanted and received.find(wanted, start) >= 0:
                return

    if seconds <= 0:
        return
    with contextlib.suppress(TimeoutError):
        await within(reading(), seconds, clock)


async def _close(writer: asyncio.StreamWriter) -> None:
    # Aborted when something is still unsent (a server that does not read would otherwise
    # hold the close until it does); either way the socket is let go before this returns.
    transport = writer.transport
    if transport.get_write_buffer_size():
        transport.abort()
    else:
        writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
