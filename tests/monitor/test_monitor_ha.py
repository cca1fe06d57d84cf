"""Monitor high availability with real processes: two ``python -m questcity monitor`` on one real
PostgreSQL store (a fresh database per test), watching a real HTTP server and a closed port,
paging a real webhook receiver; and one monitor per SQLite file.

- kill -9 of the leader mid-run: the standby leads within two intervals; the history of each
  target has no gap longer than two intervals and no two checks closer than half an interval (no
  check written twice); the alert that fired before the kill is notified exactly once.
- SIGTERM of the leader: it stops its daemon and releases the lease, so the standby's first check
  comes within a poll (ttl/4) and a check, far sooner than the lease's ttl.
- SQLite: a second monitor on the same file exits 2 in one line while the first keeps checking;
  after kill -9 of the first, a new one starts and leads at once (the kernel dropped the lock).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import text

from monitor.store import open_engine
from tests.monitor.fake_backend import detailed
from tests.monitor.store.support import empty_store_url
from tests.support.polling import eventually
from tests.support.process import ManagedProcess, log_tail

INTERVAL = 2.0
KILL_TTL = 1.0
"""The lease's ttl for the kill -9 test: a takeover within ttl + ttl/4 of the last renewal, so
the history's gap (an interval before the kill at most, then the takeover and the first check)
stays within two intervals with room for a start-up on a loaded machine (the default, 0.6 × the
interval, leaves 0.5 s at this interval)."""
STOP_TTL = 8.0
"""The lease's ttl for the SIGTERM test: long, so a takeover within ttl/4 can only be the
release's doing."""
SUMMARY = json.dumps({k: v for k, v in detailed().items() if k != "checks"}).encode()


# -- what the monitors watch and page ------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._answer(200, SUMMARY)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        with self.server.lock:
            self.server.posts.append(json.loads(body))
        self._answer(200, b"{}")

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.posts: list[dict[str, object]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def notices(self, state: str = "firing") -> list[dict[str, object]]:
        with self.lock:
            return [p for p in self.posts if p.get("state") == state]


@contextlib.contextmanager
def serving() -> Iterator[_Server]:
    """A health API answering healthy, which is also a webhook receiver counting POSTs."""
    server = _Server()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def server() -> Iterator[_Server]:
    with serving() as served:
        yield served


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port nothing listens on (bound, never listened on): its target is unreachable."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


# -- the monitors --------------------------------------------------------------------------------


def write_config(
    directory: Path, store: str, server: _Server, closed_port: int, *, ttl: float
) -> Path:
    path = directory / "monitor.toml"
    path.write_text(
        f"""
[storage]
url = "{store}"

[monitor]
lease_ttl = {ttl}

[alerts]
unreachable_for = 1

[[targets]]
name = "api"
url = "{server.url}"
interval = {INTERVAL}
timeout = 1

[[targets]]
name = "down"
url = "http://127.0.0.1:{closed_port}"
interval = {INTERVAL}
timeout = 1

[[notifiers]]
type = "webhook"
url = "{server.url}/hook"
"""
    )
    return path


@dataclass
class Monitor:
    name: str
    process: ManagedProcess
    log: Path

    def records(self) -> list[dict[str, object]]:
        records = []
        for line in self.log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict):
                    records.append(record)
        return records

    def roles(self) -> list[tuple[str, float]]:
        """Its role changes, with when it logged each (seconds since the epoch)."""
        return [
            (str(r["role"]), _when(str(r["ts"])))
            for r in self.records()
            if r.get("event") == "monitor_role"
        ]

    def role(self) -> str | None:
        roles = self.roles()
        return roles[-1][0] if roles else None

    def said(self, event: str) -> bool:
        return any(r.get("event") == event for r in self.records())

    def tail(self) -> str:
        return log_tail(self.log)


def _when(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@dataclass
class Fleet:
    directory: Path
    config: Path
    monitors: list[Monitor] = field(default_factory=list)

    def start(self, name: str) -> Monitor:
        log = self.directory / f"{name}.log"
        env = {**os.environ, "QUESTCITY_MONITOR_ID": name}
        process = ManagedProcess(
            [sys.executable, "-m", "questcity", "monitor", "--config", str(self.config)],
            log_path=log,
            env=env,
            cwd=self.directory,
        )
        process.start()
        monitor = Monitor(name, process, log)
        self.monitors.append(monitor)
        return monitor

    def close(self) -> None:
        for monitor in self.monitors:
            monitor.process.stop(signal.SIGTERM, timeout=20)


@contextlib.contextmanager
def fleet(directory: Path, config: Path) -> Iterator[Fleet]:
    made = Fleet(directory, config)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def pg_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from empty_store_url("postgresql", request, tmp_path)


@dataclass
class History:
    url: str

    async def checks(self, target: str) -> list[float]:
        engine = open_engine(self.url)
        try:
            async with engine.connect() as connection:
                result = await connection.execute(
                    text("SELECT at FROM checks WHERE target = :t ORDER BY at"), {"t": target}
                )
                return [float(at) for at in result.scalars()]
        except Exception:  # (no tables yet: the first monitor is still making them)
            return []
        finally:
            await engine.dispose()

    async def lease(self) -> tuple[str, int] | None:
        engine = open_engine(self.url)
        try:
            async with engine.connect() as connection:
                row = (
                    await connection.execute(text("SELECT holder, epoch FROM monitor_lease"))
                ).first()
        finally:
            await engine.dispose()
        return None if row is None else (str(row[0]), int(row[1]))


@pytest.fixture
def history(pg_store: str) -> History:
    return History(pg_store)


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


async def two_monitors(stack: Fleet, history: History) -> tuple[Monitor, Monitor]:
    """Start ``a``, let it lead, then start ``b`` to stand by; (leader, standby)."""
    a = stack.start("a")
    await eventually(lambda: _holds(a.role() == "leader"), f"a to lead:\n{a.tail()}", within=30)
    b = stack.start("b")
    await eventually(
        lambda: _holds(b.role() == "standby"), f"b to stand by:\n{b.tail()}", within=30
    )
    return a, b


async def _holds(condition: bool) -> bool:
    return condition


# -- PostgreSQL: two monitors ----------------------------------------------------------------------


async def test_kill_9_of_the_leader_the_standby_takes_over_without_a_gap_or_a_double(
    tmp_path: Path, pg_store: str, server: _Server, closed_port: int, history: History
) -> None:
    config = write_config(tmp_path, pg_store, server, closed_port, ttl=KILL_TTL)
    with fleet(tmp_path, config) as stack:
        a, b = await two_monitors(stack, history)

        # The unreachable target's alert fires (once) while a leads.
        async def fired() -> bool:
            return len(server.notices()) >= 1

        await eventually(fired, f"the alert to be notified:\n{a.tail()}", within=30)
        firing = server.notices()
        assert [(n["rule"], n["target"]) for n in firing] == [("target_unreachable", "down")]
        assert await history.lease() == ("a", 1)
        # Mid-run: a few checks later, halfway between two.
        before = await history.checks("api")
        await eventually(
            lambda: _more(history, "api", len(before) + 2), "two more checks", within=30
        )
        await asyncio.sleep(INTERVAL / 2)  # the kill lands between two checks

        a.process.kill()  # kill -9: no release, no last word
        killed = time.time()

        async def b_leads() -> bool:
            return b.role() == "leader"

        await eventually(b_leads, f"b to lead:\n{b.tail()}", within=10)
        led_at = b.roles()[-1][1]
        assert await history.lease() == ("b", 2)

        async def b_checked() -> bool:
            return any(at > killed for at in await history.checks("api"))

        await eventually(b_checked, "b's first check", within=10)
        first = min(at for at in await history.checks("api") if at > killed)
        # Long enough for a re-notification to show: the alert holds on every check of "down".
        await eventually(
            lambda: _more_after(history, "down", killed, 3), "three checks by b", within=30
        )

    assert led_at - killed <= 2 * INTERVAL, (led_at - killed, b.tail())
    assert first - killed <= 2 * INTERVAL, first - killed
    for target in ("api", "down"):
        times = await history.checks(target)
        assert max(gaps(times)) <= 2 * INTERVAL, (target, gaps(times))
        assert min(gaps(times)) >= INTERVAL / 2, (target, gaps(times))  # none written twice
    assert len(server.notices()) == 1, server.notices()  # notified once across the takeover
    assert not b.said("lease_lost")


async def test_a_leader_stopped_by_sigterm_hands_over_within_a_poll_and_a_check(
    tmp_path: Path, pg_store: str, server: _Server, closed_port: int, history: History
) -> None:
    config = write_config(tmp_path, pg_store, server, closed_port, ttl=STOP_TTL)
    with fleet(tmp_path, config) as stack:
        a, b = await two_monitors(stack, history)
        await eventually(lambda: _more(history, "api", 2), "a's checks", within=30)

        a.process.stop(signal.SIGTERM, timeout=30)
        stopped = time.time()
        assert a.process.returncode == 0, a.tail()
        assert a.said("lease_released"), a.tail()

        async def b_checked() -> bool:
            return any(at > stopped for at in await history.checks("api"))

        await eventually(b_checked, f"b's first check:\n{b.tail()}", within=2 * STOP_TTL)
        first = min(at for at in await history.checks("api") if at > stopped)

    assert first - stopped <= STOP_TTL / 4 + 1.0, first - stopped  # a poll, then a check
    times = await history.checks("api")
    assert min(gaps(times)) >= INTERVAL / 2, gaps(times)
    assert await history.lease() == ("", 2)  # b released it in turn, stopped by the fixture


async def _more(history: History, target: str, count: int) -> bool:
    return len(await history.checks(target)) >= count


async def _more_after(history: History, target: str, after: float, count: int) -> bool:
    return len([at for at in await history.checks(target) if at > after]) >= count


# -- SQLite: one monitor a file --------------------------------------------------------------------


async def test_on_sqlite_a_second_monitor_is_refused_and_after_kill_9_a_new_one_starts(
    tmp_path: Path, server: _Server, closed_port: int
) -> None:
    database = tmp_path / "var" / "monitor.db"
    config = write_config(tmp_path, f"sqlite:///{database}", server, closed_port, ttl=STOP_TTL)
    store = History(f"sqlite:///{database}")
    with fleet(tmp_path, config) as stack:
        first = stack.start("first")
        await eventually(
            lambda: _holds(first.role() == "leader"), f"first leads:\n{first.tail()}", within=30
        )

        second = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "questcity", "monitor", "--config", str(config)],
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert second.returncode == 2
        assert second.stdout == ""
        assert second.stderr.splitlines() == [
            f"questcity: another monitor (pid {first.process.pid}) already runs on {database}; "
            "an SQLite store takes one monitor — run several on a PostgreSQL store "
            "(ARCHITECTURE §11)"
        ]
        # The first goes on checking.
        refused = time.time()
        await eventually(
            lambda: _more_after(store, "api", refused, 2), "the first's checks", within=30
        )
        assert first.process.running

        first.process.kill()
        killed = time.time()
        again = stack.start("again")
        await eventually(
            lambda: _holds(again.role() == "leader"), f"again leads:\n{again.tail()}", within=30
        )
        await eventually(
            lambda: _more_after(store, "api", killed, 2), "the new one's checks", within=30
        )
        # The killed monitor's lease was fresh: the sole monitor took it at once, not a ttl on.
        assert again.roles()[-1][1] - killed < STOP_TTL
