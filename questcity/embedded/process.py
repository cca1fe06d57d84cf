"""One child server process, started so that it is sure to be stopped.

- It runs in a session of its own, so a Ctrl-C at the terminal reaches pytest only, and pytest's
  teardown stops the server in order.
- Where ``setpriv`` (util-linux) exists, a child started from the main thread gets a parent-death
  signal (SIGKILL), so even a pytest killed with SIGKILL leaves no server behind. (Linux sends it
  when the *thread* that started the child ends, so a child started from a worker thread, say
  through ``asyncio.to_thread``, goes without.) ``setpriv`` also drops root to ``run_as``.
- Its standard output and error go to a log file, whose tail goes into every start error.
- :func:`stop_all` (registered with :mod:`atexit`) stops whatever a crashed fixture left running.
"""

from __future__ import annotations

import atexit
import os
import pwd
import select
import shutil
import signal
import subprocess
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

_live: weakref.WeakSet[ManagedProcess] = weakref.WeakSet()


class ServerStartError(RuntimeError):
    """A server did not start, or did not become ready in time; the message has its log's tail."""


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


class ManagedProcess:
    """A child process with a log file; :meth:`stop` and :meth:`kill` always reap it."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        run_as: str | None = None,
        on_start: Callable[[ManagedProcess], None] | None = None,
    ) -> None:
        self.argv = list(argv)
        self.on_start = on_start
        """Called as soon as the process exists (``questcity up`` records it then)."""
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.run_as = run_as
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode if self._proc is not None else None

    def start(self) -> None:
        if self.running:
            raise RuntimeError(f"{self.argv[0]} is already running")
        argv, user = _wrap(self.argv, self.run_as)
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
                user=user,
                group=pwd.getpwnam(user).pw_gid if user is not None else None,
                extra_groups=[] if user is not None else None,
            )
        _live.add(self)
        if self.on_start is not None:
            self.on_start(self)

    def exited_within(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for the process to exit (the poll interval of readiness loops)."""
        if self._proc is None:
            return True
        try:
            self._proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return False
        return True

    def send_signal(self, signum: int) -> None:
        if self.running and self._proc is not None:
            self._proc.send_signal(signum)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        """Send ``signum``; SIGKILL the process if it is still there after ``timeout`` seconds."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signum)
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        _live.discard(self)

    def kill(self, before_wait: Callable[[], None] | None = None) -> None:
        """SIGKILL the process and reap it. ``before_wait`` runs between the two (kill helpers)."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
        if before_wait is not None:
            before_wait()
        self._proc.wait()
        _live.discard(self)


class EmbeddedServer:
    """What a throwaway server has besides its own start and stop: a directory of its own, one
    managed process, restart, close (stop, then delete the directory) and the context manager."""

    def __init__(self) -> None:
        self._base_dir: Path | None = None
        self._process: ManagedProcess | None = None
        self.on_process_start: Callable[[ManagedProcess], None] | None = None
        """Called with the server's process as soon as it exists, on every start."""

    def owned_paths(self) -> list[Path]:
        """What :meth:`close` deletes: for whoever must clean up after a server left behind."""
        return [self._base_dir] if self._base_dir is not None else []

    def start(self) -> None:
        raise NotImplementedError

    def stop(self, timeout: float = 15.0) -> None:
        raise NotImplementedError

    def restart(self) -> None:
        """Stop if running, then start again on the same ports and data directory."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server (if running) and delete its directory."""
        try:
            self.stop()
        finally:
            if self._base_dir is not None:
                shutil.rmtree(self._base_dir, ignore_errors=True)
                self._base_dir = None
                self._process = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _wrap(argv: list[str], run_as: str | None) -> tuple[list[str], str | None]:
    """The command line to run, and the user ``Popen`` must switch to (when ``setpriv`` can't)."""
    user = run_as if run_as is not None and os.geteuid() == 0 else None
    if user is not None:
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            raise ServerStartError(
                f"user {user!r} does not exist (run scripts/ensure-system-deps)"
            ) from None
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return argv, user
    prefix = [setpriv]
    if threading.current_thread() is threading.main_thread():
        prefix.append("--pdeathsig=KILL")
    if user is not None:
        prefix += [f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups"]
    return [*prefix, "--", *argv], None


def run(
    argv: Sequence[str], *, run_as: str | None = None, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """Run a short command (``initdb``, ``createdb``) to completion, output captured."""
    wrapped, user = _wrap(list(argv), run_as)
    return subprocess.run(
        wrapped,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        user=user,
        group=pwd.getpwnam(user).pw_gid if user is not None else None,
        extra_groups=[] if user is not None else None,
    )


def wait_gone(pids: Iterable[int], timeout: float) -> list[int]:
    """Wait until each process has exited (a zombie counts); return those still there after."""
    deadline = time.monotonic() + timeout
    left: list[int] = []
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        except OSError:  # no pidfd here (an old kernel, a strict seccomp profile): poll /proc
            if not _poll_gone(pid, deadline):
                left.append(pid)
            continue
        try:
            readable, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
        finally:
            os.close(fd)
        if not readable:
            left.append(pid)
    return left


def _poll_gone(pid: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            return True
        if state == "Z":
            return True
        time.sleep(0.01)  # noqa: TID251 -- polling another process; there is no clock to inject
    return False


def children_of(pid: int) -> list[int]:
    """The direct children of ``pid``, read from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # the process ended while we looked
            continue
        if len(fields) > 1 and fields[1] == str(pid):
            found.append(int(stat.parent.name))
    return found


@atexit.register
def stop_all() -> None:
    """Kill every process this module started and nobody stopped (a last resort at exit)."""
    for process in list(_live):
        process.kill()
