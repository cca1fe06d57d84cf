"""Bounds on the connections an HTTP server holds, for every server QuestCity starts.

A connection that never finishes its request headers (an idle socket, a slowloris drip) costs a
file descriptor and a protocol object until something closes it; 20,000 of them used to stop the
backend answering ``/live``. This package gives a server three bounds:

- a **header deadline**: a connection whose request headers are not complete within
  ``header_timeout`` seconds of its first byte being awaited is closed;
- a **keep-alive timeout**: an idle kept-alive connection is closed after ``keepalive_timeout``;
- a **connection cap**: at ``max_connections``, a new connection first evicts the oldest one that
  is only waiting (for headers or in keep-alive), and is refused with a short 503 when every held
  connection is busy with a request, so the cap never starves real requests of a slot.

:mod:`connection_guard.limits` is the policy (standard library only);
:mod:`connection_guard.uvicorn_protocol` puts it under uvicorn (backend, status page) and
:mod:`connection_guard.asyncio_protocol` under any asyncio server such as aiohttp (the TUI server).

Why a package of its own: the backend and the status page both serve through uvicorn and may not
import each other (ARCHITECTURE §2), and ``shared.resilience`` is the standard-library policy
library, not a place for a uvicorn subclass. This package imports no part of QuestCity, so
every part may use it without changing the direction of any dependency.
"""

from connection_guard.limits import (
    ConnectionLimits,
    ConnectionRegistry,
    LimitsError,
    raise_open_files_limit,
)

__all__ = ["ConnectionLimits", "ConnectionRegistry", "LimitsError", "raise_open_files_limit"]
