"""The fault proxy: each mode's effect on open and new connections; plain sockets and asyncpg."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from tests.support import FaultProxy, Mode, PostgresServer
from tests.support.ports import free_port

# Timeouts that stand for "no answer": the proxy answers a live connection within milliseconds.
SILENCE = 0.3
PATIENCE = 5.0


class Client:
    """An asyncio connection through the proxy to the echo server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, proxy: FaultProxy) -> Client:
        reader, writer = await asyncio.open_connection(*proxy.address)
        return cls(reader, writer)

    async def echo(self, data: bytes, within: float = PATIENCE) -> bytes:
        self.writer.write(data)
        await self.writer.drain()
        async with asyncio.timeout(within):
            return await self.reader.readexactly(len(data))

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


@pytest.fixture
async def echo_address() -> AsyncIterator[tuple[str, int]]:
    """An echo server in the test's own loop."""
    writers: set[asyncio.StreamWriter] = set()

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.add(writer)
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            writers.discard(writer)

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    yield (host, port)
    server.close()
    for writer in writers:
        writer.close()
    await server.wait_closed()


@pytest.fixture
def proxy(echo_address: tuple[str, int]) -> Iterator[FaultProxy]:
    with FaultProxy(echo_address, name="echo") as proxy:
        yield proxy


@pytest.fixture
async def clients() -> AsyncIterator[list[Client]]:
    """Clients a test opens; closed after it."""
    opened: list[Client] = []
    yield opened
    for client in opened:
        await client.close()


async def connect(proxy: FaultProxy, clients: list[Client]) -> Client:
    client = await Client.connect(proxy)
    clients.append(client)
    return client


async def connect_and_echo(proxy: FaultProxy, clients: list[Client], data: bytes) -> bytes:
    """A new connection's first exchange (a reset may come at connect or at the first read)."""
    return await (await connect(proxy, clients)).echo(data)


# -- plain asyncio clients -----------------------------------------------------------------


async def test_pass_forwards_both_ways(proxy: FaultProxy, clients: list[Client]) -> None:
    client = await connect(proxy, clients)

    assert await client.echo(b"ping") == b"ping"
    assert proxy.mode is Mode.PASS
    assert proxy.accepted == 1


async def test_latency_delays_every_chunk_of_open_connections(
    proxy: FaultProxy, clients: list[Client]
) -> None:
    client = await connect(proxy, clients)
    await client.echo(b"warm")

    proxy.slow(0.15)
    started = time.monotonic()
    await client.echo(b"slow")
    elapsed = time.monotonic() - started

    assert elapsed >= 0.3  # 0.15 on the way there, 0.15 on the way back
    proxy.heal()
    assert await client.echo(b"fast") == b"fast"


async def test_blackhole_holds_open_and_new_connections_until_healed(
    proxy: FaultProxy, clients: list[Client]
) -> None:
    old = await connect(proxy, clients)
    await old.echo(b"before")

    proxy.blackhole()
    new = await connect(proxy, clients)  # accepted: the client can't tell it from a slow server
    for client, data in ((old, b"old"), (new, b"new")):
        with pytest.raises(TimeoutError):
            await client.echo(data, within=SILENCE)

    proxy.heal()  # what was held goes through now, like a healed partition
    async with asyncio.timeout(PATIENCE):
        assert await old.reader.readexactly(3) == b"old"
        assert await new.reader.readexactly(3) == b"new"


async def test_reset_resets_open_and_new_connections(
    proxy: FaultProxy, clients: list[Client]
) -> None:
    old = await connect(proxy, clients)
    await old.echo(b"before")

    proxy.reset()

    with pytest.raises(ConnectionResetError):
        await old.echo(b"x")
    with pytest.raises(ConnectionResetError):
        await connect_and_echo(proxy, clients, b"x")
    assert proxy.open_connections == 0


async def test_refuse_closes_the_port_and_heal_reopens_the_same_one(
    proxy: FaultProxy, clients: list[Client]
) -> None:
    old = await connect(proxy, clients)
    await old.echo(b"before")
    port = proxy.port

    proxy.refuse()

    with pytest.raises(ConnectionResetError):
        await old.echo(b"x")
    with pytest.raises(ConnectionRefusedError):
        await connect(proxy, clients)
    proxy.heal()
    assert proxy.port == port
    assert await connect_and_echo(proxy, clients, b"again") == b"again"


async def test_refuse_can_keep_open_connections(proxy: FaultProxy, clients: list[Client]) -> None:
    old = await connect(proxy, clients)
    await old.echo(b"before")  # served: not waiting in the listen backlog, which closing resets

    proxy.refuse(keep_existing=True)

    assert await old.echo(b"still") == b"still"
    with pytest.raises(ConnectionRefusedError):
        await connect(proxy, clients)


async def test_a_dead_upstream_resets_new_connections(clients: list[Client]) -> None:
    with (
        FaultProxy(("127.0.0.1", free_port()), name="nowhere") as proxy,
        pytest.raises(ConnectionResetError),
    ):
        await connect_and_echo(proxy, clients, b"anyone?")


def test_close_releases_the_port(echo_address: tuple[str, int]) -> None:
    proxy = FaultProxy(echo_address).start()
    proxy.close()
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
        sock.connect(proxy.address)


# -- synchronous use, with PostgreSQL's SSLRequest as a tiny real protocol exchange ----------

SSL_REQUEST = struct.pack("!ii", 8, 80877103)  # the server answers one byte: b"N" (no TLS here)


def ssl_request(proxy: FaultProxy, timeout: float) -> bytes:
    with socket.create_connection(proxy.address, timeout=timeout) as sock:
        sock.sendall(SSL_REQUEST)
        return sock.recv(1)


def test_sync_client_through_pg_proxy(pg_proxy: FaultProxy) -> None:
    assert ssl_request(pg_proxy, PATIENCE) == b"N"

    pg_proxy.blackhole()
    with pytest.raises(TimeoutError):
        ssl_request(pg_proxy, SILENCE)

    pg_proxy.refuse()
    with pytest.raises(ConnectionRefusedError):
        ssl_request(pg_proxy, SILENCE)


# -- asyncpg through pg_proxy ---------------------------------------------------------------


@pytest.fixture
async def pg_via_proxy(
    postgres_server: PostgresServer, pg_proxy: FaultProxy
) -> AsyncIterator[asyncpg.Connection]:
    """An open (idle, like a pooled one) asyncpg connection through the proxy."""
    conn = await asyncpg.connect(postgres_server.dsn_for(address=pg_proxy.address))
    yield conn
    conn.terminate()  # it may be broken by the test: don't wait for a goodbye


async def test_asyncpg_passes(pg_via_proxy: asyncpg.Connection) -> None:
    assert await pg_via_proxy.fetchval("SELECT 1") == 1


async def test_asyncpg_blackhole_times_out_open_and_new_connections(
    postgres_server: PostgresServer, pg_proxy: FaultProxy, pg_via_proxy: asyncpg.Connection
) -> None:
    pg_proxy.blackhole()

    with pytest.raises(TimeoutError):
        await pg_via_proxy.fetchval("SELECT 1", timeout=SILENCE)
    with pytest.raises(TimeoutError):
        await asyncpg.connect(postgres_server.dsn_for(address=pg_proxy.address), timeout=SILENCE)
    pg_proxy.heal()  # lets asyncpg's cancel request through before the connection is dropped


async def test_asyncpg_reset_breaks_open_connections(
    postgres_server: PostgresServer, pg_proxy: FaultProxy, pg_via_proxy: asyncpg.Connection
) -> None:
    pg_proxy.reset()

    with pytest.raises(asyncpg.ConnectionDoesNotExistError):
        await pg_via_proxy.fetchval("SELECT 1")
    with pytest.raises(ConnectionError):
        await asyncpg.connect(postgres_server.dsn_for(address=pg_proxy.address))


async def test_asyncpg_refuse(postgres_server: PostgresServer, pg_proxy: FaultProxy) -> None:
    pg_proxy.refuse()

    with pytest.raises(ConnectionRefusedError):
        await asyncpg.connect(postgres_server.dsn_for(address=pg_proxy.address))


async def test_asyncpg_latency(pg_proxy: FaultProxy, pg_via_proxy: asyncpg.Connection) -> None:
    pg_proxy.slow(0.1)

    started = time.monotonic()
    assert await pg_via_proxy.fetchval("SELECT 1") == 1

    assert time.monotonic() - started >= 0.2  # a query and its answer: a chunk each way


async def test_a_connection_accepted_as_refusing_cancels_the_accept_is_closed_not_leaked() -> None:
    """Refusing cancels the accept loop; a connection the kernel handed over in the same turn is
    closed by the loop's done-callback rather than left to the garbage collector."""
    import socket as socket_module

    from questcity.embedded.faultproxy import _close_accepted

    loop = asyncio.get_running_loop()
    accepted, peer = socket_module.socketpair()
    done: asyncio.Future[tuple[socket_module.socket, object]] = loop.create_future()
    done.set_result((accepted, None))
    _close_accepted(done)
    assert accepted.fileno() == -1  # closed
    peer.close()

    cancelled: asyncio.Future[tuple[socket_module.socket, object]] = loop.create_future()
    cancelled.cancel()
    _close_accepted(cancelled)  # nothing was accepted: nothing to close, no error
