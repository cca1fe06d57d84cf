"""`questcity up` shows checks beyond the health API (#16): a real `up --headless` on PostgreSQL
and SeaweedFS serves its TLS front door with a certificate of its own, and its monitor records
the front door, the door's certificate, PostgreSQL and S3 as healthy in its store;
`questcity chaos backend down` fails the front door (the door answers 502, the condition that
failed is recorded with what it saw) while the health API's target, watched directly, stays
healthy; `chaos backend heal` brings the door back.

The store is read as the TUI would read it: its SQLite file, each check's latest record."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from questcity.embedded.ports import free_port
from tests.support.polling import eventually

CHECKS = ("front-door", "front-door-cert", "postgres", "s3")
START_WITHIN = 120.0
RUN_WITHIN = 40.0
"""A check runs every 10-15 s; a first run, or the next one after a fault, is due well within."""


@dataclass
class Stack:
    cwd: Path
    tls_port: int
    process: asyncio.subprocess.Process

    @property
    def ca_file(self) -> Path:
        return self.cwd / "var" / "up" / "tls" / "front-door.pem"

    def output(self) -> str:
        return (self.cwd / "up.log").read_text(errors="replace")

    def chaos(self, *words: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "questcity", "chaos", *words],
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def variables(self, name: str) -> set[str]:
        """The names (not the values) in the environment of the stack's process ``name``."""
        record = json.loads((self.cwd / "var" / "up" / "stack.json").read_text())
        [pid] = [p["pid"] for p in record["processes"] if p["name"] == name]
        pairs = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        return {p.decode(errors="replace").partition("=")[0] for p in pairs if p}

    def latest(self) -> dict[str, tuple[str, str | None]]:
        """Each component's latest record in the monitor's store: (status, error)."""
        uri = f"file:{self.cwd / 'var' / 'monitor.db'}?mode=ro"
        try:
            with sqlite3.connect(uri, uri=True, timeout=5) as store:
                rows = store.execute(
                    "SELECT target, status, error FROM checks AS c WHERE at = "
                    "(SELECT MAX(at) FROM checks WHERE target = c.target)"
                ).fetchall()
        except sqlite3.OperationalError:  # not made yet, or not migrated yet
            return {}
        return {target: (status, error) for target, status, error in rows}


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    tls_port = free_port()
    log = (tmp_path / "up.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "questcity",
        "up",
        "--headless",
        *("--backend-port", str(free_port()), "--statuspage-port", str(free_port())),
        *("--tls-port", str(tls_port)),
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    stack = Stack(tmp_path, tls_port, process)
    try:

        async def ready() -> bool:
            assert process.returncode is None, stack.output()
            return "Running headless" in stack.output()

        await eventually(ready, "questcity up ready", within=START_WITHIN)
        yield stack
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), timeout=60)
        finally:
            log.close()
    assert "stopped." in stack.output(), stack.output()
    with pytest.raises(ConnectionRefusedError):  # the door closed with the stack
        socket.create_connection(("127.0.0.1", tls_port), timeout=2).close()


async def test_the_tour_checks_the_front_door_its_certificate_postgresql_and_s3(
    stack: Stack,
) -> None:
    text = stack.output()
    assert f"front door (TLS)   https://127.0.0.1:{stack.tls_port}/api/v1/" in text
    assert "its certificate    var/up/tls/front-door.pem" in text
    assert "certificate made now, 89 days left" in text
    assert "chaos database|s3|backend down|" in text
    # The `postgres` check's URL, password and all, reaches what runs checks, nothing else.
    assert "QUESTCITY_CHECK_DATABASE_URL" in stack.variables("monitor")
    for name in ("statuspage", "backend"):
        assert "QUESTCITY_CHECK_DATABASE_URL" not in stack.variables(name), name

    # The door as a player's client reaches it, trusting the stack's certificate.
    trust = ssl.create_default_context(cafile=stack.ca_file)
    door = f"https://127.0.0.1:{stack.tls_port}/api/v1/health/live"
    async with httpx.AsyncClient(verify=trust, timeout=5) as client:
        answer = await client.get(door)
    assert (answer.status_code, answer.json()) == (200, {"status": "alive"})

    async def all_healthy() -> bool:
        latest = await asyncio.to_thread(stack.latest)
        return all(latest.get(name, ("", None))[0] == "healthy" for name in CHECKS)

    await eventually(all_healthy, "every check recorded healthy", within=RUN_WITHIN, every=0.5)

    assert stack.chaos("backend", "down") == "backend: down (new connections refused)"

    async def door_failing() -> bool:
        status, error = (await asyncio.to_thread(stack.latest)).get("front-door", ("", None))
        return status == "unhealthy" and error is not None

    await eventually(door_failing, "the front door recorded failing", within=RUN_WITHIN, every=0.5)
    latest = await asyncio.to_thread(stack.latest)
    error = latest["front-door"][1]
    assert error is not None and "[STATUS] == 200 failed: got 502" in error, error
    assert "127.0.0.1" not in error  # what failed and what it saw, not where
    # Only the door: the backend itself (watched directly), its dependencies and the
    # certificate are as they were.
    for name in ("questcity-api", "front-door-cert", "postgres", "s3"):
        assert latest[name][0] == "healthy", (name, latest[name])

    assert stack.chaos("backend", "heal") == "backend: no fault (connections pass)"

    async def door_back() -> bool:
        latest = await asyncio.to_thread(stack.latest)
        return latest.get("front-door", ("", None))[0] == "healthy"

    await eventually(door_back, "the front door recorded healthy again", within=RUN_WITHIN)


def test_a_tls_port_in_use_is_named_with_the_option_to_change_it(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [
                *(sys.executable, "-m", "questcity", "up", "--headless", "--tls-port", str(port)),
                *("--backend-port", str(free_port()), "--statuspage-port", str(free_port())),
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("questcity up:")]
    assert errors == [
        f"questcity up: port {port} (for the TLS front door) is in use; stop what uses it, or "
        "pick another with --tls-port"
    ]
    assert not (tmp_path / "var" / "up" / "logs").exists()  # nothing was started
