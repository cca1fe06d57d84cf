"""``tcp`` checks against real asyncio TCP servers on 127.0.0.1, run by the
:class:`~monitor.checks.run.CheckRunner`: connect, send, read until ``expect`` (bounded in
bytes and time), judge; the connection closed after every run, however it ended."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType

import pytest

from monitor.checks.conditions import parse_condition
from monitor.checks.run import CheckRunner
from monitor.checks.spec import Check, CheckKind, TcpSettings
from monitor.checks.tcp import MAX_READ_BYTES, READ_SHARE
from monitor.store.models import Status
from shared.resilience import SYSTEM_CLOCK
from tests.support.polling import eventually
from tests.support.ports import free_port

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class TcpTarget:
    """Serves ``handler`` per connection; counts the connections the client closed."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.port = 0
        self.connections = 0
        self.closed_by_client = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> TcpTarget:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
            # Whatever the handler did, the client must go away: read until it does.
            while await reader.read(65536):
                pass
            self.closed_by_client += 1
        except OSError:
            self.closed_by_client += 1  # reset by the client: closed too
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def all_closed(self) -> bool:
        return self.closed_by_client == self.connections


def tcp_check(
    port: int,
    *conditions: str,
    send: str | None = None,
    expect: str | None = None,
    timeout: float = 2.0,
) -> Check:
    return Check(
        name="redis",
        kind=CheckKind.TCP,
        settings=TcpSettings("127.0.0.1", port, send=send, expect=expect),
        conditions=tuple(parse_condition(text, CheckKind.TCP) for text in conditions),
        interval=10.0,
        timeout=timeout,
    )


@pytest.fixture
async def runner() -> AsyncIterator[CheckRunner]:
    checks = CheckRunner(SYSTEM_CLOCK)
    try:
        yield checks
    finally:
        await checks.aclose()


async def pong(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    if await reader.readline() == b"PING\r\n":
        writer.write(b"+PONG\r\n")
        await writer.drain()


async def test_send_and_expect_seen_is_healthy(runner: CheckRunner) -> None:
    async with TcpTarget(pong) as target:
        outcome = await runner.run(
            tcp_check(target.port, "[BODY] == pat(+PONG*)", send="PING\r\n", expect="+PONG")
        )
        await eventually(target.all_closed, "the check closed its connection")
    assert (outcome.status, outcome.error) == (Status.HEALTHY, None)
    assert [(result.condition, result.ok) for result in outcome.results] == [
        ("[BODY] == pat(+PONG*)", True)
    ]
    assert outcome.latency_ms is not None and outcome.latency_ms < 1000


async def test_an_expect_not_met_is_unhealthy_with_what_was_read(runner: CheckRunner) -> None:
    """The server answers something else and stays open: judged on what it sent at
    ``READ_SHARE`` of the timeout, not timed out."""

    async def refuses(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(b"-NOAUTH Authentication required.\r\n")
        await writer.drain()

    async with TcpTarget(refuses) as target:
        outcome = await runner.run(
            tcp_check(target.port, send="PING\r\n", expect="+PONG", timeout=0.4)
        )
        await eventually(target.all_closed, "the check closed its connection")
    assert outcome.status is Status.UNHEALTHY
    assert outcome.error == 'expect "+PONG" not seen: got "-NOAUTH Authentication required."'
    assert outcome.latency_ms is not None
    assert 0.4 * READ_SHARE * 1000 <= outcome.latency_ms < 400


async def test_a_server_that_closes_without_the_expected_text_is_judged_at_once(
    runner: CheckRunner,
) -> None:
    async def closes(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async with TcpTarget(closes) as target:
        outcome = await runner.run(tcp_check(target.port, expect="220 mail", timeout=2.0))
    assert (outcome.status, outcome.error) == (
        Status.UNHEALTHY,
        'expect "220 mail" not seen: got nothing',
    )
    assert outcome.latency_ms is not None and outcome.latency_ms < 1000


async def test_reading_stops_at_the_cap(runner: CheckRunner) -> None:
    """A server pouring data that never contains ``expect`` is read up to 64 KiB, then judged:
    neither the memory nor the time of a run grows with what it sends."""
    poured = 0

    async def pours(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal poured
        with contextlib.suppress(OSError):
            for _ in range(64):  # 4 MiB if nobody stopped reading
                writer.write(b"y" * 65536)
                poured += 65536
                await writer.drain()

    async with TcpTarget(pours) as target:
        outcome = await runner.run(
            tcp_check(target.port, "len([BODY]) == 65536", expect="PONG", timeout=5.0)
        )
    assert outcome.status is Status.UNHEALTHY
    assert outcome.error is not None
    assert outcome.error.startswith('expect "PONG" not seen: got "yyyy')
    assert "len([BODY]) == 65536" not in outcome.error, f"{MAX_READ_BYTES} bytes were read"
    assert outcome.latency_ms is not None and outcome.latency_ms < 2000


async def test_without_expect_a_connection_is_enough_and_nothing_is_read(
    runner: CheckRunner,
) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        return

    async with TcpTarget(silent) as target:
        outcome = await runner.run(tcp_check(target.port, "[CONNECTED] == true"))
        await eventually(target.all_closed, "the check closed its connection")
    assert (outcome.status, outcome.error) == (Status.HEALTHY, None)
    assert outcome.latency_ms is not None and outcome.latency_ms < 1000


async def test_a_body_condition_reads_until_the_server_closes(runner: CheckRunner) -> None:
    async def banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n")
        await writer.drain()
        writer.close()

    async with TcpTarget(banner) as target:
        healthy = await runner.run(tcp_check(target.port, "[BODY] == re(^SSH-2\\.0-)"))
        unhealthy = await runner.run(tcp_check(target.port, "[BODY] == pat(SSH-1*)"))
    assert healthy.status is Status.HEALTHY
    assert unhealthy.status is Status.UNHEALTHY
    assert unhealthy.error is not None and "SSH-2.0-OpenSSH_9.6" in unhealthy.error


async def test_a_port_nobody_listens_on_is_unreachable_refused(runner: CheckRunner) -> None:
    outcome = await runner.run(tcp_check(free_port(), expect="+PONG"))
    assert (outcome.status, outcome.error) == (Status.UNREACHABLE, "connection refused")


async def test_a_port_that_must_stay_closed_is_healthy_when_refused(runner: CheckRunner) -> None:
    port = free_port()
    closed = await runner.run(tcp_check(port, "[CONNECTED] == false"))
    assert (closed.status, closed.error) == (Status.HEALTHY, None)

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        return

    async with TcpTarget(silent) as target:
        opened = await runner.run(tcp_check(target.port, "[CONNECTED] == false"))
    assert opened.status is Status.UNHEALTHY
    assert opened.error == "[CONNECTED] == false failed: got true"


async def test_a_name_that_does_not_resolve_is_unreachable(runner: CheckRunner) -> None:
    check = Check(
        name="nowhere",
        kind=CheckKind.TCP,
        settings=TcpSettings("no-such-host.invalid", 6379),
        timeout=3.0,
    )
    outcome = await runner.run(check)
    assert (outcome.status, outcome.error) == (Status.UNREACHABLE, "name does not resolve")


async def test_a_connect_that_never_completes_times_out_at_the_checks_timeout(
    runner: CheckRunner,
) -> None:
    """A listener whose accept queue is full drops new SYNs (as a filtered port does): the
    connect hangs until the check's deadline."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address = listener.getsockname()
    fillers: list[socket.socket] = []
    try:
        for _ in range(4):  # never accepted: the queue (backlog + 1) stays full
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(address)
            fillers.append(filler)
        check = Check("filtered", CheckKind.TCP, TcpSettings(*address), timeout=0.3)
        outcome = await runner.run(check)
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
    assert (outcome.status, outcome.error) == (Status.UNREACHABLE, "timed out after 0.3 s")
    assert outcome.latency_ms is not None and 300 <= outcome.latency_ms < 1000
