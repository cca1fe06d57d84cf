"""Servers for the backend benchmarks: the real backend and a bare Starlette app, each in a process
of its own, started so that they are sure to be stopped.

- :func:`backend_argv` runs ``python -m questcity backend`` (what ``uv run questcity backend``
  runs, without the ``uv`` wrapper process), configured only by the environment that
  :func:`backend_env` builds: every ``QUESTCITY_*`` variable of the caller is dropped, and the
  server runs in a temporary directory, so no developer's ``.env`` or variable leaks in.
- :func:`bare_argv` runs this module: a Starlette app with one route answering a small
  ``JSONResponse``, under uvicorn with the options :func:`backend.server.build_server` uses
  (:func:`uvicorn_config`; :func:`option_differences` checks that they still agree).
- :class:`ServerProcess` starts either through ``tests.support``'s :class:`ManagedProcess` (its own
  session, so a Ctrl-C reaches the benchmark only, which then stops it in order; a parent-death
  SIGKILL where ``setpriv`` exists; an ``atexit`` last resort), waits until it answers, and stops
  it with SIGTERM, then SIGKILL.
- :class:`LeanClient`: a minimal keep-alive HTTP/1.1 client, cheap enough not to skew latencies.
- :func:`py_spy` and :func:`summarize_profile`: sample a server with py-spy, and say which frames
  of our code the samples fell in.

    python -m benchmarks._servers bare --port 8123      # the bare app alone, by hand
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

if TYPE_CHECKING:
    from backend.settings import Settings
    from connection_guard import ConnectionLimits

# Nothing else at module level: this module is also the bare app's process, whose memory
# ``idle_rss`` measures as the baseline. httpx, the backend and tests.support (which brings in
# botocore) are imported where they are used, in the benchmark's own process.

HOST = "127.0.0.1"
BARE_PATH = "/live"
"""The bare app's one route."""

LIVE = "/api/v1/health/live"
READY = "/api/v1/health/ready"
OVERALL = "/api/v1/health/"


# -- the bare app --------------------------------------------------------------------------------


async def _alive(request: Request) -> JSONResponse:
    return JSONResponse({"status": "alive"})


def bare_app() -> Starlette:
    """One route, one small JSON answer: the floor under any Starlette app on this machine."""
    return Starlette(routes=[Route(BARE_PATH, _alive, methods=["GET"])])


def uvicorn_config(
    app: Starlette, port: int, *, shutdown_grace: float | None = None
) -> uvicorn.Config:
    """The ``uvicorn.Config`` that :func:`backend.server.build_server` makes, for any app."""
    from backend.settings import Settings  # standard library only: cheap
    from connection_guard import raise_open_files_limit
    from connection_guard.uvicorn_protocol import uvicorn_options  # uvicorn and h11: loaded anyway

    settings = Settings()
    grace = settings.shutdown_grace if shutdown_grace is None else shutdown_grace
    return uvicorn.Config(
        app,
        host=HOST,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(grace),
        lifespan="on",
        server_header=False,
        **uvicorn_options(
            bare_limits(settings).within_open_files(raise_open_files_limit()), name="bare"
        ),
    )


def bare_limits(settings: Settings) -> ConnectionLimits:
    """:func:`backend.server.connection_limits` without importing the backend (its weight would
    count in the bare app's memory)."""
    from connection_guard import ConnectionLimits

    return ConnectionLimits(
        settings.header_timeout, settings.keepalive_timeout, settings.max_connections
    )


def comparable_options(config: uvicorn.Config) -> dict[str, object]:
    """The plain-valued options of ``config``, less the app and where it listens."""
    skip = {"app", "host", "port", "loaded", "loaded_app"}
    plain = (str, int, float, bool, type(None))
    options: dict[str, object] = {
        key: value
        for key, value in vars(config).items()
        if key not in skip and isinstance(value, plain)
    }
    options["log_config"] = config.log_config
    # The guarded protocol is a class made per server: compare what it guards with, not its name.
    describe = getattr(config.http, "describe", None)
    options["http"] = describe() if callable(describe) else config.http
    return options


def option_differences(workdir: Path) -> dict[str, tuple[object, object]]:
    """Options in which the bare app's uvicorn config differs from the backend's own; ``{}`` when
    they agree. The backend's is built by ``build_server`` itself (nothing is opened)."""
    from backend.server import build_server
    from backend.settings import Settings

    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{workdir / 'options.db'}", keys_dir=workdir / "keys"
    )
    ours = comparable_options(build_server(settings, HOST, 1).config)
    bare = comparable_options(uvicorn_config(bare_app(), 1))
    return {
        key: (ours.get(key), bare.get(key))
        for key in sorted(ours.keys() | bare.keys())
        if ours.get(key) != bare.get(key)
    }


def implementations() -> str:
    """The event loop and HTTP protocol that uvicorn's ``auto`` resolves to in this environment."""
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return f"loop={loop}, http={http}"


# -- command lines and environments --------------------------------------------------------------


def pinned(argv: Sequence[str], cpu: int | None) -> list[str]:
    """``argv`` run on CPU ``cpu`` only (with ``taskset``), or as it is for ``None``."""
    if cpu is None:
        return list(argv)
    taskset = shutil.which("taskset")
    if taskset is None:
        raise SystemExit("taskset (util-linux) is needed to pin processes to cores")
    return [taskset, "-c", str(cpu), *argv]


def backend_argv(port: int, *, cpu: int | None = None) -> list[str]:
    argv = [sys.executable, "-m", "questcity", "backend", "--host", HOST, "--port", str(port)]
    return pinned(argv, cpu)


def bare_argv(port: int, *, cpu: int | None = None) -> list[str]:
    return pinned([sys.executable, "-m", "benchmarks._servers", "bare", "--port", str(port)], cpu)


def backend_env(workdir: Path, **settings: object) -> dict[str, str]:
    """The caller's environment less every ``QUESTCITY_*`` variable, plus ``settings`` (names as
    in :class:`Settings`). By default: a SQLite database and the keys in ``workdir``, no S3."""
    from backend.settings import PREFIX

    env = {key: value for key, value in os.environ.items() if not key.startswith(PREFIX)}
    values: dict[str, object] = {
        "database_url": f"sqlite+aiosqlite:///{workdir / 'questcity.db'}",
        "keys_dir": workdir / "keys",
        **settings,
    }
    for name, value in values.items():
        env[PREFIX + name.upper()] = str(value)
    # The project's own code comes from the working tree, whatever the server's directory is.
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env


# -- the processes -------------------------------------------------------------------------------


class ServerProcess:
    """An HTTP server in a child process, with its log in ``workdir``; a context manager."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        port: int,
        workdir: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.port = port
        self.workdir = workdir
        self.log_path = workdir / f"{name}.log"
        from tests.support.process import ManagedProcess

        self._process = ManagedProcess(argv, log_path=self.log_path, env=env, cwd=workdir)

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def launched_pid(self) -> int:
        pid = self._process.pid
        if pid is None:
            raise RuntimeError(f"{self.name} is not started")
        return pid

    @property
    def running(self) -> bool:
        return self._process.running

    def start(self) -> ServerProcess:
        self._process.start()
        return self

    def wait_until(self, path: str, *, status: int = 200, timeout: float = 60.0) -> None:
        """Poll ``GET path`` until it answers ``status``; fail at once if the process exits."""
        import httpx

        from tests.support.process import ServerStartError, log_tail

        deadline = time.monotonic() + timeout
        last = "no answer yet"
        with httpx.Client(base_url=self.base_url, timeout=2.0) as client:
            while True:
                try:
                    response = client.get(path)
                except httpx.HTTPError as error:
                    last = repr(error)
                else:
                    if response.status_code == status:
                        return
                    last = f"{response.status_code} {response.text[:200]}"
                if self._process.exited_within(0.1):
                    raise ServerStartError(
                        f"{self.name} exited (code {self._process.returncode}); "
                        f"log {self.log_path}:\n{log_tail(self.log_path)}"
                    )
                if time.monotonic() > deadline:
                    raise ServerStartError(
                        f"{self.name}: GET {path} did not answer {status} within {timeout} s "
                        f"(last: {last}); log {self.log_path}:\n{log_tail(self.log_path)}"
                    )

    def idle(self, seconds: float) -> None:
        """Wait ``seconds``, failing if the server exits meanwhile."""
        from tests.support.process import log_tail

        if self._process.exited_within(seconds):
            raise RuntimeError(f"{self.name} exited while idle; log:\n{log_tail(self.log_path)}")

    def server_pid(self) -> int:
        """The process that listens on the port: the Python process running uvicorn (not a
        ``uv``, ``setpriv`` or ``taskset`` wrapper, whichever of them the command line had)."""
        pids = listener_pids(self.port)
        if len(pids) != 1:
            raise RuntimeError(
                f"{self.name}: expected one process listening on {self.port}: {pids}"
            )
        return pids[0]

    def stop(self) -> None:
        """SIGTERM (the backend drains, then closes its engine); SIGKILL after 20 s."""
        self._process.stop(signal.SIGTERM, timeout=20.0)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def listener_pids(port: int) -> list[int]:
    """Processes holding a socket that listens on TCP ``port`` (IPv4 or IPv6), from /proc."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{inode}]")
    found: list[int] = []
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            targets = {os.readlink(fd) for fd in fd_dir.iterdir()}
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if targets & inodes:
            found.append(int(fd_dir.parent.name))
    return sorted(found)


def proc_status(pid: int) -> dict[str, str]:
    """``/proc/PID/status`` as a dict (``VmRSS`` → ``'123456 kB'``)."""
    status: dict[str, str] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        status[key] = value.strip()
    return status


def kib(value: str) -> int:
    """``'123456 kB'`` → 123456."""
    number, _, unit = value.partition(" ")
    if unit != "kB":
        raise ValueError(f"not a kB figure: {value!r}")
    return int(number)


def command_line(pid: int) -> str:
    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    return " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)


def new_port() -> int:
    from tests.support.ports import free_port

    return free_port(HOST)


# -- a lean HTTP/1.1 client ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]
    """Lower-case names; a repeated header keeps its last value."""
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class LeanClient:
    """HTTP/1.1 over asyncio streams, keep-alive connections reused LIFO, nothing else.

    A latency benchmark's client must cost far less than what it measures. httpx's connection
    pool scans every connection on every request: with a hundred connections open (requests
    held by an outage) it took whole milliseconds per request on this machine, and the event
    loop fell behind the schedule. This client does a dict look-up and a few stream calls.
    Answers must carry ``Content-Length`` (uvicorn's do for every Starlette ``Response``).
    """

    def __init__(self, host: str, port: int, *, timeout: float) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._open: set[asyncio.StreamWriter] = set()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: object = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        body = b"" if json_body is None else json.dumps(json_body).encode()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if json_body is not None:
            lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        async with asyncio.timeout(self.timeout):
            reader, writer = await self._connection()
            try:
                writer.write(head + body)
                answer, keep = await self._read(reader)
            except BaseException:
                self._discard(writer)
                raise
        if keep:
            self._idle.append((reader, writer))
        else:
            self._discard(writer)
        return answer

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while self._idle:
            reader, writer = self._idle.pop()
            if not reader.at_eof():
                return reader, writer
            self._discard(writer)
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self._open.add(writer)
        return reader, writer

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> tuple[Answer, bool]:
        status_line = await reader.readline()
        if not status_line:
            raise ConnectionResetError("the server closed the connection")
        status = int(status_line.split(b" ", 2)[1])
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" not in headers:
            raise ValueError(f"an answer without Content-Length: {status_line!r} {headers}")
        body = await reader.readexactly(int(headers["content-length"]))
        return Answer(status, headers, body), headers.get("connection", "").lower() != "close"

    def _discard(self, writer: asyncio.StreamWriter) -> None:
        self._open.discard(writer)
        writer.close()

    async def close(self) -> None:
        writers, self._open, self._idle = list(self._open), set(), []
        for writer in writers:
            writer.close()
        for writer in writers:
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def __aenter__(self) -> LeanClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


# -- profiling ----------------------------------------------------------------------------------


@contextlib.contextmanager
def py_spy(pid: int, output: Path) -> Iterator[None]:
    """Sample ``pid`` with py-spy while the block runs; collapsed stacks go to ``output``
    (``--format raw``: one ``frame;frame;... count`` line per stack, for flamegraph.pl, speedscope
    or grep). ``--nonblocking``: the server is not paused for each sample."""
    binary = shutil.which("py-spy")
    if binary is None:
        raise SystemExit("py-spy is not installed (pip install py-spy)")
    argv = [binary, "record", "--pid", str(pid), "--format", "raw", "--rate", "250"]
    argv += ["--nonblocking", "--output", str(output)]
    with output.with_suffix(".py-spy.log").open("wb") as log:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        yield
    finally:
        process.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def summarize_profile(
    path: Path, *, ours: Sequence[str] = ("backend/", "shared/"), top: int = 12
) -> str:
    """Where the samples of a ``--format raw`` py-spy profile went: for each frame of our code
    (a file under one of ``ours``), the share of samples whose stack holds it (inclusive), and
    the share of samples whose innermost frame of our code it is (time in it and in the libraries
    it calls, less the time in our code it calls)."""
    total = 0
    inclusive: dict[str, int] = {}
    innermost: dict[str, int] = {}
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        mine = [f for f in stack.split(";") if any(root in f for root in ours)]
        for frame in set(mine):
            inclusive[frame] = inclusive.get(frame, 0) + n
        if mine:
            innermost[mine[-1]] = innermost.get(mine[-1], 0) + n
    if not total:
        return "(no samples)"
    lines = [f"{total} samples; frames of our code (inclusive %, innermost-ours %):"]
    for frame, n in sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(
            f"  {100 * n / total:5.1f}  {100 * innermost.get(frame, 0) / total:5.1f}  {frame}"
        )
    return "\n".join(lines)


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: other work on the machine skews every figure."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# -- interruption --------------------------------------------------------------------------------


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Treat SIGTERM as Ctrl-C while the block runs, so that its ``finally`` clauses (which stop
    the servers) run for either."""
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# -- ``python -m benchmarks._servers bare --port P`` ---------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="benchmark servers")
    commands = parser.add_subparsers(dest="command", required=True)
    bare = commands.add_parser("bare", help="the bare Starlette app under the backend's uvicorn")
    bare.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    if args.command == "bare":
        uvicorn.Server(uvicorn_config(bare_app(), args.port)).run()


if __name__ == "__main__":
    main()
