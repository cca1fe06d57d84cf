"""What textual-serve lacks: who may open the TUI in a browser, and from which page.

textual-serve has no authentication at all, and every websocket it accepts is a live on-call
session that can reset breakers. :class:`Guard` is an aiohttp middleware in front of it:

- **Authentication** (when a password is configured): HTTP Basic on the first request; the answer
  to it sets a signed session cookie (HttpOnly, SameSite=Strict, Secure behind ``https``), which the
  browser then sends with the websocket handshake and the static files. Wrong passwords are
  throttled (:mod:`monitor.tui.login_throttle`: growing delays per client and per user, 429 with
  ``Retry-After``); a browser with a valid cookie is never throttled.
- **Origin check** on the websocket, always: a page from another site cannot drive the TUI
  through the operator's browser (cross-site websocket hijacking), even on loopback.
- **Host check** without a password (loopback only): a request whose ``Host`` is not a loopback
  name or the public URL's host is refused, so DNS rebinding cannot reach the loopback TUI.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from monitor.tui.login_throttle import LoginThrottle

COOKIE = "questcity_tui_session"
SESSION_SECONDS = 12 * 3600
REALM = "QuestCity on-call TUI"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True, slots=True)
class Credentials:
    user: str
    password: str

    def __repr__(self) -> str:  # never print the password, not even in a traceback
        return f"Credentials(user={self.user!r}, password=***)"


class Guard:
    def __init__(
        self,
        credentials: Credentials | None,
        *,
        public_url: str | None = None,
        bound_host: str = "127.0.0.1",
        secret: bytes | None = None,
        wall: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.credentials = credentials
        self.public = urlsplit(public_url) if public_url else None
        self.bound_host = bound_host
        self.secret = secret or secrets.token_bytes(32)
        self.wall = wall
        self.throttle = LoginThrottle(credentials.user if credentials else "", clock=clock)

    def middleware(self) -> Middleware:
        @web.middleware
        async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
            return await self.handle(request, handler)

        return guard

    async def handle(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.credentials is None and not self._host_allowed(request):
            raise web.HTTPForbidden(
                text="This TUI answers only to a loopback address or its --public-url host.\n"
            )
        if request.path == "/ws" and not self._origin_allowed(request):
            raise web.HTTPForbidden(text="Cross-origin websocket refused.\n")
        if self.credentials is None:
            return await handler(request)
        by_cookie = self._cookie_valid(request.cookies.get(COOKIE, ""))
        if not by_cookie:
            self._log_in(request)
        response = await handler(request)
        if not by_cookie and not response.prepared:
            response.set_cookie(
                COOKIE,
                self.session_cookie(),
                max_age=SESSION_SECONDS,
                httponly=True,
                samesite="Strict",
                secure=self.public is not None and self.public.scheme == "https",
                path="/",
            )
        return response

    # -- sessions -------------------------------------------------------------------------------

    def session_cookie(self) -> str:
        expires = str(int(self.wall()) + SESSION_SECONDS)
        return f"{expires}.{self._sign(expires)}"

    def _sign(self, expires: str) -> str:
        user = self.credentials.user if self.credentials else ""
        return hmac.new(self.secret, f"{user}:{expires}".encode(), hashlib.sha256).hexdigest()

    def _cookie_valid(self, value: str) -> bool:
        expires, _, signature = value.partition(".")
        if not expires.isdigit() or not signature:
            return False
        return hmac.compare_digest(signature, self._sign(expires)) and int(expires) > self.wall()

    def _log_in(self, request: web.Request) -> None:
        """Let the request through on the right user and password; otherwise 401, or 429 while
        this client or user must wait after wrong guesses (the password is then not looked at)."""
        basic = _basic(request.headers.get("Authorization", ""))
        if basic is None:  # a browser's first request, or no credentials: not a guess
            raise _unauthorized()
        user, password = basic
        client = request.remote or "unknown"
        wait = self.throttle.retry_after(client, user)
        if wait:
            raise web.HTTPTooManyRequests(
                headers={"Retry-After": str(wait)},
                text=f"Too many wrong passwords: try again in {wait} s.\n",
            )
        if self._basic_valid(user, password):
            self.throttle.succeeded(client, user)
            return
        self.throttle.failed(client, user)
        raise _unauthorized()

    def _basic_valid(self, user: str, password: str) -> bool:
        if self.credentials is None:
            return False
        user_ok = hmac.compare_digest(user.encode(), self.credentials.user.encode())
        password_ok = hmac.compare_digest(password.encode(), self.credentials.password.encode())
        return user_ok and password_ok

    # -- where requests come from ---------------------------------------------------------------

    def _host_allowed(self, request: web.Request) -> bool:
        hostname = urlsplit(f"//{request.host}").hostname
        allowed = set(LOOPBACK_NAMES) | {self.bound_host.strip("[]").lower()}
        if self.public is not None and self.public.hostname:
            allowed.add(self.public.hostname.lower())
        return hostname is not None and hostname.lower() in allowed

    def _origin_allowed(self, request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        if origin is None:  # not a browser: no other site's page is involved
            return True
        netloc = urlsplit(origin).netloc.lower()
        allowed = {request.host.lower()}
        if self.public is not None:
            allowed.add(self.public.netloc.lower())
        return netloc in allowed


def _unauthorized() -> web.HTTPUnauthorized:
    return web.HTTPUnauthorized(
        headers={"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'},
        text="Authentication required: the user and password of this TUI server.\n",
    )


def _basic(header: str) -> tuple[str, str] | None:
    """The user and password of an ``Authorization: Basic`` header; ``None`` for anything else."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None
