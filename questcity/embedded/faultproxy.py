"""A TCP proxy that breaks on command: put it between a client and a real server.

    with FaultProxy(target=postgres.address) as proxy:
        url = postgres.url_for(address=proxy.address)    # clients connect to the proxy
        proxy.blackhole()      # nothing gets through, nothing is answered: clients time out
        proxy.heal()           # back to passing bytes

Modes (:class:`Mode`), and what each does to connections already open and to new ones:

=========== =================================================== ====================================
mode        open connections                                    new connections
=========== =================================================== ====================================
PASS        bytes pass both ways                                accepted, connected upstream
LATENCY     each chunk waits ``latency`` seconds first          as PASS, with the delay
BLACKHOLE   held: nothing more is forwarded either way          accepted, then held: no upstream
            (what was held passes on when the mode changes)     connection, no answer
RESET       reset (RST) at the switch                           accepted, then reset at once
REFUSE      reset at the switch (``keep_existing=True``: kept)  refused: nothing listens on the port
=========== =================================================== ====================================

A connection held by BLACKHOLE resumes when the mode changes, like a healed network partition:
PASS delivers what was held. RESET and REFUSE use ``SO_LINGER`` 0, so the peers see a real RST
(``ConnectionResetError``), not an orderly close. A connection that the kernel has accepted but the
proxy has not picked up yet counts as new: closing the port for REFUSE resets it. When the upstream
server itself is down, a new client connection is accepted and then reset.

The proxy runs its own event loop in its own thread, so synchronous tests can use it, and a client
stuck on a blackholed connection never stalls the proxy (or the test's loop, which the client
shares). Mode switches are synchronous and thread-safe: when the call returns the mode is in force,
open connections included. The listening port stays the same for the proxy's lifetime (REFUSE
closes the socket; the next mode binds the same port again), so clients keep one URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import socket
import struct
import threading
from collections.abc import Coroutine, Sequence
from types import TracebackType
from typing import Any, TypeVar

from questcity.embedded.ports import free_port

_T = TypeVar("_T")
_CHUNK = 64 * 1024
_LINGER_RST = struct.pack("ii", 1, 0)
_CALL_TIMEOUT = 10.0


class Mode(enum.Enum):
    PASS = "pass"
    LATENCY = "latency"
    BLACKHOLE = "blackhole"
    RESET = "reset"
    REFUSE = "refuse"


def _rst_socket(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
    sock.close()


def _rst(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
    writer.transport.abort()


def _close_accepted(accepting: asyncio.Future[tuple[socket.socket, Any]]) -> None:
    if not accepting.cancelled() and accepting.exception() is None:
        accepting.result()[0].close()


class _Link:
    """A client connection, the upstream connection made for it, and the task serving both."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.client: asyncio.StreamWriter | None = None
        self.upstream: asyncio.StreamWriter | None = None
        self.task: asyncio.Task[None] | None = None

    def reset(self) -> None:
        """Reset both connections (RST) and stop serving them."""
        if self.client is None:
            _rst_socket(self.sock)
        for writer in (self.client, self.upstream):
            if writer is not None:
                _rst(writer)
        if self.task is not None:
            self.task.cancel()

    def close(self) -> None:
        if self.client is None:
            self.sock.close()
        for writer in (self.client, self.upstream):
            if writer is not None:
                writer.close()


class FaultProxy:
    """Forwards ``host:port`` to ``target``, failing as told (see the module's table)."""

    def __init__(
        self,
        target: tuple[str, int],
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        name: str = "proxy",
        connect_timeout: float = 5.0,
        alternates: Sequence[tuple[str, int]] = (),
    ) -> None:
        self.target = target
        self.alternates = tuple(alternates)
        """More servers beside ``target`` (a backend's replicas): new connections go to each in
        turn, and one that cannot be reached is passed over for the next, as a load balancer
        does; the client is reset only when none can be reached."""
        self._turn = 0
        self.host = host
        self.port = port or free_port(host)
        self.name = name
        self.connect_timeout = connect_timeout
        self.accepted = 0
        """Connections accepted so far (refused ones are not counted)."""
        self._mode = Mode.PASS
        self._latency = 0.0
        self._links: set[_Link] = set()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._passable: asyncio.Event | None = None
        self._listener: socket.socket | None = None
        self._accept_task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        where = f"{self.host}:{self.port} -> {self.target[0]}:{self.target[1]}"
        return f"<FaultProxy {self.name} {where} {self._mode.value}>"

    # -- public, synchronous, thread-safe --------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def url(self, scheme: str = "http") -> str:
        """``scheme://host:port`` of the proxy (an S3 endpoint URL, say)."""
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def latency(self) -> float:
        return self._latency

    @property
    def open_connections(self) -> int:
        """Client connections open now (held ones included)."""
        return len(self._links)

    def start(self) -> FaultProxy:
        """Bind the port and start serving (in :attr:`Mode.PASS`)."""
        if self._thread is not None:
            return self
        listener = self._listen()
        ready = threading.Event()
        self._thread = threading.Thread(
            target=asyncio.run,
            args=(self._main(listener, ready),),
            name=f"fault-proxy-{self.name}",
            daemon=True,
        )
        self._thread.start()
        if not ready.wait(_CALL_TIMEOUT):
            raise RuntimeError(f"{self!r} did not start")
        return self

    def close(self) -> None:
        """Reset every connection, close the port and stop the thread."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None or loop is None or stopping is None:
            return
        loop.call_soon_threadsafe(stopping.set)
        thread.join(_CALL_TIMEOUT)
        if thread.is_alive():
            raise RuntimeError(f"{self!r} did not stop")
        self._thread = self._loop = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def set_mode(self, mode: Mode, *, latency: float = 0.0, keep_existing: bool = False) -> None:
        """Switch to ``mode``; see :meth:`slow` and :meth:`refuse` for the keyword arguments."""
        if mode is Mode.LATENCY and latency <= 0:
            raise ValueError("Mode.LATENCY needs a latency > 0 seconds")
        self._call(self._apply(mode, latency, keep_existing))

    def heal(self) -> None:
        """Back to :attr:`Mode.PASS`: connections held by a blackhole resume."""
        self.set_mode(Mode.PASS)

    def slow(self, latency: float) -> None:
        """Delay every chunk, either way, by ``latency`` seconds (a request and its answer: 2x)."""
        self.set_mode(Mode.LATENCY, latency=latency)

    def blackhole(self) -> None:
        """Forward nothing, answer nothing; new connections are accepted and held."""
        self.set_mode(Mode.BLACKHOLE)

    def reset(self) -> None:
        """Reset open connections now, and every new one as soon as it is accepted."""
        self.set_mode(Mode.RESET)

    def refuse(self, *, keep_existing: bool = False) -> None:
        """Stop listening (new connections are refused) and reset open ones unless kept."""
        self.set_mode(Mode.REFUSE, keep_existing=keep_existing)

    # -- the proxy's own loop --------------------------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, _T]) -> _T:
        if self._loop is None:
            coro.close()
            raise RuntimeError(f"{self!r} is not running")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("FaultProxy methods must not be called from the proxy's own thread")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(_CALL_TIMEOUT)

    def _listen(self) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(self.address)
            listener.listen(128)
            listener.setblocking(False)
        except BaseException:
            listener.close()
            raise
        return listener

    async def _main(self, listener: socket.socket, ready: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._mode, self._latency = Mode.PASS, 0.0
        self._stopping = asyncio.Event()
        self._passable = asyncio.Event()
        self._passable.set()
        self._start_accepting(listener)
        ready.set()
        await self._stopping.wait()
        await self._stop_accepting()
        for link in list(self._links):
            link.reset()
        tasks = [link.task for link in self._links if link.task is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0)  # let aborted transports close their sockets

    def _start_accepting(self, listener: socket.socket) -> None:
        self._listener = listener
        self._accept_task = asyncio.get_running_loop().create_task(self._accept(listener))

    async def _stop_accepting(self) -> None:
        if self._accept_task is not None:
            self._accept_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._accept_task
            self._accept_task = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    async def _apply(self, mode: Mode, latency: float, keep_existing: bool) -> None:
        assert self._passable is not None
        self._mode = mode
        self._latency = latency if mode is Mode.LATENCY else 0.0
        if mode is Mode.REFUSE:
            await self._stop_accepting()
        elif self._listener is None:
            self._start_accepting(self._listen())
        if mode is Mode.RESET or (mode is Mode.REFUSE and not keep_existing):
            doomed = list(self._links)
            for link in doomed:
                link.reset()
            tasks = [link.task for link in doomed if link.task is not None]
            await asyncio.gather(*tasks, return_exceptions=True)
        if mode is Mode.BLACKHOLE:
            self._passable.clear()
        else:
            self._passable.set()

    async def _accept(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            accepting = asyncio.ensure_future(loop.sock_accept(listener))
            try:
                sock, _ = await asyncio.shield(accepting)
            except asyncio.CancelledError:
                # Refusing cancels this task; a connection accepted in the same turn would be
                # dropped with the cancelled await, its socket left to the garbage collector
                # (a ResourceWarning in whatever test runs then): close it instead.
                accepting.cancel()
                accepting.add_done_callback(_close_accepted)
                raise
            except OSError:  # ECONNABORTED and the like: the next one may be fine
                await asyncio.sleep(0.01)
                continue
            self.accepted += 1
            if self._mode is Mode.RESET:
                _rst_socket(sock)
                continue
            link = _Link(sock)
            self._links.add(link)
            link.task = loop.create_task(self._serve(link))
            link.task.add_done_callback(functools.partial(self._forget, link))

    def _forget(self, link: _Link, _task: asyncio.Task[None]) -> None:
        self._links.discard(link)

    async def _serve(self, link: _Link) -> None:
        assert self._passable is not None
        try:
            reader, client = await asyncio.open_connection(sock=link.sock)
            link.client = client
            await self._passable.wait()  # a blackhole holds new connections here
            if self._mode in (Mode.RESET, Mode.REFUSE):
                _rst(client)
                return
            connected = await self._connect_upstream()
            if connected is None:  # the server is down: so is this connection
                _rst(client)
                return
            up_reader, upstream = connected
            link.upstream = upstream
            await self._splice(reader, upstream, up_reader, client)
        except (asyncio.CancelledError, OSError):
            pass  # reset by a mode switch or by close(), or the client is gone already
        finally:
            link.close()

    async def _connect_upstream(
        self,
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        servers = (self.target, *self.alternates)
        first = self._turn % len(servers)
        self._turn += 1
        for server in servers[first:] + servers[:first]:
            try:
                return await asyncio.wait_for(
                    asyncio.open_connection(*server), self.connect_timeout
                )
            except (OSError, TimeoutError):
                continue
        return None

    async def _splice(
        self,
        client_reader: asyncio.StreamReader,
        upstream: asyncio.StreamWriter,
        upstream_reader: asyncio.StreamReader,
        client: asyncio.StreamWriter,
    ) -> None:
        pumps = [
            asyncio.create_task(self._pump(client_reader, upstream)),
            asyncio.create_task(self._pump(upstream_reader, client)),
        ]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_EXCEPTION)
            if any(p.done() and not p.cancelled() and p.exception() for p in pumps):
                _rst(client)  # one side broke: the other one sees a reset too
                _rst(upstream)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._passable is not None
        while data := await reader.read(_CHUNK):
            await self._passable.wait()
            if self._latency > 0:
                await asyncio.sleep(self._latency)
                await self._passable.wait()
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof() and not writer.is_closing():
            with contextlib.suppress(OSError):
                writer.write_eof()
