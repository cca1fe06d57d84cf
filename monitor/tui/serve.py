"""``questcity tui --serve``: the TUI in a browser, one app process per tab, through textual-serve.

Binds 127.0.0.1 by default. Any other address needs authentication, which textual-serve does not
have: set ``QUESTCITY_TUI_PASSWORD`` (and optionally ``QUESTCITY_TUI_USER``, default ``oncall``)
and :mod:`monitor.tui.serve_guard` asks for it. Behind a reverse proxy (TLS, a path prefix), pass
``--public-url https://ops.example.org/tui`` so the page builds its websocket and static URLs on
the address the browser sees, and ``--trusted-proxy`` with the proxy's address so each browser is
throttled by its own address (from ``X-Forwarded-For``) rather than all of them by the proxy's.
A browser that has logged in keeps a device cookie signed with a key stretched from the password
and a salt kept in ``var/tui/device-salt`` (:func:`monitor.tui.serve_guard.device_secret`).

Bounds: at most ``--max-sessions`` tabs at once (each is a TUI process of its own, about 80 MB);
one more gets a page, or a line in its terminal, saying so and how to raise it. Connections are
bounded as on the backend (:mod:`connection_guard`: a header deadline, a keep-alive timeout, a
connection cap under the open-file limit).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import shlex
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from textual_serve.server import Server

from connection_guard import ConnectionLimits, raise_open_files_limit
from connection_guard.asyncio_protocol import GuardedFactory
from monitor.tui.serve_guard import Credentials, Guard, Network, device_secret

PASSWORD_ENV = "QUESTCITY_TUI_PASSWORD"
USER_ENV = "QUESTCITY_TUI_USER"
DEFAULT_USER = "oncall"
TITLE = "QuestCity on-call"
DEFAULT_MAX_SESSIONS = 6
"""Tabs served at once: each runs a TUI process (about 80 MB), so ten took 820 MB."""
STATE_DIR = Path("var/tui")
"""The device-cookie salt's folder (relative to the working directory, as ./var/monitor.db)."""
DEFAULT_LIMITS = ConnectionLimits(header_timeout=10.0, keepalive_timeout=5, max_connections=64)
logger = logging.getLogger("monitor.tui.serve")


class ServeRefused(Exception):
    """The browser mode will not start as asked; the message says why and what to do."""


def is_loopback(host: str) -> bool:
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


def credentials_from(environ: Mapping[str, str]) -> Credentials | None:
    password = environ.get(PASSWORD_ENV, "")
    if not password:
        return None
    return Credentials(environ.get(USER_ENV, "").strip() or DEFAULT_USER, password)


def check_bind(host: str, credentials: Credentials | None) -> None:
    """Refuse a non-loopback address without authentication."""
    if credentials is None and not is_loopback(host):
        raise ServeRefused(
            f"refusing to serve the on-call TUI on {host}: anyone who reaches that address could "
            "reset breakers, and textual-serve has no authentication. Either set "
            f"{PASSWORD_ENV} (browsers then ask for user {DEFAULT_USER!r}, or ${USER_ENV}, and "
            "that password), or keep --host 127.0.0.1 behind an authenticating reverse proxy "
            "(with --public-url)."
        )


def check_public_url(public_url: str | None) -> None:
    if public_url is not None and not public_url.startswith(("http://", "https://")):
        raise ServeRefused(
            f"--public-url {public_url!r}: give the address browsers use, "
            "e.g. https://ops.example.org/tui"
        )


def tui_command(config_path: Path) -> str:
    """The command textual-serve runs for each tab: this TUI on the same config."""
    return shlex.join([sys.executable, "-m", "monitor.tui", "--config", str(config_path.resolve())])


@dataclass(frozen=True, slots=True)
class ServeOptions:
    config_path: Path
    host: str = "127.0.0.1"
    port: int = 8081
    public_url: str | None = None
    credentials: Credentials | None = None
    max_sessions: int = DEFAULT_MAX_SESSIONS
    limits: ConnectionLimits = DEFAULT_LIMITS
    trusted_proxies: tuple[Network, ...] = ()
    state_dir: Path = STATE_DIR


class TuiServer(Server):
    """textual-serve's server with :class:`Guard` in front and URLs built per request."""

    def __init__(self, options: ServeOptions, *, guard: Guard | None = None) -> None:
        public_url = options.public_url.rstrip("/") if options.public_url else None
        super().__init__(
            tui_command(options.config_path),
            host=options.host,
            port=options.port,
            title=TITLE,
            public_url=public_url,
        )
        self.options = options
        self.fixed_public_url = public_url
        self.guard = guard or Guard(
            options.credentials,
            public_url=public_url,
            bound_host=options.host,
            device_secret=_device_secret(options),
            trusted_proxies=options.trusted_proxies,
        )
        self.sessions = 0

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(self.guard.middleware())
        return app

    def base_url(self, request: web.Request) -> str:
        """``--public-url`` if given, else the address this request came to."""
        return self.fixed_public_url or f"{request.scheme}://{request.host}"

    def full(self) -> str | None:
        """Why one more session is refused, or ``None`` while there is room."""
        if self.sessions < self.options.max_sessions:
            return None
        return (
            f"This TUI server already runs {self.sessions} sessions, its cap (--max-sessions "
            f"{self.options.max_sessions}; each tab is a TUI process of about 80 MB). Close "
            "another tab, or restart questcity tui --serve with a higher --max-sessions."
        )

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        refusal = self.full()
        if refusal is not None:
            logger.warning("session refused: %s", refusal)
            websocket = web.WebSocketResponse()
            await websocket.prepare(request)
            await websocket.send_bytes(f"\r\n  {refusal}\r\n".encode())  # shown in the terminal
            await websocket.close(code=1013, message=b"session cap reached")  # try again later
            return websocket
        self.sessions += 1
        try:
            return await super().handle_websocket(request)
        finally:
            self.sessions -= 1

    async def handle_index(self, request: web.Request) -> web.StreamResponse:
        refusal = self.full()
        if refusal is not None:
            raise web.HTTPServiceUnavailable(text=refusal + "\n", headers={"Retry-After": "30"})
        base = self.base_url(request)
        router = request.app.router
        static = f"{base}{router['static'].url_for(filename='/')}".rstrip("/") + "/"
        websocket = f"{base}{router['websocket'].url_for()}"
        websocket = ("wss:" if base.startswith("https:") else "ws:") + websocket.split(":", 1)[1]
        try:
            font_size = int(request.query.get("fontsize", "16"))
        except ValueError:
            font_size = 16
        context: dict[str, Any] = {
            "font_size": font_size,
            "app_websocket_url": websocket,
            "config": {"static": {"url": static}},
            "application": {"name": TITLE},
        }
        return aiohttp_jinja2.render_template("app_index.html", request, context)

    def initialize_logging(self) -> None:
        # textual-serve's default logs tracebacks with local variables: they could hold secrets.
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    async def on_startup(self, app: web.Application) -> None:
        where = self.fixed_public_url or f"http://{_url_host(self.host)}:{self.port}"
        auth = (
            f"HTTP Basic auth as {self.options.credentials.user!r}"
            if self.options.credentials
            else "no authentication: loopback only"
        )
        print(f"questcity tui --serve: {where} ({auth}); Ctrl+C stops", flush=True)

    def serve(self, debug: bool = False) -> None:
        """textual-serve's ``serve``, with the connection guard in front of aiohttp."""
        self.debug = debug
        self.initialize_logging()
        asyncio.run(self.serve_guarded())

    async def serve_guarded(self, started: asyncio.Event | None = None) -> None:
        """Serve until SIGINT or SIGTERM (or until cancelled)."""
        limits = self.options.limits.within_open_files(raise_open_files_limit())
        runner = web.AppRunner(
            await self._make_app(),
            handle_signals=False,
            keepalive_timeout=float(limits.keepalive_timeout),
            shutdown_timeout=5.0,
        )
        await runner.setup()
        assert runner.server is not None
        loop = asyncio.get_running_loop()
        factory = GuardedFactory(runner.server, limits, name="tui server")
        listener = await loop.create_server(factory, self.host, self.port, reuse_address=True)
        stop = asyncio.Event()
        handled = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, stop.set)
                handled.append(signum)
        if started is not None:
            started.set()
        try:
            await stop.wait()
        finally:
            for signum in handled:
                loop.remove_signal_handler(signum)
            listener.close()
            await runner.cleanup()


def _device_secret(options: ServeOptions) -> bytes | None:
    if options.credentials is None:
        return None
    try:
        return device_secret(options.credentials, options.state_dir)
    except (OSError, ValueError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise ServeRefused(f"device-cookie salt in {options.state_dir}: {reason}") from None


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def serve(options: ServeOptions) -> None:
    check_public_url(options.public_url)
    check_bind(options.host, options.credentials)
    TuiServer(options).serve()
