"""What a ``questcity up`` stack leaves on this machine, read from /proc: its processes (the ones
its record names, and any whose working directory or command line names its directories) and the
ports they listen on. Used to prove that a stopped stack left nothing behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from questcity.processes import start_ticks
from questcity.record import StackRecord
from tests.support.polling import eventually

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Footprint:
    """A running stack as seen from outside: (pid, start time) of each process, and its ports."""

    directories: list[str]
    processes: dict[tuple[int, int], str] = field(default_factory=dict)
    ports: set[int] = field(default_factory=set)

    def alive(self) -> list[str]:
        """The processes of the stack still running, plus any new one naming its directories."""
        left = [
            f"{pid} {what}"
            for (pid, start), what in self.processes.items()
            if start_ticks(pid) == start
        ]
        found = processes_naming(self.directories)
        return left + [f"{pid} {what}" for pid, what in found.items() if pid not in self.pids()]

    def pids(self) -> set[int]:
        return {pid for pid, _ in self.processes}

    def listening(self) -> list[int]:
        return sorted(port for port in self.ports if _accepts(port))


def footprint(cwd: Path, extra_pids: Iterable[int] = ()) -> Footprint:
    """The processes and listening ports of the stack running in ``cwd`` (read its record)."""
    record = StackRecord.load(cwd / "var" / "up" / "stack.json")
    assert record is not None, "the stack has no record"
    recorded = [record.up, *([record.watchdog] if record.watchdog else []), *record.processes]
    directories = [str(cwd.resolve())] + [path for p in record.processes for path in p.cleanup]
    seen = Footprint([d for d in directories if Path(d).is_dir()])
    for p in recorded:
        seen.processes[(p.pid, p.start)] = p.name
    for pid in [*extra_pids, *processes_naming(seen.directories)]:
        start = start_ticks(pid)
        with contextlib.suppress(OSError):
            if start is not None:
                seen.processes.setdefault((pid, start), _command_line(pid))
    seen.ports = listening_ports(seen.pids())
    return seen


def processes_naming(directories: Iterable[str]) -> dict[int, str]:
    """Live processes (zombies left out) whose working directory or command line names one of
    ``directories``."""
    roots = list(directories)
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            command = _command_line(int(entry.name))
        except OSError:  # ended while we looked
            continue
        named = any(cwd == r or cwd.startswith(r + "/") or r in command for r in roots)
        if named and start_ticks(int(entry.name)) is not None:
            found[int(entry.name)] = command
    return found


def listening_ports(pids: Iterable[int]) -> set[int]:
    """TCP ports on which one of ``pids`` listens (its socket inodes, found in /proc/net/tcp*)."""
    inodes: set[int] = set()
    for pid in pids:
        try:
            links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:
            continue
        inodes |= {int(link[8:-1]) for link in links if link.startswith("socket:[")}
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[9]) in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


async def wait_all_gone(stack: Footprint, within: float = 90.0) -> None:
    """Poll until no process of ``stack`` runs and none of its ports accepts a connection."""

    async def gone() -> bool:
        return not stack.alive() and not stack.listening()

    try:
        await eventually(gone, "the stack's processes and ports are all gone", within=within)
    except AssertionError:
        raise AssertionError(
            f"left behind: processes {stack.alive()}, listening ports {stack.listening()}"
        ) from None


def scripts_up_copy(cwd: Path) -> Path:
    """``scripts/up``, byte for byte, at ``cwd/scripts/up``: it runs the stack in its parent
    directory (``cwd``), so the test's stack lives in its own directory, not the checkout."""
    (cwd / "scripts").mkdir()
    return Path(shutil.copy2(REPO / "scripts" / "up", cwd / "scripts" / "up"))


def uv_environment(extra: Mapping[str, str] = {}) -> dict[str, str]:
    """The environment for ``scripts/up`` and ``uv run`` in a test: this checkout's project, its
    environment as it is (no sync: tests never change the environment)."""
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    return {**env, "UV_PROJECT": str(REPO), "UV_NO_SYNC": "1", **extra}


def questcity(cwd: Path, *words: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``uv run questcity WORDS`` in ``cwd``, as the hints of ``questcity up`` say to type it."""
    uv = shutil.which("uv")
    assert uv is not None, "uv is not on PATH (scripts/test installs it)"
    return subprocess.run(
        [uv, "run", "questcity", *words],
        cwd=cwd,
        env=uv_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _command_line(pid: int) -> str:
    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    return raw.replace(b"\0", b" ").decode(errors="replace").strip() or f"[pid {pid}]"


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(("127.0.0.1", port))
        except OSError:
            return False
    return True
