"""Everything `questcity up` starts dies with it, however it dies; a stack left running is named
with the command that stops it; `questcity chaos` heals and reports in its own words.

Two real stacks (PostgreSQL, SeaweedFS, backend, monitor, status page), each started the README's
way, `bash scripts/up` (a byte-for-byte copy in the test's directory, so the stack lives there):
one in a pseudo-terminal that is then closed, one whose `up` is killed with SIGKILL. What is left
is read from /proc: every process of the stack's record, every process whose working directory or
command line names the stack's directories, and every port they listened on.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
import select
import signal
import socket
import subprocess
import sys
import termios
from pathlib import Path

from questcity.embedded.ports import free_port
from questcity.processes import Recorded, record_of, start_ticks
from questcity.record import StackRecord
from tests.e2e.stack_scan import (
    Footprint,
    footprint,
    processes_naming,
    questcity,
    scripts_up_copy,
    uv_environment,
    wait_all_gone,
)
from tests.support.polling import eventually

READY = b"Running headless"
START_WITHIN = 180.0


def _take_the_terminal() -> None:
    """In the child, after setsid: make the pseudo-terminal on fd 0 its controlling terminal, as a
    terminal emulator does for the shell it starts."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _up_argv(script: Path) -> list[str]:
    return [
        "bash",
        str(script),
        "--headless",
        "--tls-port",
        str(free_port()),
        "--backend-port",
        str(free_port()),
        "--statuspage-port",
        str(free_port()),
    ]


def _start_in_a_terminal(script: Path, cwd: Path) -> tuple[subprocess.Popen[bytes], int]:
    """`bash scripts/up --headless` as the shell of a new terminal; returns it and the terminal's
    end (closing it closes the terminal)."""
    terminal, slave = os.openpty()
    try:
        process = subprocess.Popen(
            _up_argv(script),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=cwd,
            env=uv_environment({"TERM": "xterm"}),
            start_new_session=True,
            preexec_fn=_take_the_terminal,
        )
    finally:
        os.close(slave)
    return process, terminal


def _start_in_the_background(argv: list[str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    """`bash scripts/up --headless` in a process group of its own, its output in ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=uv_environment(),
            start_new_session=True,
        )


def _up_again(script: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _up_argv(script),
        cwd=cwd,
        env=uv_environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _kill_what_is_left(stack: Footprint | None, cwd: Path) -> None:
    """After a failed test: leave no server behind for the next one."""
    if stack is None:
        with contextlib.suppress(AssertionError):  # no record: what names the directory
            stack = footprint(cwd)
    doomed = set(stack.processes) if stack is not None else set()
    doomed |= {(pid, start_ticks(pid) or -1) for pid in processes_naming([str(cwd)])}
    for pid, start in doomed:
        if start_ticks(pid) == start:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _refusal(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("questcity up:")]
    assert len(lines) == 1, done.stderr
    return lines[0]


async def test_closing_the_terminal_stops_every_process_and_port(tmp_path: Path) -> None:
    script = scripts_up_copy(tmp_path)
    process, terminal = _start_in_a_terminal(script, tmp_path)
    screen = bytearray()

    async def shown(text: bytes) -> bool:
        while select.select([terminal], [], [], 0)[0]:
            try:
                screen.extend(os.read(terminal, 65536))
            except OSError:  # the terminal's other side is gone: `up` has exited
                break
        assert process.poll() is None, screen.decode(errors="replace")
        return text in screen

    stack: Footprint | None = None
    try:
        await eventually(lambda: shown(READY), "up is running", within=START_WITHIN, every=0.2)
        text = screen.decode(errors="replace")
        # Hints that work as typed: it runs through `uv run` here.
        assert (
            "uv run questcity chaos database|s3|backend down|slow|blackhole|reset-connections|heal"
            in text
        )
        assert "uv run questcity chaos status" in text
        assert "Ctrl-C here, or uv run questcity down" in text
        stack = footprint(tmp_path, extra_pids=[process.pid])
        names = set(stack.processes.values())
        assert {"questcity up", "watchdog", "PostgreSQL", "SeaweedFS", "backend"} <= names
        assert {"monitor", "statuspage"} <= names

        await _chaos_heals_and_reports(tmp_path)

        record = StackRecord.load(tmp_path / "var" / "up" / "stack.json")
        assert record is not None
        again = _refusal(_up_again(script, tmp_path))
        assert again == (
            f"questcity up: a stack is already running in this directory (questcity up, pid "
            f"{record.up.pid}, started {record.started()}); stop it with Ctrl-C in its terminal, "
            f"or `uv run questcity down`"
        )

        os.close(terminal)  # the terminal window closes: the kernel hangs up its session
        terminal = -1
        await wait_all_gone(stack)
        assert await asyncio.to_thread(process.wait, 30) is not None
        assert not (tmp_path / "var" / "up" / "stack.json").exists()
        # `up` stopped its stack itself, on the hang-up's SIGHUP: its watchdog had nothing to do.
        watchdog_log = (tmp_path / "var" / "up" / "logs" / "watchdog.log").read_text()
        assert "questcity up is gone" not in watchdog_log
    finally:
        if terminal != -1:
            os.close(terminal)
        _kill_what_is_left(stack, tmp_path)


async def _chaos_heals_and_reports(cwd: Path) -> None:
    def chaos(*words: str) -> str:
        done = questcity(cwd, "chaos", *words)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert chaos("status") == (
        "database: no fault (connections pass)\ns3: no fault (connections pass)\n"
        "backend: no fault (connections pass)"
    )
    assert chaos("s3", "slow", "--latency", "0.25") == "s3: slow (+0.25 s per chunk, each way)"
    assert chaos("s3", "blackhole") == "s3: blackhole (connections accepted, never answered)"
    # `reset` is the documented older word for the connection-reset fault: a fault, not a heal.
    assert chaos("database", "reset") == "database: reset-connections (every connection reset)"
    assert chaos("status") == (
        "database: reset-connections (every connection reset)\n"
        "s3: blackhole (connections accepted, never answered)\n"
        "backend: no fault (connections pass)"
    )
    assert chaos("s3", "heal") == "s3: no fault (connections pass)"
    assert chaos("database", "heal") == "database: no fault (connections pass)"
    assert chaos("status") == (
        "database: no fault (connections pass)\ns3: no fault (connections pass)\n"
        "backend: no fault (connections pass)"
    )
    wrong = questcity(cwd, "chaos", "s3")
    assert wrong.returncode == 2
    assert wrong.stderr.strip() == (
        "questcity chaos: what to do with s3? "
        "one of: down, slow, blackhole, reset-connections, heal"
    )


async def test_sigkill_of_up_stops_every_process_and_a_leftover_is_named(tmp_path: Path) -> None:
    script = scripts_up_copy(tmp_path)
    argv = _up_argv(script)
    api, status = int(argv[-3]), int(argv[-1])
    log = tmp_path / "up.log"
    process = _start_in_the_background(argv, tmp_path, log)

    async def running() -> bool:
        assert process.poll() is None, log.read_text()
        return READY in log.read_bytes()

    stack: Footprint | None = None
    watchdog: Recorded | None = None
    try:
        await eventually(running, "up is running", within=START_WITHIN, every=0.2)
        stack = footprint(tmp_path, extra_pids=[process.pid])
        record = StackRecord.load(tmp_path / "var" / "up" / "stack.json")
        assert record is not None and record.watchdog is not None
        watchdog = record.watchdog
        # Held still, the watchdog lets us see what SIGKILL alone leaves: a leftover stack.
        os.kill(watchdog.pid, signal.SIGSTOP)
        os.kill(record.up.pid, signal.SIGKILL)

        async def up_gone() -> bool:
            return not record.up.alive

        await eventually(up_gone, "up is gone")
        refused = _refusal(_up_again(script, tmp_path))
        pattern = (
            rf"questcity up: a stack from an earlier run \(started {re.escape(record.started())}\) "
            r"is still running here: (?P<left>.*); stop it with `uv run questcity down`"
        )
        match = re.fullmatch(pattern, refused)
        assert match is not None, refused
        left = match["left"]
        for process_named in record.processes:
            assert f"{process_named.name} (pid {process_named.pid}" in left
        assert f"backend (pid {_pid(record, 'backend')}, port {api})" in left
        assert f"statuspage (pid {_pid(record, 'statuspage')}, port {status})" in left
        os.kill(watchdog.pid, signal.SIGCONT)  # it reads end-of-file and does its job
        watchdog = None
        await wait_all_gone(stack)
        assert not (tmp_path / "var" / "up" / "stack.json").exists()
        watchdog_log = (tmp_path / "var" / "up" / "logs" / "watchdog.log").read_text()
        stops = re.findall(r"stopping (\w+)", watchdog_log)
        assert stops.index("monitor") < stops.index("backend") < stops.index("PostgreSQL")
        assert stops.index("statuspage") < stops.index("backend") < stops.index("SeaweedFS")
    finally:
        if watchdog is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(watchdog.pid, signal.SIGCONT)
        _kill_what_is_left(stack, tmp_path)
        await asyncio.to_thread(process.wait, 30)


def _pid(record: StackRecord, name: str) -> int:
    return next(p.pid for p in record.processes if p.name == name)


# -- the record, without a stack: cheap processes standing in for the services ------------------

SERVICE = """
import signal, subprocess, sys, time
name, log, linger = sys.argv[1], sys.argv[2], float(sys.argv[3])
def note(text):
    with open(log, "a") as out:
        out.write(f"{name} {text}\\n")
if name == "monitor":  # something it started and will not stop, deaf to SIGTERM
    subprocess.Popen([sys.executable, "-c", STRAGGLER, log])
def stop(*_):
    note("stopping")
    time.sleep(linger)
    note("stopped")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
note("ready")
while True:
    signal.pause()
"""


STRAGGLER = """
import os, signal, sys
signal.signal(signal.SIGTERM, signal.SIG_IGN)
with open(sys.argv[1], "a") as out:
    out.write(f"straggler {os.getpid()}\\n")
while True:
    signal.pause()
"""
SERVICE = SERVICE.replace("STRAGGLER", repr(STRAGGLER))


def _services(notes: Path, lingers: dict[str, float]) -> list[subprocess.Popen[bytes]]:
    """One stand-in service per name; each lingers that long between SIGTERM and its exit."""
    return [
        subprocess.Popen(
            [sys.executable, "-c", SERVICE, name, str(notes), str(linger)],
            start_new_session=True,  # as `up` starts each service: a process group of its own
        )
        for name, linger in lingers.items()
    ]


async def test_down_stops_a_leftover_in_order_and_spares_a_reused_pid(tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    started = _services(notes, {"monitor": 0.3, "backend": 0})
    try:

        async def ready() -> bool:
            text = notes.read_text() if notes.exists() else ""
            return text.count("ready") == 2 and "straggler" in text

        await eventually(ready, "both services are ready")
        monitor, backend = started
        port = free_port()
        record = StackRecord(
            # Its `up` is gone and its pid now belongs to another program (this test's).
            up=Recorded("questcity up", os.getpid(), start=0),
            path=tmp_path / "var" / "up" / "stack.json",
        )
        record.add(record_of("monitor", monitor.pid, stage=1))
        record.add(record_of("backend", backend.pid, stage=2, port=port))
        record.add(Recorded("PostgreSQL", os.getpid(), start=0, stage=3, signal="SIGINT"))

        refused = _refusal(questcity(tmp_path, "up", "--headless", "--backend-port", str(port)))
        assert refused == (
            f"questcity up: a stack from an earlier run (started {record.started()}) is still "
            f"running here: monitor (pid {monitor.pid}), backend (pid {backend.pid}, port {port}); "
            f"stop it with `uv run questcity down`"
        )

        down = questcity(tmp_path, "down")
        assert down.returncode == 0, down.stderr
        assert down.stdout.splitlines() == [
            f"stopping monitor (pid {monitor.pid})",
            f"stopping backend (pid {backend.pid}, port {port})",
            "stopped.",
        ]
        straggler = int(re.findall(r"straggler (\d+)", notes.read_text())[0])

        async def swept() -> bool:  # with its group, once the monitor had stopped
            return start_ticks(straggler) is None

        await eventually(swept, "the monitor's straggler is gone")
        events = [
            line
            for line in notes.read_text().splitlines()
            if line.split()[1] in ("stopping", "stopped")
        ]
        # The watcher is gone before what it watches is asked to stop.
        assert events == [
            "monitor stopping",
            "monitor stopped",
            "backend stopping",
            "backend stopped",
        ]
        assert [p.wait(10) for p in started] == [0, 0]
        assert not record.path.exists()
        assert questcity(tmp_path, "down").stdout.startswith("questcity down: no stack is running")
    finally:
        for leftover in started:
            leftover.kill()
            leftover.wait()
        for pid in re.findall(r"straggler (\d+)", notes.read_text() if notes.exists() else ""):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)


def test_a_stale_record_is_deleted_and_up_goes_on(tmp_path: Path) -> None:
    throwaway = tmp_path / "var" / "up" / "questcity-pg-earlier"
    throwaway.mkdir(parents=True)
    record = StackRecord(
        up=Recorded("questcity up", os.getpid(), start=0), path=tmp_path / "var/up/stack.json"
    )
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    record.add(Recorded("backend", gone.pid, start=1, stage=2, port=8000))
    record.add(Recorded("PostgreSQL", os.getpid(), start=0, stage=3, cleanup=(str(throwaway),)))
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        refused = _refusal(questcity(tmp_path, "up", "--headless", "--backend-port", str(port)))
    # Past the record (nothing of it runs), on to the next check.
    assert refused.startswith(f"questcity up: port {port} (for the backend) is in use")
    assert not record.path.exists()
    assert not throwaway.exists()
