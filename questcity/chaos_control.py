"""The other end of ``questcity chaos`` (:mod:`questcity.chaos`): the Unix socket a running
``questcity up`` listens on. Each connection carries one JSON request line, answered with one
JSON line by :func:`questcity.chaos.handle` on the stack's fault proxies."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping

from questcity.chaos import CONTROL_SOCKET, handle
from questcity.embedded.faultproxy import FaultProxy


async def serve_control(
    proxies: Mapping[str, FaultProxy], *, on_fault: Callable[[str, str], None]
) -> asyncio.AbstractServer:
    """Listen on :data:`~questcity.chaos.CONTROL_SOCKET` (replacing a socket file a stack that
    died left behind). ``on_fault(service, mode)`` is told of each fault set or cleared."""
    with contextlib.suppress(FileNotFoundError):
        CONTROL_SOCKET.unlink()

    async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = json.loads(await reader.readline())
            if not isinstance(request, dict):
                raise ValueError("expected a JSON object")
            answer = await asyncio.to_thread(handle, proxies, request)
            if answer.get("ok") and "mode" in answer:
                on_fault(str(request.get("service")), str(answer["mode"]))
        except ValueError as error:
            answer = {"ok": False, "error": str(error)}
        writer.write(json.dumps(answer).encode() + b"\n")
        await writer.drain()
        writer.close()

    return await asyncio.start_unix_server(respond, path=str(CONTROL_SOCKET))
