"""``questcity tui --serve``: the TUI in a browser, one app process per tab, through textual-serve.

Binds 127.0.0.1 by default. Any other address needs authentication, which textual-serve does not
have; :mod:`monitor.tui.serve_guard` provides it, in one of three ways (issue #14: people, not a
shared token):

- a users file (``[tui] users_file``, :mod:`monitor.tui.users`): each engineer signs in with
  their own name and password and gets their role (viewer, operator, admin);
- an authenticating proxy's header (``[tui] trusted_header = "X-Forwarded-User"``, from
  ``trusted_proxies`` only), roles from the users file or ``[tui] default_role``;
- the single password ``QUESTCITY_TUI_PASSWORD`` (user ``QUESTCITY_TUI_USER``, default
  ``oncall``): one user, an admin, as before.

Each tab's TUI process is started with the signed-in ``QUESTCITY_TUI_TAB_USER`` and
``QUESTCITY_TUI_TAB_ROLE`` (:mod:`monitor.tui.identity`), taken from the session, never from
anything the browser sends; ``QUESTCITY_TUI_PASSWORD`` and ``QUESTCITY_TUI_USER`` (the server's
Basic-auth user, not a tab's identity) are not passed on. Without authentication (loopback)
a tab is this machine's user, as in a terminal. When the users file changes, the open tabs of a
user it no longer signs in as before (removed, new password, new role) are closed.

Behind a reverse proxy (TLS, a path prefix), pass ``--public-url https://ops.example.org/tui``
so the page builds its websocket and static URLs on the address the browser sees, and
``--trusted-proxy`` (or ``[tui] trusted_proxies``) with the proxy's address so each browser is
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
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

from connection_guard import ConnectionLimits, raise_open_files_limit
from connection_guard.asyncio_protocol import GuardedFactory
from monitor.config import MIN_PROXY_PREFIX, too_wide_for_header
from monitor.tui.identity import TAB_ROLE_ENV, TAB_USER_ENV, Role
from monitor.tui.serve_guard import IDENTITY, Credentials, Guard, Network, Session, device_secret
from monitor.tui.users import UsersFile, UsersFileError

PASSWORD_ENV = "QUESTCITY_TUI_PASSWORD"
PASSWORD_USER_ENV = "QUESTCITY_TUI_USER"
"""The single password's user name (the server's Basic auth); never a tab's identity."""
TAB_HIDDEN = (TAB_USER_ENV, TAB_ROLE_ENV, PASSWORD_ENV, PASSWORD_USER_ENV)
"""The server's own values of these never reach a tab: the tab's come from its session."""
TAB_EXIT_SECONDS = 5.0
"""How long a tab's TUI may take to quit once its websocket closed, before it is killed."""
WATCH_SECONDS = 5.0
"""How often the server looks at the users file between requests (to close removed users' tabs)."""
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
    return Credentials(environ.get(PASSWORD_USER_ENV, "").strip() or DEFAULT_USER, password)


def check_bind(host: str, credentials: Credentials | None, *, people: bool = False) -> None:
    """Refuse a non-loopback address without authentication (``people``: a users file or a
    trusted header)."""
    if credentials is None and not people and not is_loopback(host):
        raise ServeRefused(
            f"refusing to serve the on-call TUI on {host}: anyone who reaches that address could "
            "reset breakers, and textual-serve has no authentication. Either set "
            "[tui] users_file in the config (each engineer signs in as themselves: "
            "questcity tui user add NAME --role ROLE), or "
            f"{PASSWORD_ENV} (browsers then ask for user {DEFAULT_USER!r}, or "
            f"${PASSWORD_USER_ENV}, and that password), or keep --host 127.0.0.1 behind an "
            "authenticating reverse proxy (with --public-url, and [tui] trusted_header to know "
            "who is who)."
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


def tab_identity(environ: Mapping[str, str], session: Session | None) -> dict[str, str]:
    """A tab's environment: the server's, without ``TAB_HIDDEN``, plus the session's user and
    role. Without a session (no authentication, loopback) neither is set: the tab is this
    machine's user, as in a terminal (:meth:`Identity.from_environ`)."""
    environment = {key: value for key, value in environ.items() if key not in TAB_HIDDEN}
    if session is not None:
        environment[TAB_USER_ENV] = session.identity.name
        environment[TAB_ROLE_ENV] = session.identity.role.value
    return environment


class TabService(AppService):
    """textual-serve's app process, started with the tab's own identity."""

    def __init__(self, command: str, session: Session | None, **kwargs: Any) -> None:
        super().__init__(command, **kwargs)
        self.session = session

    def _build_environment(self, width: int = 80, height: int = 24) -> dict[str, str]:
        return tab_identity(super()._build_environment(width, height), self.session)

    async def stop(self) -> None:
        """textual-serve's stop (quit, wait for the app's output to end), then the process's
        pipe closed and the process reaped, which textual-serve leaves to the garbage collector."""
        await super().stop()
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), TAB_EXIT_SECONDS)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


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
    users_file: Path | None = None
    trusted_header: str | None = None
    default_role: Role = Role.VIEWER

    @property
    def people(self) -> bool:
        """Whether engineers sign in as themselves (a users file or a proxy's header)."""
        return self.users_file is not None or self.trusted_header is not None


class TuiServer(Server):
    """textual-serve's server with :class:`Guard` in front and URLs built per request."""

    def __init__(
        self, options: ServeOptions, *, guard: Guard | None = None, command: str | None = None
    ) -> None:
        public_url = options.public_url.rstrip("/") if options.public_url else None
        super().__init__(
            command or tui_command(options.config_path),
            host=options.host,
            port=options.port,
            title=TITLE,
            public_url=public_url,
        )
        self.options = options
        self.fixed_public_url = public_url
        self.guard = guard or Guard(
            options.credentials,
            users=_users(options),
            trusted_header=options.trusted_header,
            default_role=options.default_role,
            public_url=public_url,
            bound_host=options.host,
            device_secret=_device_secret(options),
            trusted_proxies=options.trusted_proxies,
        )
        self.sessions = 0
        self.tabs: dict[web.WebSocketResponse, Session] = {}
        """Open tabs of signed-in users, closed when the users file no longer signs them in."""
        self._closing: set[asyncio.Task[None]] = set()
        self.guard.listeners.append(self.close_signed_out)

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
        session = request.get(IDENTITY)
        if session is None and self.guard.authenticating:  # the guard always sets it: a bug
            raise web.HTTPForbidden(text="No signed-in user for this tab.\n")
        self.sessions += 1
        try:
            return await self.run_tab(request, session)
        finally:
            self.sessions -= 1

    async def run_tab(self, request: web.Request, session: Session | None) -> web.WebSocketResponse:
        """textual-serve's ``handle_websocket`` (0.1), with the tab's identity in its process's
        environment and the tab known to :meth:`close_signed_out`."""
        websocket = web.WebSocketResponse(heartbeat=15)
        width = to_int(request.query.get("width", "80"), 80)
        height = to_int(request.query.get("height", "24"), 24)
        app_service: AppService | None = None
        if session is not None:
            self.tabs[websocket] = session
        try:
            await websocket.prepare(request)
            app_service = TabService(
                self.command,
                session,
                write_bytes=websocket.send_bytes,
                write_str=websocket.send_str,
                close=websocket.close,
                download_manager=self.download_manager,
                debug=self.debug,
            )
            await app_service.start(width, height)
            try:
                await self._process_messages(websocket, app_service)
            finally:
                await app_service.stop()
        except asyncio.CancelledError:
            await websocket.close()
        except Exception:
            logger.exception("tab ended by an error")
        finally:
            self.tabs.pop(websocket, None)
            if app_service is not None:
                await app_service.stop()
        return websocket

    def close_signed_out(self) -> None:
        """Close the tabs whose user the users file no longer signs in as they were."""
        for websocket, session in list(self.tabs.items()):
            if self.guard.still_valid(session):
                continue
            del self.tabs[websocket]
            logger.warning(
                "closing a tab of %s: signed out by a users-file change", session.identity.name
            )
            task = asyncio.ensure_future(_sign_out(websocket))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

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
        ways = []
        if self.options.users_file is not None:
            ways.append(f"users of {self.options.users_file}")
        elif self.options.credentials:
            ways.append(f"HTTP Basic auth as {self.options.credentials.user!r} (admin)")
        if self.options.trusted_header is not None:
            ways.append(f"{self.options.trusted_header} from trusted proxies")
        auth = " or ".join(ways) or "no authentication: loopback only"
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
        watch = asyncio.create_task(self._watch_users())
        if started is not None:
            started.set()
        try:
            await stop.wait()
        finally:
            watch.cancel()
            for signum in handled:
                loop.remove_signal_handler(signum)
            listener.close()
            await runner.cleanup()

    async def _watch_users(self) -> None:
        """Between requests too: a removed user's open tabs close within ``WATCH_SECONDS``."""
        if self.guard.users is None:
            return
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            self.guard.refresh()


async def _sign_out(websocket: web.WebSocketResponse) -> None:
    with contextlib.suppress(Exception):
        message = "\r\n  Signed out: your account in the users file changed. Reload to sign in.\r\n"
        await websocket.send_bytes(message.encode())
        await websocket.close(code=4401, message=b"signed out")


def _users(options: ServeOptions) -> UsersFile | None:
    if options.users_file is None:
        return None
    try:
        return UsersFile(options.users_file)
    except UsersFileError as error:
        raise ServeRefused(str(error)) from None


def _device_secret(options: ServeOptions) -> bytes | None:
    if options.credentials is None and options.users_file is None:
        return None
    credentials = options.credentials if options.users_file is None else None
    try:
        return device_secret(credentials, options.state_dir)
    except (OSError, ValueError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise ServeRefused(f"device-cookie salt in {options.state_dir}: {reason}") from None


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def check_people(options: ServeOptions) -> None:
    """A trusted header needs the proxy's address: without one every such request is refused."""
    if options.trusted_header is not None and not options.trusted_proxies:
        raise ServeRefused(
            f"[tui] trusted_header = {options.trusted_header!r} is believed only from the "
            "authenticating proxy: name its address in [tui] trusted_proxies or --trusted-proxy"
        )
    wide = [n for n in options.trusted_proxies if too_wide_for_header(n)]
    if options.trusted_header is not None and wide:  # --trusted-proxy; the config checks its own
        raise ServeRefused(
            f"trusted proxy {wide[0]} is wider than /{MIN_PROXY_PREFIX[wide[0].version]}: with "
            f"[tui] trusted_header = {options.trusted_header!r} any client in it could name "
            "itself, admin included; name the authenticating proxy's own address"
        )


def serve(options: ServeOptions) -> None:
    check_public_url(options.public_url)
    check_people(options)
    check_bind(options.host, options.credentials, people=options.people)
    TuiServer(options).serve()
