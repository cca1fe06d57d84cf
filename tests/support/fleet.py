"""A ``questcity up --headless --replicas N --monitors M`` stack in a test's directory, started as
a user starts it (``python -m questcity up`` with its printed URLs), and what a test needs to
drive and read it: ``questcity chaos``, ``questcity token``, the stack's own ``monitor.toml`` and
store, and each process by its name in the stack's record (``monitor-1``…).

Leaving the block stops the stack with SIGINT (Ctrl-C) and checks it said ``stopped.`` and left
nothing listening on the ports it served.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from monitor.config import MonitorConfig, load_config
from questcity.embedded.ports import free_port
from questcity.processes import Recorded
from questcity.record import StackRecord
from tests.support.polling import eventually

READY = b"Running headless"
START_WITHIN = 150.0
STOP_WITHIN = 60.0


@dataclass
class FleetStack:
    cwd: Path
    backends: list[str]
    """Each replica's base URL (``http://127.0.0.1:PORT``), in replica order (``api-1`` first)."""
    status: str
    """The status page's base URL."""
    process: asyncio.subprocess.Process
    """``questcity up`` itself."""

    @property
    def config_path(self) -> Path:
        """Where ``up`` put its ``monitor.toml`` (var/up/ when the directory has one of yours)."""
        own = self.cwd / "var" / "up" / "monitor.toml"
        return own if own.exists() else self.cwd / "monitor.toml"

    def config(self) -> MonitorConfig:
        return load_config(self.config_path)

    def log(self) -> str:
        return (self.cwd / "up.log").read_text(errors="replace")

    def questcity(self, *words: str, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "questcity", *words],
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env={**os.environ, **(env or {})},
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def chaos(self, *words: str) -> str:
        return self.questcity("chaos", *words)

    def token(self, role: str, *, ttl: int | None = None) -> str:
        """A token signed with the key every replica shares (``var/keys``); ``questcity token``'s
        default lifetime (an hour) unless ``ttl`` seconds are given."""
        keys = {"QUESTCITY_KEYS_DIR": str(self.cwd / "var" / "keys")}
        lifetime = ["--ttl", str(ttl)] if ttl is not None else []
        return self.questcity("token", "--role", role, *lifetime, env=keys)

    def recorded(self, name: str) -> Recorded:
        """The process ``up`` recorded under ``name`` (``monitor-2``, ``backend-1``…)."""
        record = StackRecord.load(self.cwd / "var" / "up" / "stack.json")
        assert record is not None, "the stack has no record"
        (found,) = [p for p in record.processes if p.name == name]
        return found


@contextlib.asynccontextmanager
async def running_fleet(
    cwd: Path, *, replicas: int, monitors: int, options: Sequence[str] = ()
) -> AsyncIterator[FleetStack]:
    """``questcity up --headless --replicas … --monitors …`` in ``cwd``, until it says it runs."""
    backend_port = free_port(with_offsets=range(1, replicas))  # the replicas' ports are free too
    status_port = free_port()
    log_path = cwd / "up.log"
    log = log_path.open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "questcity",
        "up",
        "--headless",
        "--replicas",
        str(replicas),
        "--monitors",
        str(monitors),
        "--backend-port",
        str(backend_port),
        "--statuspage-port",
        str(status_port),
        "--tls-port",
        str(free_port()),
        *options,
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    ports = [backend_port + n for n in range(replicas)] + [status_port]
    try:

        async def ready() -> bool:
            assert process.returncode is None, log_path.read_text()
            return READY in log_path.read_bytes()

        await eventually(ready, "questcity up ready", within=START_WITHIN, every=0.25)
        yield FleetStack(
            cwd,
            [f"http://127.0.0.1:{port}" for port in ports[:-1]],
            f"http://127.0.0.1:{status_port}",
            process,
        )
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), timeout=STOP_WITHIN)
        finally:
            log.close()
    output = log_path.read_text()
    assert "stopped." in output, output
    async with httpx.AsyncClient(timeout=2.0) as client:
        for port in ports:  # nothing is left listening
            try:
                await client.get(f"http://127.0.0.1:{port}/")
            except httpx.ConnectError:
                continue
            raise AssertionError(f"port {port} still answers after the stack stopped")
