"""``kill -9`` of a writer in the middle of writing: no committed check is lost, the roll-ups agree
with the raw checks, and the SQLite file passes ``PRAGMA integrity_check``.

The writer is a real child process running :class:`HistoryWriter` in a tight loop; it prints the
sequence number of each check after ``record_check`` returned (committed), flushed. The test reads
a few hundred of those lines, then SIGKILLs the child while it is writing the next ones, and does
so three times over the same file (each new writer starts on the file the last one crashed on).
"""

from __future__ import annotations

import asyncio
import os
import selectors
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from monitor.store import create_schema, open_engine
from tests.monitor.store.support import sqlite_url

ROOT = Path(__file__).resolve().parents[3]
BASE_AT = 1_767_225_600.0

WRITER = textwrap.dedent(
    """
    import asyncio
    import sys

    from monitor.store import CheckRecord, ServiceSample, Status, open_engine
    from monitor.store.writer import HistoryWriter

    STATUSES = [Status.HEALTHY, Status.DEGRADED, Status.UNHEALTHY, Status.UNREACHABLE]


    async def main(url: str, base: float, first: int) -> None:
        writer = HistoryWriter(open_engine(url))
        n = first
        while True:
            await writer.record_check(
                CheckRecord(
                    target=f"target-{n % 3}",
                    at=base + n * 7.0,  # the sequence number, recoverable from the row
                    status=STATUSES[n % 4],
                    latency_ms=float(n % 50),
                    http_status=200,
                    error=None,
                    services=(
                        ServiceSample("database", STATUSES[n % 3], float(n % 7), 0, "closed",
                                      {"details": {"pool_size": 10}}),
                        ServiceSample("s3", STATUSES[n % 2], None, n % 5, "open"),
                    ),
                )
            )
            sys.stdout.write(f"{n}\\n")
            sys.stdout.flush()
            n += 1


    asyncio.run(main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3])))
    """
)

LINES_BEFORE_KILL = 200
ROUNDS = 3
DEADLINE = 60.0


def _read_lines(process: subprocess.Popen[str], count: int) -> list[int]:
    """``count`` lines from the child's stdout, waiting at most DEADLINE seconds for them."""
    assert process.stdout is not None
    numbers: list[int] = []
    deadline = time.monotonic() + DEADLINE
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while len(numbers) < count:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"the writer printed {len(numbers)} of {count} lines in time"
            if not selector.select(timeout=remaining):
                continue
            line = process.stdout.readline()
            if not line:
                stderr = process.stderr.read() if process.stderr else ""
                raise AssertionError(f"the writer exited early ({process.poll()}):\n{stderr}")
            numbers.append(int(line))
    return numbers


def _crash_a_writer(url: str, first: int) -> list[int]:
    """Run a writer, SIGKILL it after LINES_BEFORE_KILL lines; every number it printed."""
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, url, repr(BASE_AT), str(first)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        printed = _read_lines(process, LINES_BEFORE_KILL)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=DEADLINE) == -signal.SIGKILL
        # Lines it printed before dying are in the pipe still: those checks were committed too.
        assert process.stdout is not None
        printed += [int(line) for line in process.stdout.read().split()]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    return printed


def test_kill_9_mid_write_loses_no_committed_check(tmp_path: Path) -> None:
    path = tmp_path / "monitor.db"
    url = sqlite_url(path)

    async def schema() -> None:
        engine = open_engine(url)
        await create_schema(engine)
        await engine.dispose()

    asyncio.run(schema())

    committed: list[int] = []
    for round_number in range(ROUNDS):
        committed += _crash_a_writer(url, first=round_number * 100_000)
        assert (tmp_path / "monitor.db-wal").exists()  # killed, not closed: the WAL is left

    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        stored = {round((at - BASE_AT) / 7.0) for (at,) in db.execute("SELECT at FROM checks")}
        missing = sorted(set(committed) - stored)
        assert not missing, f"{len(missing)} committed checks lost, e.g. {missing[:5]}"
        # At most the check in flight at each kill was committed without being printed.
        assert len(stored) - len(committed) <= ROUNDS
        # Every check has all its services, and the roll-ups count exactly the stored rows.
        assert db.execute(
            "SELECT count(*) FROM checks c WHERE (SELECT count(*) FROM service_checks s "
            "WHERE s.check_id = c.id) != 2"
        ).fetchone() == (0,)
        raw = dict(
            db.execute(
                "SELECT target || '/', count(*) FROM checks GROUP BY target "
                "UNION ALL SELECT target || '/' || service, count(*) FROM service_checks "
                "GROUP BY target, service"
            ).fetchall()
        )
        for period in ("hour", "day"):
            rolled = dict(
                db.execute(
                    "SELECT target || '/' || service, sum(checks) FROM rollups WHERE period = ? "
                    "GROUP BY target, service",
                    (period,),
                ).fetchall()
            )
            assert rolled == raw, period
    assert len(committed) >= ROUNDS * LINES_BEFORE_KILL
