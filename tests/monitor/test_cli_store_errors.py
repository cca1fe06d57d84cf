"""A store the monitor cannot use at start ends ``questcity monitor`` and ``questcity tui`` with
one line on stderr and exit status 2, as a config error does, never a traceback: a PostgreSQL
store that refuses connections, a store a newer program migrated (which this one must not write
to). The TUI keeps its banner for a store it cannot reach (it retries: the store may be back by
the next reload), so only the daemon is run against a closed port here.

Run as an operator runs them, in a subprocess, so what reaches the terminal is what is checked.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from monitor.store import open_engine
from monitor.store.migrate import head_revision, upgrade_store
from monitor.store.migrations import VERSION_TABLE

NEWER = "0999"
"""A revision this program does not know: the store of a newer program."""
PASSWORD = "s3cret-pw"

TUI = (["-m", "questcity", "tui"], ["-m", "monitor.tui"])
"""The TUI as a terminal runs it, and as textual-serve starts it for each browser tab."""


def run(command: list[str], config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *command, "--config", config.name],
        cwd=config.parent,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def said(stderr: str) -> list[str]:
    """The lines on stderr other than the daemon's JSON log records."""
    return [line for line in stderr.splitlines() if not _is_log_record(line)]


def _is_log_record(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def write_config(directory: Path, url: str) -> Path:
    path = directory / "monitor.toml"
    path.write_text(
        f'[storage]\nurl = "{url}"\n\n[[targets]]\nname = "api"\nurl = "http://127.0.0.1:9"\n'
    )
    return path


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port nothing listens on: bound and never listened on, so no other process takes it
    while the test runs and a connection to it is refused."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


@pytest.fixture
async def newer_store(tmp_path: Path) -> Path:
    """A SQLite store migrated by a newer program: this program's tables, stamped at a
    revision it does not know (as tests/monitor/store/test_migrations.py makes one)."""
    path = tmp_path / "monitor.db"
    engine = open_engine(f"sqlite:///{path}")
    try:
        await upgrade_store(engine)
        async with engine.begin() as connection:
            await connection.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '{NEWER}'"))
    finally:
        await engine.dispose()
    return path


def stamped(path: Path) -> str:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        (revision,) = connection.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone()
    return str(revision)


def test_the_daemon_says_in_one_line_that_it_cannot_reach_the_store(
    tmp_path: Path, closed_port: int
) -> None:
    config = write_config(
        tmp_path, f"postgresql://monitor:{PASSWORD}@127.0.0.1:{closed_port}/monitor"
    )

    done = run(["-m", "questcity", "monitor"], config)

    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert said(done.stderr) == [
        "questcity: cannot reach the store: connection refused "
        "(the store named by [storage] url in monitor.toml)"
    ]
    assert PASSWORD not in done.stderr
    assert done.stdout == ""


def test_the_daemon_refuses_a_store_of_a_newer_program_in_one_line(newer_store: Path) -> None:
    config = write_config(newer_store.parent, f"sqlite:///{newer_store}")

    done = run(["-m", "questcity", "monitor"], config)

    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert said(done.stderr) == [
        f"questcity: the store's schema is newer than this program (the store at revision "
        f"{NEWER}, this program at {head_revision()}): this program is older than the store; "
        "upgrade questcity (never take the store back) "
        "(the store named by [storage] url in monitor.toml)"
    ]
    assert stamped(newer_store) == NEWER  # left as it was


@pytest.mark.parametrize("command", TUI, ids=["questcity tui", "python -m monitor.tui"])
def test_the_tui_refuses_a_store_of_a_newer_program_in_one_line(
    newer_store: Path, command: list[str]
) -> None:
    config = write_config(newer_store.parent, f"sqlite:///{newer_store}")

    done = run(command, config)

    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"questcity tui: the store's schema is newer than this program (the store at revision "
        f"{NEWER}, this program at {head_revision()}): this program is older than the store; "
        "upgrade questcity (never take the store back) "
        "(the store named by [storage] url in monitor.toml)"
    ]
    assert done.stdout == ""  # the app never started
    assert stamped(newer_store) == NEWER


def test_a_sqlite_store_whose_folder_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    """A file where the store's folder should be: the folder cannot be made."""
    (tmp_path / "blocked").write_text("a file, not a folder")
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[storage]\nurl = "sqlite:///{tmp_path}/blocked/var/monitor.db"\n\n'
        '[[targets]]\nname = "api"\nurl = "http://127.0.0.1:9"\ninterval = 10\ntimeout = 5\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "questcity", "store", "upgrade", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "folder of the SQLite store cannot be made" in done.stderr
