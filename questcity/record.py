"""The record of a running stack: ``./var/up/stack.json``.

``questcity up`` writes it before it starts anything and adds each process the moment it starts
it (pid, start time, stop stage and signal, port, paths to delete after). The watchdog reads it to
stop the stack when ``up`` dies; ``questcity down`` reads it to stop a stack from another
terminal; the next ``up`` reads it to tell a stack still running here from a stale record (a stack
that is gone, its pids perhaps reused by other programs), which it deletes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from questcity.processes import Recorded

RECORD_PATH = Path("var/up/stack.json")


@dataclass
class StackRecord:
    up: Recorded
    """The ``questcity up`` process itself."""
    started_at: float = field(default_factory=time.time)
    watchdog: Recorded | None = None
    processes: list[Recorded] = field(default_factory=list)
    cleanup: list[str] = field(default_factory=list)
    """Paths of ``up`` itself (its control socket) to delete when the stack is gone."""
    path: Path = RECORD_PATH
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    # -- writing (``up``) --------------------------------------------------------------------

    def add(self, process: Recorded) -> None:
        """Record ``process`` (replacing an earlier one of its name: a restart) and save.

        Called from worker threads too (the embedded servers start there)."""
        with self._lock:
            self.processes = [p for p in self.processes if p.name != process.name]
            self.processes.append(process)
            self._save()

    def save(self) -> None:
        with self._lock:
            self._save()

    def _save(self) -> None:
        data = {
            "up": asdict(self.up),
            "started_at": self.started_at,
            "watchdog": asdict(self.watchdog) if self.watchdog is not None else None,
            "processes": [asdict(p) for p in self.processes],
            "cleanup": self.cleanup,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        partial.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(partial, self.path)  # readers never see half a record

    def delete(self) -> None:
        with self._lock, contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    # -- reading (watchdog, ``down``, the next ``up``) ---------------------------------------

    @classmethod
    def load(cls, path: Path = RECORD_PATH) -> StackRecord | None:
        """The record at ``path``; None when there is none or it cannot be read (a stale one)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            watchdog = data.get("watchdog")
            return cls(
                up=_recorded(data["up"]),
                started_at=float(data["started_at"]),
                watchdog=_recorded(watchdog) if watchdog is not None else None,
                processes=[_recorded(p) for p in data["processes"]],
                cleanup=[str(p) for p in data.get("cleanup", [])],
                path=path,
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def alive(self) -> list[Recorded]:
        """The stack's processes still running (``up`` and its watchdog left out)."""
        return [p for p in self.processes if p.alive]

    def started(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started_at))


def _recorded(data: dict[str, Any]) -> Recorded:
    return Recorded(
        name=str(data["name"]),
        pid=int(data["pid"]),
        start=int(data["start"]),
        stage=int(data.get("stage", 0)),
        signal=signal.Signals[str(data.get("signal", "SIGTERM"))].name,
        port=int(data["port"]) if data.get("port") is not None else None,
        cleanup=tuple(str(p) for p in data.get("cleanup", ())),
    )
