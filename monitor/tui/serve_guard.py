"""What textual-serve lacks: who may open the TUI in a browser, and from which page.

textual-serve has no authentication at all, and every websocket it accepts is a live on-call
session that can reset breakers. :class:`Guard` is an aiohttp middleware in front of it:

- **Who** (issue #14): each engineer signs in as themselves, from a users file
  (:mod:`monitor.tui.users`: names, scrypt password hashes, roles viewer/operator/admin) or from
  an authenticating proxy's header (``trusted_header``, oauth2-proxy's ``X-Forwarded-User``),
  believed only from a ``trusted_proxies`` peer: the same header from any other peer is refused
  (403), never read as someone. The single password (``Credentials``) is one user, an admin. The
  signed-in :class:`~monitor.tui.identity.Identity` is put on the request (``IDENTITY``) for the
  server, which starts the tab's TUI process with it; nothing the browser sends can name it.
  Sessions are checked against the users file at every request (re-read when it changes): a user
  removed, or whose password or role changed, is signed out, and listeners (the server closing
  that user's open tabs) are told.
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
  :func:`device_secret` (the password and a salt kept on disk; with a users file the salt, and
  each cookie is signed for its user's password generation): cookies outlive a restart, and
  changing a password voids that user's. Anything else in the cookie (forged, for another user or
  server, expired, not ASCII) is simply no device cookie.
- **Client address** (:mod:`monitor.tui.proxies`): the peer's address, unless the peer is a
  ``trusted_proxies`` address (a reverse proxy in front): then the right-most address in
  ``X-Forwarded-For`` that is not a trusted proxy, the one the proxy itself saw.
  ``X-Forwarded-For`` from anyone else is ignored (it is whatever the client wants it to be).
- **Origin check** on the websocket, always: a page from another site cannot drive the TUI
  through the operator's browser (cross-site websocket hijacking), even on loopback.
- **Host check** without authentication (loopback only): a request whose ``Host`` is not a
  loopback name or the public URL's host is refused, so DNS rebinding cannot reach the loopback TUI.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from monitor.tui.identity import Identity, Role
from monitor.tui.login_throttle import LoginThrottle
from monitor.tui.proxies import Network, forwarded_client, is_trusted, trusted_networks
from monitor.tui.users import NAME, Account, UsersFile, dummy_hash, verify_password

COOKIE = "questcity_tui_session"
SESSION_SECONDS = 12 * 3600
DEVICE_COOKIE = "questcity_tui_device"
DEVICE_SECONDS = 90 * 86400
SALT_FILE = "device-salt"
KEY_ITERATIONS = 600_000
"""PBKDF2-SHA256 rounds (OWASP's figure) for the device key, once at start: a stolen device cookie
and salt file must not make the password cheap to find offline."""
MAX_HASHING = 2
"""Password checks (scrypt, 16 MiB each) run at once; the others wait their turn."""
MAX_WAITING = 16
"""Password checks running or waiting; one more is answered 503 at once."""
REALM = "QuestCity on-call TUI"
__all__ = [
    "COOKIE",
    "IDENTITY",
    "Credentials",
    "Guard",
    "Network",
    "Session",
    "device_secret",
    "trusted_networks",
]
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True, slots=True)
class Credentials:
    user: str
    password: str

    def __repr__(self) -> str:  # never print the password, not even in a traceback
        return f"Credentials(user={self.user!r}, password=***)"


@dataclass(frozen=True, slots=True)
class Session:
    """Who a request (and the tab it opens) belongs to, and what their sign-in rested on."""

    identity: Identity
    generation: str = ""
    """The account's password generation at sign-in (:attr:`Account.generation`)."""
    by_header: bool = False


IDENTITY = web.RequestKey("questcity.tui.session", Session)
"""The request key of the signed-in :class:`Session` (absent: no authentication, loopback)."""


class Guard:
    def __init__(
        self,
        credentials: Credentials | None,
        *,
        users: UsersFile | None = None,
        trusted_header: str | None = None,
        default_role: Role = Role.VIEWER,
        public_url: str | None = None,
        bound_host: str = "127.0.0.1",
        secret: bytes | None = None,
        device_secret: bytes | None = None,
        trusted_proxies: Sequence[Network] = (),
        wall: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # A users file replaces the single password; the header works beside either.
        self.credentials = credentials if users is None else None
        self.users = users
        self.trusted_header = trusted_header
        self.default_role = default_role
        self.public = urlsplit(public_url) if public_url else None
        self.bound_host = bound_host
        self.secret = secret or secrets.token_bytes(32)
        # Without a persisted secret, device cookies last as long as this process.
        self.device_secret = device_secret or secrets.token_bytes(32)
        self.trusted_proxies = tuple(trusted_proxies)
        self.wall = wall
        self.throttle = LoginThrottle(tuple(self.accounts()), clock=clock)
        self._hashing = asyncio.Semaphore(MAX_HASHING)
        self._waiting = 0
        self.listeners: list[Callable[[], None]] = []
        """Called when the users file changed: the server closes tabs no longer signed in."""

    @property
    def authenticating(self) -> bool:
        return (
            self.credentials is not None
            or self.users is not None
            or self.trusted_header is not None
        )

    @property
    def by_password(self) -> bool:
        return self.credentials is not None or self.users is not None

    def accounts(self) -> Mapping[str, Account]:
        if self.users is not None:
            return self.users.accounts
        if self.credentials is not None:
            return {self.credentials.user: Account(self.credentials.user, Role.ADMIN)}
        return {}

    def refresh(self) -> bool:
        """Re-read the users file if it changed; on a change, tell the listeners."""
        if self.users is None or not self.users.refresh():
            return False
        self.throttle.set_users(tuple(self.users.accounts))
        for listener in list(self.listeners):
            listener()
        return True

    def still_valid(self, session: Session) -> bool:
        """Whether ``session`` would still be signed in as it is: same user, password and role."""
        if self.users is not None and self.users.error is not None:
            return False
        account = self.accounts().get(session.identity.name)
        if session.by_header:
            role = account.role if account is not None else self.default_role
            return role is session.identity.role
        return (
            account is not None
            and self._password_account(account)
            and account.generation == session.generation
            and account.role is session.identity.role
        )

    def middleware(self) -> Middleware:
        @web.middleware
        async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
            return await self.handle(request, handler)

        return guard

    async def handle(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.refresh()
        if not self.authenticating and not self._host_allowed(request):
            raise web.HTTPForbidden(
                text="This TUI answers only to a loopback address or its --public-url host.\n"
            )
        if request.path == "/ws" and not self._origin_allowed(request):
            raise web.HTTPForbidden(text="Cross-origin websocket refused.\n")
        if not self.authenticating:
            return await handler(request)
        if self.users is not None and self.users.error is not None:
            raise web.HTTPServiceUnavailable(
                text="Nobody can sign in: the TUI server's users file cannot be read (its log "
                "says where it is wrong).\n"
            )
        session = self._from_header(request)
        new = False
        if session is None:
            session = self._from_cookie(request.cookies.get(COOKIE, ""))
        if session is None:
            session = await self._log_in(request)
            new = True
        request[IDENTITY] = session
        response = await handler(request)
        if new and not response.prepared:
            name = session.identity.name
            self._set_cookie(response, COOKIE, self.session_cookie(name), SESSION_SECONDS)
            self._set_cookie(response, DEVICE_COOKIE, self.device_cookie(name), DEVICE_SECONDS)
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

    # -- the proxy's header ---------------------------------------------------------------------

    def _from_header(self, request: web.Request) -> Session | None:
        """The user a trusted proxy names; ``None`` when the header is absent. The header from
        any other peer is refused: there it is whatever the client wants it to be."""
        if self.trusted_header is None:
            return None
        values = request.headers.getall(self.trusted_header, [])
        if not values:
            return None
        if not self._trusted(request.remote or ""):
            raise web.HTTPForbidden(
                text=f"{self.trusted_header} is believed only from the authenticating proxy; "
                "this request did not come through it.\n"
            )
        name = values[0].strip()
        if len(values) != 1 or not NAME.fullmatch(name):
            raise web.HTTPForbidden(
                text=f"{self.trusted_header} does not name one user this TUI accepts "
                "(letters, digits and . _ @ + -, at most 100).\n"
            )
        account = self.accounts().get(name)
        role = account.role if account is not None else self.default_role
        return Session(Identity(name, role), by_header=True)

    # -- sessions and devices -------------------------------------------------------------------

    def session_cookie(self, user: str | None = None) -> str:
        name = user if user is not None else self.credentials.user if self.credentials else ""
        expires = str(int(self.wall()) + SESSION_SECONDS)
        payload = f"{expires}:{_b64(name)}"
        return f"{payload}.{self._sign(self.secret, 'session', name, payload)}"

    def device_cookie(self, user: str | None = None) -> str:
        """A new device id for this browser, signed for the user until ``DEVICE_SECONDS``."""
        name = user if user is not None else self.credentials.user if self.credentials else ""
        device = f"{int(self.wall()) + DEVICE_SECONDS}-{secrets.token_hex(16)}"
        return f"{device}.{self._sign(self.device_secret, 'device', name, device)}"

    def _sign(self, key: bytes, kind: str, user: str, payload: str) -> str:
        # The account's password generation is signed in: a new password voids the old cookies.
        account = self.accounts().get(user)
        generation = account.generation if account is not None else ""
        signed = f"{user}:{generation}" if generation else user
        message = f"{kind}:{signed}:{payload}".encode()
        return hmac.new(key, message, hashlib.sha256).hexdigest()

    def _from_cookie(self, value: str) -> Session | None:
        """The session of a valid, unexpired session cookie of a user who may still sign in."""
        if not value.isascii():
            return None
        payload, _, _ = value.rpartition(".")
        expires, _, encoded = payload.partition(":")
        user = _unb64(encoded)
        if user is None or not expires.isdigit() or int(expires) <= self.wall():
            return None
        account = self.accounts().get(user)
        if account is None or not self._password_account(account):
            return None
        if self._verified(self.secret, "session", user, value) is None:
            return None
        return Session(Identity(user, account.role), account.generation)

    def _password_account(self, account: Account) -> bool:
        return self.credentials is not None or account.password_hash is not None

    def _device(self, value: str, user: str) -> str | None:
        """The device id of a valid, unexpired device cookie for ``user``, else ``None``."""
        device = self._verified(self.device_secret, "device", user, value)
        if device is None:
            return None
        expires, _, _ = device.partition("-")
        return device if expires.isdigit() and int(expires) > self.wall() else None

    def _verified(self, key: bytes, kind: str, user: str, value: str) -> str | None:
        """The payload of ``payload.signature`` when signed with ``key`` for ``user``; ``None``
        for anything else, including text that is not ASCII (``compare_digest`` refuses it,
        ``isdigit`` accepts digits ``int`` does not)."""
        if not value.isascii():
            return None
        payload, _, signature = value.rpartition(".")
        if not payload:
            return None
        expected = self._sign(key, kind, user, payload)
        return payload if hmac.compare_digest(signature, expected) else None

    async def _log_in(self, request: web.Request) -> Session:
        """The session of the right user and password; otherwise 401, or 429 while this client
        or user must wait after wrong guesses (the password is then not looked at). With a
        valid device cookie for that user only the device's own wrong guesses count."""
        if not self.by_password:  # a Basic challenge would ask for a password nobody has
            raise web.HTTPForbidden(
                text="This TUI signs people in through its authenticating proxy: open it at the "
                "proxy's address.\n"
            )
        basic = _basic(request.headers.get("Authorization", ""))
        if basic is None:  # a browser's first request, or no credentials: not a guess
            raise _unauthorized()
        user, password = basic
        client = self.client_address(request)
        device = None
        account = self.accounts().get(user)
        if account is not None:
            device = self._device(request.cookies.get(DEVICE_COOKIE, ""), user)
        wait = self.throttle.retry_after(client, user, device)
        if wait:
            raise web.HTTPTooManyRequests(
                headers={"Retry-After": str(wait)},
                text=f"Too many wrong passwords: try again in {wait} s.\n",
            )
        valid = await self._password_valid(account, user, password)
        if valid and account is not None:
            self.throttle.succeeded(client, user, device)
            return Session(Identity(account.name, account.role), account.generation)
        self.throttle.failed(client, user, device)
        raise _unauthorized()

    async def _password_valid(self, account: Account | None, user: str, password: str) -> bool:
        if self.credentials is not None:
            user_ok = hmac.compare_digest(user.encode(), self.credentials.user.encode())
            expected = self.credentials.password.encode()
            return hmac.compare_digest(password.encode(), expected) and user_ok
        encoded = account.password_hash if account is not None else None
        # No such user, or one who signs in by header only: the same work on a dummy hash, so
        # the answer's time does not say which names exist.
        known = encoded is not None
        like = None if known else self._some_hash()
        # scrypt takes a good part of a second and 16 MiB: off the event loop, which serves
        # other tabs, and a few at a time. Guesses sent all at once (each passed the throttle
        # before any failed) beyond MAX_WAITING are turned away rather than queued for minutes.
        if self._waiting >= MAX_WAITING:
            raise web.HTTPServiceUnavailable(
                headers={"Retry-After": "5"}, text="Too many sign-ins at once: try again.\n"
            )
        self._waiting += 1
        try:
            async with self._hashing:
                # The dummy hash too: its first making runs scrypt (then it is kept).
                matches = await asyncio.to_thread(
                    lambda: verify_password(password, encoded or dummy_hash(like))
                )
        finally:
            self._waiting -= 1
        return matches and known

    def _some_hash(self) -> str | None:
        for account in self.accounts().values():
            if account.password_hash is not None:
                return account.password_hash
        return None

    # -- where requests come from ---------------------------------------------------------------

    def client_address(self, request: web.Request) -> str:
        """Who is guessing: the peer, or behind a trusted proxy the client it forwards for
        (:func:`monitor.tui.proxies.forwarded_client`)."""
        forwarded = request.headers.getall("X-Forwarded-For", [])
        return forwarded_client(request.remote or "unknown", forwarded, self.trusted_proxies)

    def _trusted(self, address: str) -> bool:
        return is_trusted(address, self.trusted_proxies)

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


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _unb64(text: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


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


def device_secret(
    credentials: Credentials | None, state_dir: Path, iterations: int = KEY_ITERATIONS
) -> bytes:
    """The key device cookies are signed with: the user and password stretched with a random
    salt kept in ``state_dir``, so cookies outlive a restart and a new password voids them.
    With a users file (``credentials`` None) the salt alone is stretched: each cookie is signed
    for its user's password generation instead, so a user's new password voids theirs.

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
    secret = (
        f"{credentials.user}\0{credentials.password}".encode()
        if credentials is not None
        else b"\0users-file"
    )
    return hashlib.pbkdf2_hmac("sha256", secret, salt, iterations)
