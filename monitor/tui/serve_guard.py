"""What textual-serve lacks: who may open the TUI in a browser, and from which page.

textual-serve has no authentication at all, and every websocket it accepts is a live on-call
session that can reset breakers. :class:`Guard` is an aiohttp middleware in front of it:

- **Authentication** (when a password is configured): HTTP Basic on the first request; the answer
  to it sets a signed session cookie (HttpOnly, SameSite=Strict, Secure behind ``https``), which the
  browser then sends with the websocket handshake and the static files. Wrong passwords are
  throttled (:mod:`monitor.tui.login_throttle`: growing delays per client and per user, 429 with
  ``Retry-After``); a browser with a valid session cookie is never throttled.
- **Device cookies** (OWASP, "Slow Down Online Guessing Attacks with Device Cookies"): a right
  password also sets a long-lived signed cookie bound to the user (``DEVICE_SECONDS``, HttpOnly,
  SameSite=Strict, Secure behind ``https``). A later login presenting it skips the per-client and
  per-user limits and is slowed only by its own wrong passwords, so a guessing flood from anywhere
  cannot lock the owner out of a browser it has used before. Its key comes from
  :func:`device_secret` (the password and a salt kept on disk): cookies outlive a restart, and
  changing the password voids them all. Anything else in the cookie (forged, for another user or
  server, expired, not ASCII) is simply no device cookie.
- **Client address**: the peer's address, unless the peer is a ``trusted_proxies`` address (a
  reverse proxy in front): then the right-most address in ``X-Forwarded-For`` that is not a
  trusted proxy, the one the proxy itself saw. ``X-Forwarded-For`` from anyone else is ignored
  (it is whatever the client wants it to be).
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
import ipaddress
import os
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from monitor.tui.login_throttle import LoginThrottle

COOKIE = "questcity_tui_session"
SESSION_SECONDS = 12 * 3600
DEVICE_COOKIE = "questcity_tui_device"
DEVICE_SECONDS = 90 * 86400
SALT_FILE = "device-salt"
KEY_ITERATIONS = 600_000
"""PBKDF2-SHA256 rounds (OWASP's figure) for the device key, once at start: a stolen device cookie
and salt file must not make the password cheap to find offline."""
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
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
        device_secret: bytes | None = None,
        trusted_proxies: Sequence[Network] = (),
        wall: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.credentials = credentials
        self.public = urlsplit(public_url) if public_url else None
        self.bound_host = bound_host
        self.secret = secret or secrets.token_bytes(32)
        # Without a persisted secret, device cookies last as long as this process.
        self.device_secret = device_secret or secrets.token_bytes(32)
        self.trusted_proxies = tuple(trusted_proxies)
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
            self._set_cookie(response, COOKIE, self.session_cookie(), SESSION_SECONDS)
            self._set_cookie(response, DEVICE_COOKIE, self.device_cookie(), DEVICE_SECONDS)
        return response

    def _set_cookie(self, response: web.StreamResponse, name: str, value: str, age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=age,
            httponly=True,
            samesite="Strict",
            secure=self.public is not None and self.public.scheme == "https",
            path="/",
        )

    # -- sessions and devices -------------------------------------------------------------------

    def session_cookie(self) -> str:
        expires = str(int(self.wall()) + SESSION_SECONDS)
        return f"{expires}.{self._sign(self.secret, 'session', expires)}"

    def device_cookie(self) -> str:
        """A new device id for this browser, signed for the user until ``DEVICE_SECONDS``."""
        device = f"{int(self.wall()) + DEVICE_SECONDS}-{secrets.token_hex(16)}"
        return f"{device}.{self._sign(self.device_secret, 'device', device)}"

    def _sign(self, key: bytes, kind: str, payload: str) -> str:
        user = self.credentials.user if self.credentials else ""
        message = f"{kind}:{user}:{payload}".encode()
        return hmac.new(key, message, hashlib.sha256).hexdigest()

    def _cookie_valid(self, value: str) -> bool:
        expires = self._verified(self.secret, "session", value)
        return expires is not None and expires.isdigit() and int(expires) > self.wall()

    def _device(self, value: str) -> str | None:
        """The device id of a valid, unexpired device cookie for the user, else ``None``."""
        device = self._verified(self.device_secret, "device", value)
        if device is None:
            return None
        expires, _, _ = device.partition("-")
        return device if expires.isdigit() and int(expires) > self.wall() else None

    def _verified(self, key: bytes, kind: str, value: str) -> str | None:
        """The payload of ``payload.signature`` when signed with ``key``; ``None`` for anything
        else, including text that is not ASCII (``compare_digest`` refuses it, ``isdigit``
        accepts digits ``int`` does not)."""
        if not value.isascii():
            return None
        payload, _, signature = value.rpartition(".")
        if not payload:
            return None
        return payload if hmac.compare_digest(signature, self._sign(key, kind, payload)) else None

    def _log_in(self, request: web.Request) -> None:
        """Let the request through on the right user and password; otherwise 401, or 429 while
        this client or user must wait after wrong guesses (the password is then not looked at).
        With a valid device cookie for that user only the device's own wrong guesses count."""
        basic = _basic(request.headers.get("Authorization", ""))
        if basic is None:  # a browser's first request, or no credentials: not a guess
            raise _unauthorized()
        user, password = basic
        client = self.client_address(request)
        device = None
        if self.credentials is not None and user == self.credentials.user:
            device = self._device(request.cookies.get(DEVICE_COOKIE, ""))
        wait = self.throttle.retry_after(client, user, device)
        if wait:
            raise web.HTTPTooManyRequests(
                headers={"Retry-After": str(wait)},
                text=f"Too many wrong passwords: try again in {wait} s.\n",
            )
        if self._basic_valid(user, password):
            self.throttle.succeeded(client, user, device)
            return
        self.throttle.failed(client, user, device)
        raise _unauthorized()

    def _basic_valid(self, user: str, password: str) -> bool:
        if self.credentials is None:
            return False
        user_ok = hmac.compare_digest(user.encode(), self.credentials.user.encode())
        password_ok = hmac.compare_digest(password.encode(), self.credentials.password.encode())
        return user_ok and password_ok

    # -- where requests come from ---------------------------------------------------------------

    def client_address(self, request: web.Request) -> str:
        """Who is guessing: the peer, or behind a trusted proxy the right-most untrusted address
        of ``X-Forwarded-For`` (entries left of it were written by the client: anything at all)."""
        peer = request.remote or "unknown"
        if not self._trusted(peer):
            return peer
        forwarded = ",".join(request.headers.getall("X-Forwarded-For", []))
        client = peer
        for entry in reversed(forwarded.split(",")):
            address = _address(entry)
            if address is None:  # not an address: nothing trustworthy further left
                break
            client = address
            if not self._trusted(address):
                break
        return client

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted_proxies)

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


def _address(entry: str) -> str | None:
    """An ``X-Forwarded-For`` entry as a normalised IP address (a port some proxies append, and
    IPv6 brackets, dropped); ``None`` when it is not one."""
    text = entry.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        return None


def trusted_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """``--trusted-proxy`` values (each an address or a network, or a comma list of them)."""
    networks = []
    for value in values:
        for item in value.split(","):
            if not item.strip():
                continue
            try:
                networks.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError:
                raise ValueError(
                    f"--trusted-proxy {item.strip()!r}: give the reverse proxy's IP address or "
                    "network, e.g. 127.0.0.1 or 10.0.0.0/8"
                ) from None
    return tuple(networks)


def device_secret(
    credentials: Credentials, state_dir: Path, iterations: int = KEY_ITERATIONS
) -> bytes:
    """The key device cookies are signed with: the user and password stretched with a random
    salt kept in ``state_dir``, so cookies outlive a restart and a new password voids them.

    Raises ``OSError`` when the salt cannot be read or written, ``ValueError`` when the file holds
    something else than a salt (both say which file and what to do)."""
    path = state_dir / SALT_FILE
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    else:
        text = secrets.token_hex(32)
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(text + "\n")
    try:
        salt = bytes.fromhex(text)
    except ValueError:
        salt = b""
    if len(salt) != 32:
        raise ValueError(
            f"{path}: not a device-cookie salt (64 hex digits); delete it and restart "
            "(browsers then log in once more as new ones)"
        )
    secret = f"{credentials.user}\0{credentials.password}".encode()
    return hashlib.pbkdf2_hmac("sha256", secret, salt, iterations)
