"""A real stack for the signals drill and its benchmarks: the backend (one or more replicas, each
a ``python -m questcity backend`` process), a real PostgreSQL database and a real S3 bucket each
behind a :class:`FaultProxy`, a fault proxy in front of each replica too (so the API itself can be
slowed or blackholed), one ``questcity monitor`` and one ``questcity statuspage`` process on a
``monitor.toml`` of the caller's choosing, with Apprise notifiers.

Why not ``questcity up``: its ``monitor.toml`` has no notifiers and its hold-down is the default,
and a drill must page; it has no proxy in front of the API; and a soak must restart one replica.
The config here is ``up``'s own (:func:`questcity.stack_settings.write_monitor_config`, the same
target, services, names and ``[incidents]``), with the caller's interval and ``[alerts]`` and the
notifiers added — so at ``up``'s interval and the default alert rules it is what ``up`` ships.

The PostgreSQL and S3 servers are the caller's (the test session's, or a benchmark's own); the
stack takes a database and a bucket of its own in them and leaves the servers running.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from questcity.embedded.faultproxy import FaultProxy
from questcity.embedded.ports import free_port
from questcity.embedded.postgres import PostgresServer
from questcity.embedded.s3 import S3Server
from questcity.stack_settings import backend_env, mint_tokens, write_monitor_config
from tests.support.polling import eventually

TARGET = "questcity-api"
APPRISE_ENV = "QUESTCITY_DRILL_APPRISE_URLS"
READY_WITHIN = 60.0
STOP_WITHIN = 20.0


@dataclass(frozen=True)
class Settings:
    """What the stack's ``monitor.toml`` says beyond ``up``'s own."""

    interval: float = 2.0
    """``up``'s health interval (the backend's own checks run at it too)."""
    alerts: Mapping[str, float] = field(default_factory=dict)
    """``[alerts]`` keys (``hold_down``…); empty: the defaults, as ``up`` ships them."""
    repeat_every: float | None = None
    notifier_timeout: float | None = None
    """The Apprise notifier's ``timeout`` (None: the default, as a user's config has it)."""
    replicas: int = 1


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, signum: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                self.process.wait(STOP_WITHIN)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_WITHIN)


@dataclass
class SignalsStack:
    cwd: Path
    settings: Settings
    db: FaultProxy
    s3: FaultProxy
    apis: list[FaultProxy]
    """The proxy in front of each replica (what the monitor and the drill talk to)."""
    backend_ports: list[int]
    status: str
    """The status page's base URL."""
    config_path: Path
    store_url: str
    env: dict[str, str]
    children: dict[str, Child] = field(default_factory=dict)

    @property
    def api(self) -> str:
        return self.apis[0].url()

    def log(self, name: str) -> str:
        return self.children[name].log.read_text(errors="replace")

    def heal_all(self) -> None:
        for proxy in (self.db, self.s3, *self.apis):
            proxy.heal()

    def check_alive(self) -> None:
        for child in self.children.values():
            assert child.alive(), f"{child.name} exited:\n{child.log.read_text()[-3000:]}"

    async def restart_replica(self, index: int) -> float:
        """SIGTERM replica ``index`` (0-based), start it again, wait until it is ready; return
        the seconds it was away."""
        name = f"backend-{index + 1}"
        started = time.monotonic()
        await asyncio.to_thread(self.children[name].stop)
        await self._start_backend(index)
        return time.monotonic() - started

    # -- start and stop ------------------------------------------------------------------------

    def _spawn(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> Child:
        log = self.cwd / f"{name}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "questcity", *argv],
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**_clean_environ(), **env},
                start_new_session=True,  # a Ctrl-C reaches the caller, which stops us in order
            )
        child = self.children[name] = Child(name, process, log)
        return child

    async def _start_backend(self, index: int) -> None:
        name = f"backend-{index + 1}"
        port = self.backend_ports[index]
        child = self._spawn(
            name,
            ["backend", "--port", str(port)],
            {**self.env, "QUESTCITY_INSTANCE_ID": f"api-{index + 1}"},
        )
        await _wait_http(f"http://127.0.0.1:{port}/api/v1/health/ready", child)

    def stop(self) -> None:
        # Watchers first (a monitor watching a stopping backend would page), then the backends.
        for name in sorted(self.children, key=lambda n: n.startswith("backend")):
            self.children[name].stop()
        for proxy in (*self.apis, self.db, self.s3):
            proxy.close()


@contextlib.asynccontextmanager
async def signals_stack(
    cwd: Path,
    postgres: PostgresServer,
    s3: S3Server,
    *,
    settings: Settings,
    apprise_urls: Sequence[str] = (),
) -> AsyncIterator[SignalsStack]:
    """The stack in ``cwd``, watched and paging to ``apprise_urls``, until the block ends."""
    name = f"drill_{secrets.token_hex(4)}"
    await asyncio.to_thread(postgres.create_database, name)
    db = FaultProxy(postgres.address, name="postgres").start()
    s3_proxy = FaultProxy(s3.address, name="s3").start()
    ports = [free_port() for _ in range(settings.replicas)]
    apis = [FaultProxy(("127.0.0.1", p), name=f"api-{n + 1}").start() for n, p in enumerate(ports)]
    env = backend_env(
        postgres.url_for(database=name, address=db.address),
        s3_proxy.url(),
        s3,
        keys_dir=cwd / "keys",
        health_interval=settings.interval,
    )
    env["QUESTCITY_S3_BUCKET"] = name.replace("_", "-")
    store_url = f"sqlite:///{cwd / 'monitor.db'}"
    config = _write_config(cwd, settings, apis, store_url)
    stack = SignalsStack(cwd, settings, db, s3_proxy, apis, ports, "", config, store_url, dict(env))
    try:
        for index in range(settings.replicas):  # one by one: the first migrates, makes the keys
            await stack._start_backend(index)
        stack.env.update(mint_tokens(env))
        watcher_env = {
            **stack.env,
            "QUESTCITY_MONITOR_ID": "drill",
            APPRISE_ENV: " ".join(apprise_urls),
        }
        monitor = stack._spawn("monitor", ["monitor", "--config", str(config)], watcher_env)
        status_port = free_port()
        page = stack._spawn(
            "statuspage",
            ["statuspage", "--config", str(config), "--port", str(status_port)],
            {},
        )
        stack.status = f"http://127.0.0.1:{status_port}"
        await _wait_http(f"{stack.status}/", page)
        assert monitor.alive(), monitor.log.read_text()
        yield stack
    finally:
        await asyncio.to_thread(stack.stop)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(postgres.drop_database, name)


def _write_config(
    cwd: Path, settings: Settings, apis: Sequence[FaultProxy], store_url: str
) -> Path:
    path = write_monitor_config(
        cwd / "monitor.toml",
        backend_port=apis[0].port,
        interval=settings.interval,
        replica_ports=[proxy.port for proxy in apis],
        storage_url=store_url,
    )
    extra = ["", "[alerts]", *(f"{key} = {value}" for key, value in settings.alerts.items())]
    extra += [
        "",
        "[[notifiers]]",
        'type = "log"',
        "",
        "[[notifiers]]",
        'type = "apprise"',
        f'urls_env = "{APPRISE_ENV}"',
    ]
    if settings.notifier_timeout is not None:
        extra.append(f"timeout = {settings.notifier_timeout}")
    if settings.repeat_every is not None:
        extra.append(f"repeat_every = {settings.repeat_every}")
    with path.open("a", encoding="utf-8") as out:
        out.write("\n".join(extra) + "\n")
    return path


def _clean_environ() -> dict[str, str]:
    """The caller's environment without its ``QUESTCITY_*`` (a developer's settings stay out)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("QUESTCITY_")}


async def _wait_http(url: str, child: Child) -> None:
    async with httpx.AsyncClient(timeout=2.0) as client:

        async def ready() -> bool:
            assert child.alive(), f"{child.name} exited:\n{child.log.read_text()[-3000:]}"
            with contextlib.suppress(httpx.HTTPError):
                return (await client.get(url)).status_code == 200
            return False

        await eventually(ready, f"{child.name} ready", within=READY_WITHIN, every=0.2)
