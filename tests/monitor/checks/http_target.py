"""A real HTTP/1.1 server on 127.0.0.1 for ``http`` check tests, on the test's event loop.

Each path answers as its :class:`Reply` says: a status, headers and a body (sent chunked when
``chunks`` are given, so nothing declares its length), a delay before the answer, or never
answering at all (``hang``). Every request is kept (:attr:`HttpTarget.requests`), and so is
whether the client closed each connection after its request (:attr:`HttpTarget.closed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from urllib.parse import urlsplit

MAX_HEAD = 64 * 1024


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    chunks: Sequence[bytes] = ()
    """Sent with ``Transfer-Encoding: chunked`` instead of ``body``."""
    before: Callable[[], Awaitable[None]] | None = None
    """Awaited before answering (a test moves its fake clock here: a slow answer, no sleep)."""
    hang: bool = False
    """Read the request, then say nothing until the client goes away."""
    close: bool = False
    """Close the connection right after the answer (however much of it was sent)."""


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    """Names lower-cased."""
    body: bytes


class HttpTarget:
    def __init__(
        self, routes: Mapping[str, Reply], *, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.routes = dict(routes)
        self.requests: list[Request] = []
        self.closed: list[bool] = []
        """Per connection, in order: whether the client closed it after one request."""
        self.port = 0
        self._ssl = ssl_context
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def url(self, path: str = "/", *, userinfo: str = "") -> str:
        scheme = "https" if self._ssl else "http"
        at = f"{userinfo}@" if userinfo else ""
        return f"{scheme}://{at}127.0.0.1:{self.port}{path}"

    async def __aenter__(self) -> HttpTarget:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._ssl)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            request = await self._read(reader)
            if request is None:
                return
            self.requests.append(request)
            reply = self.routes.get(request.path, Reply(404, b"no such page"))
            if reply.hang:
                await reader.read()
                return
            if reply.before is not None:
                await reply.before()
            writer.write(_head(reply))
            if reply.chunks:
                for chunk in reply.chunks:
                    writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    await writer.drain()
                writer.write(b"0\r\n\r\n")
            else:
                writer.write(reply.body)
            await writer.drain()
            if reply.close:
                return
            # The client's next move: close (a fresh connection per check) or keep it open.
            try:
                self.closed.append(await asyncio.wait_for(reader.read(1), 2.0) == b"")
            except TimeoutError:
                self.closed.append(False)
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError, ValueError):
            pass  # the client went away mid-way: what the tests look at is the client's side
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()

    async def _read(self, reader: asyncio.StreamReader) -> Request | None:
        head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > MAX_HEAD:
            return None
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        parts = urlsplit(target)
        return Request(method, parts.path, parts.query, headers, body)


def _head(reply: Reply) -> bytes:
    headers = dict(reply.headers)
    if reply.chunks:
        headers["Transfer-Encoding"] = "chunked"
    else:
        headers.setdefault("Content-Length", str(len(reply.body)))
    lines = [f"HTTP/1.1 {reply.status} Whatever"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
