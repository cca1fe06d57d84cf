"""How often one client may ask for a subscription: a sliding hour per client, in memory.

A subscription form is a spam cannon if anyone can make it mail anyone as often as they like. The
store bounds each address (one confirmation per ``resend_after``) and the pending total
(``max_pending``); this bounds each *client*: ``per_client_per_hour`` requests, then 429 until the
oldest of them is an hour old.

The client is the connection's peer address (the ASGI scope's ``client``), never a header: an
``X-Forwarded-For`` is whatever the client wrote. Behind a reverse proxy, run uvicorn with
``--forwarded-allow-ips`` set to the proxy so that the peer it reports is the real one.

IPv6 clients are counted by their /64: one host usually holds a whole /64 and could otherwise take
a fresh address for every request. Memory is bounded: at most ``max_clients`` clients are kept,
the least recently seen forgotten first (a flood of distinct addresses forgets old clients early,
which only errs towards letting a request through; the store's bounds still hold).
"""

from __future__ import annotations

import ipaddress
import math
from collections import OrderedDict, deque
from collections.abc import Callable

from starlette.requests import Request

WINDOW = 3600.0
MAX_CLIENTS = 10_000


def client_key(host: str | None) -> str:
    """The key a client is counted under: its IPv4 address, or its IPv6 address's /64 (an
    IPv4-mapped IPv6 address as the IPv4 address); anything else (a test client, a Unix
    socket) as given."""
    if not host:
        return "-"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:100]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def client_of(request: Request) -> str:
    """The key a request's client is counted (and its form token bound) under."""
    return client_key(request.client.host if request.client else None)


class RateLimiter:
    """At most ``per_window`` requests per client within any ``window`` seconds."""

    def __init__(
        self,
        per_window: int,
        *,
        clock: Callable[[], float],
        window: float = WINDOW,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        if per_window < 1 or max_clients < 1:
            raise ValueError("per_window and max_clients must be at least 1")
        self.per_window = per_window
        self.window = window
        self.max_clients = max_clients
        self.clock = clock
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def take(self, client: str) -> int | None:
        """Count one request of ``client``: None if it may go ahead; else the whole seconds until
        it may (for ``Retry-After``), and the refused request is not counted."""
        now = self.clock()
        times = self._seen.get(client)
        if times is None:
            times = self._seen[client] = deque(maxlen=self.per_window)
            while len(self._seen) > self.max_clients:
                self._seen.popitem(last=False)
        else:
            self._seen.move_to_end(client)
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) >= self.per_window:
            return max(1, math.ceil(times[0] + self.window - now))
        times.append(now)
        return None
