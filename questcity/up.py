"""``questcity up``: the whole stack on one machine, on embedded defaults, in one command.

A local S3 server (SeaweedFS), PostgreSQL in a throwaway cluster when its server binaries are
installed (SQLite otherwise), each behind a fault proxy (``questcity chaos``); the backend; the
monitor daemon watching it with tokens minted for it; the status page; then the TUI in the
foreground. Quitting the TUI, Ctrl-C or SIGTERM stops everything it started.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import httpx

from questcity.chaos import CONTROL_SOCKET, SERVICES, apply
from questcity.embedded.faultproxy import FaultProxy
from questcity.embedded.postgres import PostgresNotInstalledError, PostgresServer, find_bin_dir
from questcity.embedded.process import ServerStartError
from questcity.embedded.s3 import S3Server, WeedNotInstalledError

VAR = Path("var")
RUN_DIR = VAR / "up"
READY_TIMEOUT = 90.0


class StackError(Exception):
    """A one-line reason the stack cannot start, and what to do about it."""


@dataclass
class Ports:
    backend: int = 8000
    statuspage: int = 8082
    tui: int = 8081


@dataclass
class Child:
    name: str
    process: asyncio.subprocess.Process
    log: Path


@dataclass
class LocalStack:
    ports: Ports = field(default_factory=Ports)
    serve_tui: bool = False
    use_postgres: bool | None = None
    """None: PostgreSQL when its binaries are installed, SQLite otherwise."""
    health_interval: float = 2.0
    out: TextIO = field(default_factory=lambda: sys.stdout)

    s3: S3Server | None = None
    postgres: PostgresServer | None = None
    proxies: dict[str, FaultProxy] = field(default_factory=dict)
    children: list[Child] = field(default_factory=list)
    control: asyncio.AbstractServer | None = None
    urls: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    tui: asyncio.subprocess.Process | None = None

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    # -- start ---------------------------------------------------------------------------------

    async def start(self) -> None:
        wanted = {"backend": self.ports.backend, "status page": self.ports.statuspage}
        if self.serve_tui:
            wanted["TUI in a browser"] = self.ports.tui
        for what, port in wanted.items():
            if not _port_free(port):
                raise StackError(
                    f"port {port} (for the {what}) is in use; stop what uses it, or pick another "
                    f"with --{what.split()[0].replace('status', 'statuspage')}-port"
                )
        (RUN_DIR / "logs").mkdir(parents=True, exist_ok=True)
        database_url = await self._start_database()
        s3_url = await self._start_s3()
        await self._start_backend(database_url, s3_url)
        self._mint_tokens()
        config = self._write_monitor_config()
        await self._spawn("monitor", ["monitor", "--config", str(config)])
        await self._spawn(
            "statuspage",
            ["statuspage", "--config", str(config), "--port", str(self.ports.statuspage)],
        )
        await self._wait_http(
            "status page", f"http://127.0.0.1:{self.ports.statuspage}/", "statuspage"
        )
        self.urls["status page"] = f"http://127.0.0.1:{self.ports.statuspage}/"
        if self.serve_tui:
            await self._spawn(
                "tui-serve",
                ["tui", "--serve", "--config", str(config), "--port", str(self.ports.tui)],
            )
            await self._wait_http(
                "TUI server", f"http://127.0.0.1:{self.ports.tui}/", "tui-serve", accept=(200, 401)
            )
            self.urls["TUI in a browser"] = f"http://127.0.0.1:{self.ports.tui}/"
        await self._start_control()
        self.say("")
        for what, url in self.urls.items():
            self.say(f"  {what:<18} {url}")
        self.say(f"  {'logs':<18} {RUN_DIR / 'logs'}/")
        self.say("  chaos drills:      questcity chaos database|s3 down|up|slow")

    async def _start_database(self) -> str:
        use_postgres = self.use_postgres
        if use_postgres is None:
            try:
                find_bin_dir()
                use_postgres = True
            except PostgresNotInstalledError:
                use_postgres = False
        if not use_postgres:
            self.say(
                "• database: SQLite at var/questcity.db (PostgreSQL server binaries not "
                "found; install Debian's `postgresql` package to use PostgreSQL)"
            )
            return "sqlite+aiosqlite:///./var/questcity.db"
        self.say("• database: starting a throwaway PostgreSQL cluster…")
        # As root the server runs as `postgres`, which may not be able to reach ./var (under
        # /root, say): its throwaway cluster then lives in the system's temporary directory.
        server = PostgresServer(parent=None if os.geteuid() == 0 else RUN_DIR.resolve())
        try:
            await asyncio.to_thread(server.start)
        except (ServerStartError, PostgresNotInstalledError) as error:
            raise StackError(f"PostgreSQL did not start: {error}") from None
        self.postgres = server
        proxy = FaultProxy(server.address, name="database").start()
        self.proxies["database"] = proxy
        self.say(
            f"  ready (PostgreSQL on {server.host}:{server.port}, via fault proxy "
            f"{proxy.address[1]})"
        )
        return server.url_for(address=proxy.address)

    async def _start_s3(self) -> str:
        self.say("• S3: starting SeaweedFS…")
        server = S3Server(parent=RUN_DIR.resolve())
        try:
            await asyncio.to_thread(server.start)
        except (ServerStartError, WeedNotInstalledError) as error:
            raise StackError(f"the S3 server did not start: {error}") from None
        self.s3 = server
        proxy = FaultProxy(server.address, name="s3").start()
        self.proxies["s3"] = proxy
        self.say(f"  ready (S3 on {server.endpoint_url}, via fault proxy {proxy.address[1]})")
        return proxy.url()

    async def _start_backend(self, database_url: str, s3_url: str) -> None:
        assert self.s3 is not None
        self.env = {
            "QUESTCITY_DATABASE_URL": database_url,
            "QUESTCITY_S3_ENDPOINT_URL": s3_url,
            "QUESTCITY_S3_ACCESS_KEY": self.s3.access_key,
            "QUESTCITY_S3_SECRET_KEY": self.s3.secret_key,
            "QUESTCITY_S3_REGION": self.s3.region,
            "QUESTCITY_KEYS_DIR": str(VAR / "keys"),
            "QUESTCITY_HEALTH_INTERVAL": str(self.health_interval),
            "QUESTCITY_DB_TIMEOUT": "2",
            "QUESTCITY_S3_TIMEOUT": "2",
        }
        self.say("• backend: starting…")
        await self._spawn("backend", ["backend", "--port", str(self.ports.backend)])
        base = f"http://127.0.0.1:{self.ports.backend}"
        await self._wait_http("backend", f"{base}/api/v1/health/ready", "backend")
        self.urls["backend API"] = f"{base}/api/v1/"
        self.urls["health"] = f"{base}/api/v1/health/"
        self.urls["OpenAPI"] = f"{base}/openapi.json"

    def _mint_tokens(self) -> None:
        from backend.auth import mint_token_command
        from backend.settings import Settings

        settings = Settings.from_mapping(self.env)
        month = 30 * 24 * 3600
        self.env["QUESTCITY_MONITOR_TOKEN"] = mint_token_command(
            settings, "operator", month, "questcity-up-monitor"
        )
        self.env["QUESTCITY_ADMIN_TOKEN"] = mint_token_command(
            settings, "admin", month, "questcity-up-on-call"
        )

    def _write_monitor_config(self) -> Path:
        path = RUN_DIR / "monitor.toml"
        interval = self.health_interval
        path.write_text(
            f"""# Written by `questcity up`; edit a copy for your own monitor.
[storage]
url = "sqlite:///./var/monitor.db"

[incidents]
open_after = 2
resolve_after = 2

[[targets]]
name = "questcity-api"
url = "http://127.0.0.1:{self.ports.backend}"
interval = {interval}
timeout = {min(interval, 1.5)}
token_env = "QUESTCITY_MONITOR_TOKEN"
admin_token_env = "QUESTCITY_ADMIN_TOKEN"
display_name = "QuestCity API"
group = "QuestCity"
services = {{ database = "Quests and accounts", s3 = "Photos and avatars" }}
""",
            encoding="utf-8",
        )
        return path

    async def _spawn(self, name: str, argv: list[str]) -> Child:
        log = RUN_DIR / "logs" / f"{name}.log"
        handle = log.open("ab")
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "questcity",
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=handle,
            stderr=handle,
            env={**os.environ, **self.env},
            start_new_session=True,
        )
        handle.close()
        child = Child(name, process, log)
        self.children.append(child)
        return child

    async def _wait_http(
        self, what: str, url: str, child_name: str, *, accept: tuple[int, ...] = (200,)
    ) -> None:
        child = next(c for c in self.children if c.name == child_name)
        deadline = time.monotonic() + READY_TIMEOUT
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if child.process.returncode is not None:
                    raise StackError(
                        f"the {what} exited at start-up; its log: {child.log}\n" + _tail(child.log)
                    )
                try:
                    if (await client.get(url)).status_code in accept:
                        self.say(f"  {what} ready")
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        raise StackError(
            f"the {what} was not ready within {READY_TIMEOUT:.0f} s; its log: {child.log}"
        )

    async def _start_control(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            CONTROL_SOCKET.unlink()
        self.control = await asyncio.start_unix_server(self._control, path=str(CONTROL_SOCKET))

    async def _control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = json.loads(await reader.readline())
            service = str(request.get("service"))
            proxy = self.proxies.get(service)
            if proxy is None:
                answer: dict[str, object] = {
                    "ok": False,
                    "error": f"{service} has no fault proxy in this stack"
                    if service in SERVICES
                    else f"unknown service {service!r}",
                }
            else:
                mode = await asyncio.to_thread(
                    apply, proxy, str(request.get("action")), float(request.get("latency", 0.5))
                )
                answer = {"ok": True, "mode": mode}
                self.say(f"chaos: {service} {request.get('action')} ({mode})")
        except (ValueError, TypeError) as error:
            answer = {"ok": False, "error": str(error)}
        writer.write(json.dumps(answer).encode() + b"\n")
        await writer.drain()
        writer.close()

    # -- run and stop --------------------------------------------------------------------------

    async def run_tui(self) -> int:
        config = RUN_DIR / "monitor.toml"
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "questcity",
            "tui",
            "--config",
            str(config),
            env={**os.environ, **self.env},
        )
        return await process.wait()

    async def stop(self) -> None:
        if self.tui is not None and self.tui.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.tui.terminate()
            await self.tui.wait()
        if self.control is not None:
            self.control.close()
            with contextlib.suppress(FileNotFoundError):
                CONTROL_SOCKET.unlink()
        for child in reversed(self.children):
            if child.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.process.send_signal(signal.SIGTERM)
        for child in reversed(self.children):
            try:
                await asyncio.wait_for(child.process.wait(), timeout=15.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    child.process.kill()
                await child.process.wait()
        for proxy in self.proxies.values():
            await asyncio.to_thread(proxy.close)
        for server in (self.s3, self.postgres):
            if server is not None:
                await asyncio.to_thread(server.close)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = commands.add_parser("up", help="the whole local stack, then the TUI")
    up.add_argument("--headless", action="store_true", help="run the services without the TUI")
    up.add_argument(
        "--serve-tui", action="store_true", help="also serve the TUI in a browser (127.0.0.1:8081)"
    )
    up.add_argument(
        "--sqlite", action="store_true", help="use SQLite even when PostgreSQL is installed"
    )
    up.add_argument("--backend-port", type=int, default=8000)
    up.add_argument("--statuspage-port", type=int, default=8082)
    up.add_argument("--tui-port", type=int, default=8081)
    up.set_defaults(handler=run_up)


def run_up(args: argparse.Namespace) -> int:
    stack = LocalStack(
        ports=Ports(args.backend_port, args.statuspage_port, args.tui_port),
        serve_tui=args.serve_tui,
        use_postgres=False if args.sqlite else None,
    )
    return asyncio.run(_main(stack, headless=args.headless))


async def _main(stack: LocalStack, *, headless: bool) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    code = 0
    try:
        await stack.start()
        if headless:
            stack.say("\nRunning headless; Ctrl-C stops everything.")
            await stop.wait()
        else:
            tui = asyncio.ensure_future(stack.run_tui())
            waiter = asyncio.ensure_future(stop.wait())
            await asyncio.wait({tui, waiter}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if not tui.done():
                tui.cancel()
    except StackError as error:
        print(f"questcity up: {error}", file=sys.stderr)
        code = 1
    finally:
        stack.say("stopping…")
        await _quietly(stack.stop)
        stack.say("stopped.")
    return code


async def _quietly(step: Callable[[], Awaitable[None]]) -> None:
    try:
        await step()
    except Exception as error:  # pragma: no cover - best effort while shutting down
        print(f"questcity up: while stopping: {type(error).__name__}: {error}", file=sys.stderr)
