"""The processes of a stack, found again by pid *and* start time, and stopped in order.

A pid names a process only while it lives: once it has ended, the kernel may give the number to
another program. So each process is recorded with its start time (``/proc/PID/stat``, field 22,
clock ticks since boot) and is signalled only while both still match; a zombie counts as gone.

Stopping goes by stage, lowest first, each stage waited for before the next: whatever watches the
stack (the TUI, the monitor, the status page) goes before what it watches, so nothing records or
publishes an outage that is only the stack going down.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from questcity.embedded.process import wait_gone

STOP_TIMEOUT = 15.0
"""Seconds a stage has to stop after its signal, before SIGKILL."""


@dataclass(frozen=True)
class Recorded:
    """One process a stack started, as its record keeps it."""

    name: str
    pid: int
    start: int
    """Clock ticks since boot when it started (``/proc/PID/stat`` field 22)."""
    stage: int = 0
    """Stopped in ascending stages: watchers before what they watch."""
    signal: str = "SIGTERM"
    """Its orderly stop (PostgreSQL: SIGINT, a fast shutdown)."""
    port: int | None = None
    """The port it serves users on, if any (named in messages)."""
    cleanup: tuple[str, ...] = field(default=())
    """Paths (its throwaway directories, sockets) to delete once it is gone."""

    @property
    def alive(self) -> bool:
        return start_ticks(self.pid) == self.start

    def describe(self) -> str:
        where = f", port {self.port}" if self.port is not None else ""
        return f"{self.name} (pid {self.pid}{where})"


def start_ticks(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot); None if there is none, or a zombie."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()  # the name, in parentheses, may hold spaces
    try:
        if fields[0] in ("Z", "X"):
            return None
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def record_of(
    name: str,
    pid: int,
    *,
    stage: int = 0,
    signal: str = "SIGTERM",
    port: int | None = None,
    cleanup: Iterable[Path | str] = (),
) -> Recorded:
    """A :class:`Recorded` for a process just started (its start time read now)."""
    start = start_ticks(pid)
    if start is None:  # it has already ended: record something no live process matches
        start = -1
    paths = tuple(str(Path(p).resolve()) for p in cleanup)
    return Recorded(name, pid, start, stage=stage, signal=signal, port=port, cleanup=paths)


def stop_in_stages(
    processes: Sequence[Recorded],
    *,
    timeout: float = STOP_TIMEOUT,
    say: Callable[[str], None] = lambda _: None,
) -> list[Recorded]:
    """Stop each process still alive, stage by stage; delete their paths; return those stopped."""
    stopped: list[Recorded] = []
    for stage in sorted({p.stage for p in processes}):
        group = [p for p in processes if p.stage == stage and p.alive]
        leaders = group_leaders(p.pid for p in group)
        for process in group:
            say(f"stopping {process.describe()}")
            send(process, signal.Signals[process.signal])
        stuck = set(wait_gone([p.pid for p in group], timeout))
        for process in group:
            if process.pid in stuck and process.alive:
                say(f"{process.describe()} did not stop within {timeout:g} s: killing it")
                send(process, signal.SIGKILL)
        wait_gone(stuck, 5.0)
        sweep_groups(leaders)
        stopped += group
    remove_paths(path for p in processes for path in p.cleanup)
    return stopped


def process_group(pid: int) -> int | None:
    """The process group of ``pid``, None if there is no such process."""
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def group_leaders(pids: Iterable[int]) -> list[tuple[int, int]]:
    """Those of ``pids`` that lead their process group, each with its start time, taken while
    they still run (see :func:`sweep_groups`)."""
    leaders = []
    for pid in pids:
        start = start_ticks(pid)
        if start is not None and process_group(pid) == pid:
            leaders.append((pid, start))
    return leaders


def group_members(pgid: int, since: int) -> list[int]:
    """Live processes of group ``pgid`` that started at or after ``since`` (clock ticks)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
            state, pgrp, start = fields[0], int(fields[2]), int(fields[19])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile, or not ours to read
        if pgrp == pgid and start >= since and state not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def sweep_groups(leaders: Iterable[tuple[int, int]]) -> None:
    """SIGKILL whatever is left in the process groups of ``leaders`` (pid, start time), once they
    have stopped: what they started and did not stop (a served TUI's tabs, say).

    Each straggler is signalled by pid, never with ``killpg``: once a group's last member has
    gone, its number is free, and a new process of another program could lead a group of that
    number. A member must have started after the leader did, which no earlier holder of the
    number can have."""
    for pgid, since in leaders:
        for pid in group_members(pgid, since):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def send(process: Recorded, signum: signal.Signals) -> None:
    """Signal ``process`` if it still runs (its pid not taken by another program since)."""
    if not process.alive:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(process.pid, signum)
        if signum is not signal.SIGKILL:
            os.kill(process.pid, signal.SIGCONT)  # a stopped process acts on nothing else


def remove_paths(paths: Iterable[str]) -> None:
    for name in paths:
        path = Path(name)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                path.unlink()
