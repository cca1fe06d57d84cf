"""Subscribers' webhooks: one JSON POST each, never to an address inside the monitor's network.

A subscriber chooses the URL, so it is hostile until checked: before every send its host is
resolved and the send refused (:data:`~monitor.public.outcomes.PRIVATE_ADDRESS`, for good) if ANY
address it resolves to is loopback, private, link-local, multicast, reserved, shared (CGNAT) or
unspecified — unless ``[subscriptions] allow_private_webhooks``. The connection then goes to the
address that was checked (the URL's host rewritten to it, ``Host`` and TLS's SNI and certificate
check kept on the name), so a name that resolves differently a moment later (DNS rebinding)
cannot slip in. Only the usual web ports (80, 443, 8080, 8443) and unprivileged ones (>= 1024)
are reached (:data:`PORT_NOT_ALLOWED`, for good): no mail, SSH or database port. A send is
one attempt of at most ``timeout`` seconds (the sender's backoff does the retrying), and the
sender keys its per-destination lanes and breakers by the checked ADDRESS
(:attr:`Target.destination`), so many names pointed at one slow host share one breaker.
Redirects are not followed, proxies from the environment are not used, and the answer's body
is never read: only its status counts.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from monitor.public.destinations import IPAddress, forbidden, port_allowed
from monitor.public.outcomes import PRIVATE_ADDRESS, Refused, Unreachable

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""Every address ``host`` resolves to (for ``port``), as text; raises ``OSError`` on failure."""

USER_AGENT = "QuestCity-Status-Webhooks/1"
MAX_URL = 2000
PORT_NOT_ALLOWED = "port not allowed"


async def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's resolver (``/etc/hosts`` included), off the event loop's thread."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True, slots=True)
class Target:
    """A webhook URL checked and resolved (:meth:`WebhookPoster.resolve`)."""

    url: httpx.URL
    address: str
    """The checked address the connection goes to."""

    @property
    def destination(self) -> str:
        """The lane and breaker key: the address, so names sharing a host share its breaker."""
        return f"webhook:{self.address}"


def destination(url: str) -> str:
    """A webhook URL's host as a key (before it is resolved: logs and fakes)."""
    try:
        host = httpx.URL(url).host
    except (httpx.InvalidURL, ValueError):
        return "webhook:?"
    return f"webhook:{host.lower()}"


def masked(url: str) -> str:
    """A webhook URL as logs may show it: scheme and host only (its path and query may hold
    the subscriber's own secret)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError):
        return "<invalid url>"
    return f"{parsed.scheme}://{parsed.host}/…"


class WebhookPoster:
    """POSTs subscribers' webhooks, each to a checked address (see the module's docstring)."""

    def __init__(
        self,
        *,
        timeout: float,
        allow_private: bool = False,
        resolver: Resolver = system_resolver,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._timeout = timeout
        self._allow_private = allow_private
        self._resolver = resolver
        self._given = transport
        self._transport: httpx.AsyncBaseTransport | None = transport

    def destination(self, url: str) -> str:
        return destination(url)

    async def __aenter__(self) -> WebhookPoster:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections (a transport is made again at the next send)."""
        transport, self._transport = self._transport, self._given
        if transport is not None and transport is not self._given:
            await transport.aclose()

    def _http(self) -> httpx.AsyncBaseTransport:
        # The transport, not a client: httpx's client logs every request's URL at INFO (the
        # subscriber's path and query may hold its secret), follows redirects if asked, keeps
        # cookies and reads proxies from the environment (which would defeat the pinning).
        if self._transport is None:
            self._transport = httpx.AsyncHTTPTransport(
                limits=httpx.Limits(max_connections=16, max_keepalive_connections=0)
            )
        return self._transport

    async def address(self, url: httpx.URL) -> str:
        """The checked address to connect to for ``url``'s host; :class:`Refused` (final) when
        any of its addresses is forbidden, :class:`Unreachable` when it does not resolve."""
        host = _ascii_host(url)
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            candidates: list[IPAddress] = [literal]
        else:
            try:
                found = await asyncio.wait_for(
                    self._resolver(host, url.port or _default_port(url)), self._timeout
                )
            except (OSError, TimeoutError):
                raise Unreachable("unresolved") from None
            candidates = []
            for text in found:
                try:
                    # getaddrinfo gives fe80::1%eth0 for scoped addresses: the scope is no help.
                    candidates.append(ipaddress.ip_address(text.split("%", 1)[0]))
                except ValueError:
                    raise Refused(PRIVATE_ADDRESS, final=True) from None
            if not candidates:
                raise Unreachable("unresolved")
        if not self._allow_private and any(forbidden(a) for a in candidates):
            raise Refused(PRIVATE_ADDRESS, final=True)
        return str(candidates[0])

    async def resolve(self, url: str) -> Target:
        """``url`` checked and its host resolved. Raises :class:`Refused` (for good) for a URL
        that is not one, a port not allowed or a forbidden address, :class:`Unreachable` for a
        host that does not resolve."""
        if len(url) > MAX_URL:
            raise Refused("invalid url", final=True)
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, ValueError):
            raise Refused("invalid url", final=True) from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise Refused("invalid url", final=True)
        if not port_allowed(parsed.port or _default_port(parsed)):
            raise Refused(PORT_NOT_ALLOWED, final=True)
        return Target(parsed, await self.address(parsed))

    async def post(self, url: str, payload: Mapping[str, Any], *, key: str | None = None) -> None:
        """:meth:`resolve` then :meth:`send`."""
        await self.send(await self.resolve(url), payload, key=key)

    async def send(
        self, target: Target, payload: Mapping[str, Any], *, key: str | None = None
    ) -> None:
        """Send ``payload``; returns when the receiver answered 2xx. Raises :class:`Unreachable`
        (no answer, 429, 5xx: retry later) or :class:`Refused` (3xx, other 4xx)."""
        parsed = target.url
        pinned = parsed.copy_with(host=target.address, username=None, password=None)
        headers = {
            "Host": _host_header(parsed),
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        if key is not None:
            headers["Idempotency-Key"] = key
        extensions = {"sni_hostname": _ascii_host(parsed)} if parsed.scheme == "https" else {}
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        request = httpx.Request("POST", pinned, headers=headers, content=body)
        request.extensions = {"timeout": httpx.Timeout(self._timeout).as_dict(), **extensions}
        failure: Exception | None = None
        try:
            # The answer's body is never read (a receiver could send gigabytes): its status is
            # all we need, and closing the stream drops the connection.
            response = await self._http().handle_async_request(request)
            await response.aclose()
        except httpx.TimeoutException:
            failure = Unreachable("timeout")
        except httpx.ConnectError:
            failure = Unreachable("refused")
        except httpx.HTTPError:
            failure = Unreachable("failed")
        if failure is not None:
            raise failure  # outside the handler: httpx's error (with the URL) is not kept
        status = response.status_code
        if 200 <= status < 300:
            return
        if status == 429 or status >= 500:
            raise Unreachable("unavailable")
        if 300 <= status < 400:
            raise Refused("redirect")
        raise Refused("rejected")


def _ascii_host(url: httpx.URL) -> str:
    """The host as DNS, TLS and ``Host`` take it (an internationalised name in its IDNA form)."""
    return url.raw_host.decode("ascii").strip("[]")


def _default_port(url: httpx.URL) -> int:
    return 443 if url.scheme == "https" else 80


def _host_header(url: httpx.URL) -> str:
    host = _ascii_host(url)
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return host if url.port is None else f"{host}:{url.port}"
