"""The stack ``questcity up`` (:mod:`questcity.up`) runs: :class:`LocalStack` starts each
process in order, records it in ``./var/up/stack.json`` as it starts, and stops them stage by
stage. Its :class:`~questcity.fleet.Fleet` says how many backend replicas (the first started
alone: it makes the key pair and migrates the database the others then find) and monitors (more
than one: on a ``questcity_monitor`` database in the same PostgreSQL cluster, reached directly,
not through the fault proxy ``chaos`` fails the backend's database with).

Imported only when ``up`` runs: it brings httpx and botocore (through :mod:`questcity.embedded.s3`),
which every other ``questcity`` command would otherwise pay for at start (:mod:`questcity.cli`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import httpx

from questcity.chaos import CONTROL_SOCKET, FAULTS, SERVICES
from questcity.chaos_control import serve_control
from questcity.embedded.certificate import CertificatePaths
from questcity.embedded.faultproxy import FaultProxy
from questcity.embedded.front_door import FrontDoor
from questcity.embedded.postgres import PostgresNotInstalledError, PostgresServer, find_bin_dir
from questcity.embedded.process import EmbeddedServer, ManagedProcess, ServerStartError
from questcity.embedded.s3 import S3Server, WeedNotInstalledError
from questcity.fleet import MONITOR_DATABASE, BackendReplica, Fleet
from questcity.front_door_stage import door_certificate, open_front_door
from questcity.preflight import (
    StackError,
    refuse_a_running_stack,
    refuse_monitors_without_postgres,
    refuse_overlapping_ports,
    refuse_ports_in_use,
)
from questcity.processes import group_leaders, record_of, sweep_groups
from questcity.record import RECORD_PATH, StackRecord
from questcity.stack_settings import (
    CHECK_DATABASE_ENV,
    DEFAULT_STORE,
    SUBSCRIPTION_SECRET_ENV,
    StackChecks,
    backend_env,
    mint_tokens,
    place_monitor_config,
    subscription_secret,
)

VAR = Path("var")
RUN_DIR = VAR / "up"
TLS_DIR = RUN_DIR / "tls"
READY_TIMEOUT = 90.0
STOP_TIMEOUT = 15.0

# Stop order, lowest first: whatever watches the stack goes before what it watches.
STAGE_TUI, STAGE_WATCHERS, STAGE_BACKEND, STAGE_SERVERS = range(4)


class Interrupted(Exception):
    """A stop was asked for (a signal) while the stack was starting."""


@dataclass
class Ports:
    backend: int = 8000
    statuspage: int = 8082
    tui: int = 8081
    tls: int = 8443
    """The TLS front door (:mod:`questcity.embedded.front_door`)."""


@dataclass
class Child:
    name: str
    process: asyncio.subprocess.Process
    log: Path | None
    stage: int


@dataclass
class LocalStack:
    ports: Ports = field(default_factory=Ports)
    serve_tui: bool = False
    use_postgres: bool | None = None
    """None: PostgreSQL when its binaries are installed, SQLite otherwise."""
    health_interval: float = 2.0
    headless: bool = True
    out: TextIO = field(default_factory=lambda: sys.stdout)
    prefix: str = "questcity"
    """How the user runs ``questcity`` here (``uv run questcity``…), for the hints we print."""
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    fleet: Fleet = field(default_factory=Fleet)
    """How many backend replicas and monitors (:mod:`questcity.fleet`)."""

    s3: S3Server | None = None
    postgres: PostgresServer | None = None
    proxies: dict[str, FaultProxy] = field(default_factory=dict)
    children: list[Child] = field(default_factory=list)
    control: asyncio.AbstractServer | None = None
    front_door: FrontDoor | None = None
    certificate: CertificatePaths | None = None
    urls: dict[str, str] = field(default_factory=dict)
    config: Path = Path("monitor.toml")
    """The ``monitor.toml`` everything the stack starts is given (:meth:`_place_config`)."""
    monitor_store: str = DEFAULT_STORE
    """The store the monitors write and the status page and TUI read (:meth:`_start_database`)."""
    env: dict[str, str] = field(default_factory=dict)
    checking: dict[str, str] = field(default_factory=dict)
    """Beside :attr:`env` for what runs checks (monitors, TUI) only: the DSN and its password."""
    record: StackRecord | None = None
    watchdog: subprocess.Popen[bytes] | None = None
    lifeline: int | None = None
    """The write end of the watchdog's pipe: only this process holds it, so it closes when
    this process ends, however it ends."""

    def say(self, text: str) -> None:
        with contextlib.suppress(OSError):  # the terminal is gone (SIGHUP): stop all the same
            print(text, file=self.out, flush=True)

    def _checkpoint(self) -> None:
        if self.stopping.is_set():
            raise Interrupted

    # -- start ---------------------------------------------------------------------------------

    async def start(self) -> None:
        refuse_a_running_stack(self.prefix)
        refuse_monitors_without_postgres(self.fleet, use_postgres=self.use_postgres)
        wanted = self._ports_wanted()
        refuse_overlapping_ports(wanted)
        refuse_ports_in_use(wanted)
        (RUN_DIR / "logs").mkdir(parents=True, exist_ok=True)
        self._start_watchdog()
        self.certificate = await door_certificate(TLS_DIR)
        database_url = await self._start_database()
        self._place_config()  # (after the database: a shared monitor store lives in its cluster)
        self._checkpoint()
        s3_url = await self._start_s3()
        self._place_config()  # again, now that the S3 check has a URL to watch
        self._checkpoint()
        await self._start_backends(database_url, s3_url)
        await self._start_front_door()
        self.env.update(mint_tokens(self.env))
        if self.postgres is not None:  # the `postgres` check's: the backend's, as it reaches it
            self.checking[CHECK_DATABASE_ENV] = self.postgres.dsn_for(
                address=self.proxies["database"].address
            )
        config = self.config
        # The subscriber links' key: for the monitor (which sends) and the status page (which
        # checks the links) only, not in self.env (the backend and the TUI have no use of it).
        public = {SUBSCRIPTION_SECRET_ENV: subscription_secret(RUN_DIR)}
        for member in self.fleet.monitor_members():
            await self._spawn(
                member.name,
                ["monitor", "--config", str(config)],
                STAGE_WATCHERS,
                env={"QUESTCITY_MONITOR_ID": member.monitor_id, **public, **self.checking},
            )
        await self._spawn(
            "statuspage",
            ["statuspage", "--config", str(config), "--port", str(self.ports.statuspage)],
            STAGE_WATCHERS,
            port=self.ports.statuspage,
            env=public,
        )
        await self._wait_http(
            "status page", f"http://127.0.0.1:{self.ports.statuspage}/", "statuspage"
        )
        self.urls["status page"] = f"http://127.0.0.1:{self.ports.statuspage}/"
        if self.serve_tui:
            await self._spawn(
                "tui-serve",
                ["tui", "--serve", "--config", str(config), "--port", str(self.ports.tui)],
                STAGE_WATCHERS,
                port=self.ports.tui,
                env=self.checking,
            )
            await self._wait_http(
                "TUI server", f"http://127.0.0.1:{self.ports.tui}/", "tui-serve", accept=(200, 401)
            )
            self.urls["TUI in a browser"] = f"http://127.0.0.1:{self.ports.tui}/"
        self.control = await serve_control(self.proxies, on_fault=self._fault_set)
        self.say("")
        for what, url in self.urls.items():
            self.say(f"  {what:<18} {url}")
        if self.fleet.shared_store:
            monitors = ", ".join(m.monitor_id for m in self.fleet.monitor_members())
            self.say(f"  {'monitors':<18} {monitors}: one leads, the others stand by")
        self.say(f"  {'logs':<18} {RUN_DIR / 'logs'}/")
        self.say(
            f"  {'chaos drills':<18} {self.prefix} chaos {'|'.join(SERVICES)} {'|'.join(FAULTS)}"
        )
        self.say(f"  {'faults now':<18} {self.prefix} chaos status")
        self.say(f"  {'stop':<18} Ctrl-C here, or {self.prefix} down")

    def _place_config(self) -> None:
        """./monitor.toml, where every command looks by default, unless the user's own is there
        (then the stack's own under var/up/, and one line naming the --config to pass); placed
        again once S3 runs, with its check (a start failing in between leaves a usable file)."""
        assert self.certificate is not None
        s3_url = self.proxies["s3"].url() if "s3" in self.proxies else None
        door, ca_file = self.ports.tls, self.certificate.cert.resolve()
        checks = StackChecks(door, ca_file, s3_url, postgres=self.postgres is not None)
        placed = place_monitor_config(
            Path("."),
            RUN_DIR,
            backend_port=self.ports.backend,
            interval=self.health_interval,
            replica_ports=[b.port for b in self.fleet.backends(self.ports.backend)],
            storage_url=self.monitor_store,
            page_url=f"http://127.0.0.1:{self.ports.statuspage}",
            checks=checks,
        )
        self.config = placed.path
        if placed.kept is not None and "s3" not in self.proxies:  # (said at the first placing)
            self.say(
                f"• monitor.toml: {placed.kept} is yours, so it stays as it is; this stack's is "
                f"{placed.path}: `{self.prefix} tui|store|statuspage --config {placed.path}`"
            )

    def _ports_wanted(self) -> list[tuple[str, int]]:
        several = self.fleet.replicas > 1
        wanted = [
            (f"backend {b.instance}" if several else "backend", b.port)
            for b in self.fleet.backends(self.ports.backend)
        ]
        wanted.append(("status page", self.ports.statuspage))
        wanted.append(("TLS front door", self.ports.tls))
        if self.serve_tui:
            wanted.append(("TUI in a browser", self.ports.tui))
        return wanted

    def _start_watchdog(self) -> None:
        read_end, write_end = os.pipe()  # not inheritable: no other child holds the write end
        log = (RUN_DIR / "logs" / "watchdog.log").open("ab")
        try:
            self.watchdog = subprocess.Popen(
                [sys.executable, "-m", "questcity.watchdog", str(RECORD_PATH.resolve())],
                stdin=read_end,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # out of reach of the terminal's hang-up
            )
        finally:
            os.close(read_end)
            log.close()
        self.lifeline = write_end
        self.record = StackRecord(
            up=record_of("questcity up", os.getpid()),
            watchdog=record_of("watchdog", self.watchdog.pid),
            cleanup=[str(CONTROL_SOCKET.resolve())],
            path=RECORD_PATH,
        )
        self.record.save()

    def _recording(
        self, name: str, server: EmbeddedServer, signal_name: str
    ) -> Callable[[ManagedProcess], None]:
        def record(process: ManagedProcess) -> None:
            if self.record is not None and process.pid is not None:
                self.record.add(
                    record_of(
                        name,
                        process.pid,
                        stage=STAGE_SERVERS,
                        signal=signal_name,
                        cleanup=server.owned_paths(),
                    )
                )

        return record

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
        server.on_process_start = self._recording("PostgreSQL", server, "SIGINT")
        self.postgres = server
        try:
            await asyncio.to_thread(server.start)
        except (ServerStartError, PostgresNotInstalledError) as error:
            raise StackError(f"PostgreSQL did not start: {error}") from None
        proxy = FaultProxy(server.address, name="database").start()
        self.proxies["database"] = proxy
        self.say(
            f"  ready (PostgreSQL on {server.host}:{server.port}, via fault proxy "
            f"{proxy.address[1]})"
        )
        if self.fleet.shared_store:
            # Not through the fault proxy: `chaos database down` fails the backend's database,
            # the drill's subject, and must not blind the monitors that watch it fail.
            await asyncio.to_thread(server.create_database, MONITOR_DATABASE)
            self.monitor_store = server.url_for(database=MONITOR_DATABASE)
            self.say(f"  monitor store: database {MONITOR_DATABASE} in the same cluster")
        return server.url_for(address=proxy.address)

    async def _start_s3(self) -> str:
        self.say("• S3: starting SeaweedFS…")
        server = S3Server(parent=RUN_DIR.resolve())
        server.on_process_start = self._recording("SeaweedFS", server, "SIGTERM")
        self.s3 = server
        try:
            await asyncio.to_thread(server.start)
        except (ServerStartError, WeedNotInstalledError) as error:
            raise StackError(f"the S3 server did not start: {error}") from None
        proxy = FaultProxy(server.address, name="s3").start()
        self.proxies["s3"] = proxy
        self.say(f"  ready (S3 on {server.endpoint_url}, via fault proxy {proxy.address[1]})")
        return proxy.url()

    async def _start_backends(self, database_url: str, s3_url: str) -> None:
        """The first replica alone, then the others together: the first one creates the key
        pair and migrates the database; the others find both done (no two first starts race)."""
        assert self.s3 is not None
        self.env = backend_env(
            database_url,
            s3_url,
            self.s3,
            keys_dir=VAR / "keys",
            health_interval=self.health_interval,
        )
        first, *others = self.fleet.backends(self.ports.backend)
        several = bool(others)
        self.say("• backend: starting…" if not several else "• backend: starting api-1…")
        await self._start_backend(first, several)
        if several:
            self.say(f"• backend: starting {', '.join(b.instance for b in others)}…")
            await asyncio.gather(*(self._start_backend(b, several) for b in others))
        base = first.base_url
        if several:
            for backend in self.fleet.backends(self.ports.backend):
                self.urls[f"backend {backend.instance}"] = f"{backend.base_url}/api/v1/"
            for backend in self.fleet.backends(self.ports.backend):
                self.urls[f"health {backend.instance}"] = f"{backend.base_url}/api/v1/health/"
        else:
            self.urls["backend API"] = f"{base}/api/v1/"
            self.urls["health"] = f"{base}/api/v1/health/"
        self.urls["OpenAPI"] = f"{base}/openapi.json"

    async def _start_backend(self, backend: BackendReplica, several: bool) -> None:
        await self._spawn(
            backend.name,
            ["backend", "--port", str(backend.port)],
            STAGE_BACKEND,
            port=backend.port,
            env={"QUESTCITY_INSTANCE_ID": backend.instance},
        )
        what = f"backend {backend.instance}" if several else "backend"
        await self._wait_http(what, f"{backend.base_url}/api/v1/health/ready", backend.name)

    async def _spawn(
        self,
        name: str,
        argv: list[str],
        stage: int,
        *,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> Child:
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
            env={**os.environ, **self.env, **(env or {})},
            start_new_session=True,
        )
        handle.close()
        return self._adopt(Child(name, process, log, stage), port)

    def _adopt(self, child: Child, port: int | None = None) -> Child:
        self.children.append(child)
        if self.record is not None:
            self.record.add(record_of(child.name, child.process.pid, stage=child.stage, port=port))
        return child

    async def _wait_http(
        self, what: str, url: str, child_name: str, *, accept: tuple[int, ...] = (200,)
    ) -> None:
        child = next(c for c in self.children if c.name == child_name)
        deadline = time.monotonic() + READY_TIMEOUT
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                self._checkpoint()
                if child.process.returncode is not None:
                    raise StackError(
                        f"the {what} exited at start-up; its log: {child.log}\n"
                        + (_tail(child.log) if child.log is not None else "")
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

    async def _start_front_door(self) -> None:
        assert self.certificate is not None
        backends = [b.port for b in self.fleet.backends(self.ports.backend)]
        stage = await open_front_door(self.ports.tls, backends, self.certificate)
        self.proxies["backend"], self.front_door = stage.proxy, stage.door
        self.say(stage.announcement())
        self.urls.update(stage.urls())

    def _fault_set(self, service: str, mode: str) -> None:
        if self.headless:  # (with the TUI in the foreground, a printed line would garble it)
            self.say(f"chaos: {service} {mode}")

    # -- run and stop --------------------------------------------------------------------------

    async def run_tui(self) -> int:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "questcity",
            "tui",
            "--config",
            str(self.config),
            env={**os.environ, **self.env, **self.checking},
        )
        self._adopt(Child("tui", process, None, STAGE_TUI))
        return await process.wait()

    async def stop(self) -> None:
        """Stop everything, stage by stage; then delete the record and let the watchdog go."""
        if self.control is not None:
            self.control.close()
            with contextlib.suppress(FileNotFoundError):
                CONTROL_SOCKET.unlink()
        for stage in sorted({child.stage for child in self.children}):
            await self._stop_children([c for c in self.children if c.stage == stage])
        if self.front_door is not None:  # (after the monitors: they watch it)
            await self.front_door.close()
        for proxy in self.proxies.values():
            await asyncio.to_thread(proxy.close)
        for server in (self.s3, self.postgres):
            if server is not None:
                await asyncio.to_thread(server.close)
        if self.record is not None:
            self.record.delete()
        if self.lifeline is not None:
            os.close(self.lifeline)
            self.lifeline = None
        if self.watchdog is not None:
            await asyncio.to_thread(self.watchdog.wait, STOP_TIMEOUT)

    async def _stop_children(self, children: list[Child]) -> None:
        running = [c.process.pid for c in children if c.process.returncode is None]
        leaders = group_leaders(running)
        for child in children:
            if child.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.process.send_signal(signal.SIGTERM)
        for child in children:
            try:
                await asyncio.wait_for(child.process.wait(), timeout=STOP_TIMEOUT)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    child.process.kill()
                await child.process.wait()
        sweep_groups(leaders)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
