"""A throwaway PostgreSQL server: its own data directory, port and Unix socket directory.

    with PostgresServer() as pg:            # initdb in a temporary directory, then start
        pg.url                              # postgresql+asyncpg://questcity:…@127.0.0.1:PORT/questcity
        pg.dsn_for(address=proxy.address)   # the same database through a fault proxy
        pg.kill()                           # SIGKILL, the postmaster and every backend: a crash
        pg.restart()                        # same port, same data: crash recovery, then ready
                                            # leaving the block stops it and removes its files

PostgreSQL refuses to run as root, so when the tests run as root the server and ``initdb`` run as
the ``postgres`` system user (the owner of the temporary directory). Connections over TCP use
SCRAM with the role's password, like production; the Unix socket in the temporary directory trusts
local users (used for ``createdb``). Durability is off (``fsync``, ``full_page_writes``):
committed data survives a killed server, not a killed machine, which is all a test needs.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

from questcity.embedded.ports import free_port
from questcity.embedded.process import (
    EmbeddedServer,
    ManagedProcess,
    ServerStartError,
    children_of,
    log_tail,
    run,
    wait_gone,
)

BIN_DIR_ENV = "QUESTCITY_TEST_PG_BIN_DIR"
"""Environment variable naming the directory of ``postgres``, ``initdb``…; found when unset."""

_TOOLS = ("postgres", "initdb", "pg_isready", "createdb", "dropdb")
_SYSTEM_USER = "postgres"
_START_ATTEMPTS = 3
_SETTINGS = {
    "fsync": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "32MB",
    "lc_messages": "C",
}


class PostgresNotInstalledError(ServerStartError):
    """The PostgreSQL server binaries are not on this machine."""


def find_bin_dir(bin_dir: Path | None = None) -> Path:
    """The directory of the PostgreSQL server binaries.

    ``bin_dir`` if given, else $QUESTCITY_TEST_PG_BIN_DIR, else the newest
    /usr/lib/postgresql/*/bin (Debian's layout), else the directory of ``initdb`` on PATH.
    """
    override = bin_dir or (Path(env) if (env := os.environ.get(BIN_DIR_ENV)) else None)
    candidates: list[Path] = [override] if override else []
    if override is None:
        versions = Path("/usr/lib/postgresql").glob("*/bin")
        candidates += sorted(versions, key=lambda p: _version_key(p.parent.name), reverse=True)
        candidates += [Path(found).parent for found in filter(None, [shutil.which("initdb")])]
    for candidate in candidates:
        if all(os.access(candidate / tool, os.X_OK) for tool in _TOOLS):
            return candidate
    looked = ", ".join(str(c) for c in candidates) or "/usr/lib/postgresql/*/bin, PATH"
    raise PostgresNotInstalledError(
        f"PostgreSQL server binaries ({', '.join(_TOOLS)}) not found (looked in: {looked}). "
        f"Run scripts/ensure-system-deps to install them (Debian package postgresql), "
        f"or set {BIN_DIR_ENV}."
    )


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", name)) or (0,)


class PostgresServer(EmbeddedServer):
    """One PostgreSQL cluster in a temporary directory, listening on 127.0.0.1 only."""

    def __init__(
        self,
        *,
        user: str = "questcity",
        password: str = "questcity-test-password",
        database: str = "questcity",
        bin_dir: Path | None = None,
        settings: Mapping[str, str] | None = None,
        start_timeout: float = 60.0,
        parent: Path | None = None,
    ) -> None:
        self._parent = parent
        self.user = user
        self.password = password
        self.database = database
        self.host = "127.0.0.1"
        self.port = 0
        self.start_timeout = start_timeout
        self.settings = {**_SETTINGS, **(settings or {})}
        self._bin_dir = bin_dir
        super().__init__()

    # -- where things are ------------------------------------------------------------------

    @property
    def base_dir(self) -> Path:
        if self._base_dir is None:
            raise RuntimeError("the server has not been started")
        return self._base_dir

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base_dir / "sock"

    @property
    def log_path(self) -> Path:
        return self.base_dir / "postgres.log"

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def dsn(self) -> str:
        """``postgresql://user:password@127.0.0.1:port/database`` (libpq, asyncpg)."""
        return self.dsn_for()

    @property
    def url(self) -> str:
        """The SQLAlchemy URL: ``postgresql+asyncpg://…`` (``QUESTCITY_DATABASE_URL``)."""
        return self.url_for()

    def dsn_for(
        self, *, database: str | None = None, address: tuple[str, int] | None = None
    ) -> str:
        """A DSN for ``database`` (default: :attr:`database`), optionally via ``address``."""
        return self._url("postgresql", database, address)

    def url_for(
        self, *, database: str | None = None, address: tuple[str, int] | None = None
    ) -> str:
        """A SQLAlchemy asyncpg URL for ``database``, optionally via ``address`` (a proxy)."""
        return self._url("postgresql+asyncpg", database, address)

    def _url(self, scheme: str, database: str | None, address: tuple[str, int] | None) -> str:
        host, port = address or self.address
        credentials = f"{quote(self.user, safe='')}:{quote(self.password, safe='')}"
        return f"{scheme}://{credentials}@{host}:{port}/{quote(database or self.database)}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Create the cluster (first time only) and start the server; return once it accepts."""
        if self.running:
            return
        self._bin_dir = find_bin_dir(self._bin_dir)
        if self._base_dir is not None:
            self._launch()
            return
        self._base_dir = Path(tempfile.mkdtemp(prefix="questcity-pg-", dir=self._parent))
        try:
            self._init_cluster()
            self._launch_on_a_free_port()
            if self.database != "postgres":
                self.create_database(self.database)
        except BaseException:
            self.close()
            raise

    def stop(self, timeout: float = 15.0) -> None:
        """Fast shutdown (SIGINT: sessions end, a checkpoint is written); SIGKILL after timeout."""
        process = self._process
        if process is None or not process.running:
            return
        process.send_signal(signal.SIGINT)
        if not process.exited_within(timeout):
            self.kill()
        process.stop()

    def kill(self) -> None:
        """Kill the postmaster and every backend with SIGKILL at once, as a crash would.

        Backends live in process groups of their own, so they are found through /proc; the
        postmaster is frozen first so that it forks no new one meanwhile.
        """
        process = self._process
        if process is None or not process.running or process.pid is None:
            return
        pid = process.pid
        process.send_signal(signal.SIGSTOP)
        children = children_of(pid)
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        process.kill()
        if stuck := wait_gone(children, timeout=10.0):
            raise RuntimeError(f"postgres processes {stuck} survived SIGKILL")

    # -- databases -------------------------------------------------------------------------

    def create_database(self, name: str) -> str:
        """Create database ``name`` (owned by :attr:`user`); return its DSN."""
        self._client("createdb", name)
        return self.dsn_for(database=name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name``, disconnecting its sessions."""
        self._client("dropdb", "--force", name)

    # -- internals -------------------------------------------------------------------------

    def _run_as(self) -> str | None:
        return _SYSTEM_USER if os.geteuid() == 0 else None

    def _tool(self, name: str) -> str:
        assert self._bin_dir is not None
        return str(self._bin_dir / name)

    def _init_cluster(self) -> None:
        base = self.base_dir
        self.socket_dir.mkdir()
        password_file = base / "password"
        password_file.write_text(self.password + "\n")
        if (user := self._run_as()) is not None:
            entry = pwd.getpwnam(user)
            for path in (base, self.socket_dir, password_file):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        result = run(
            [
                self._tool("initdb"),
                f"--pgdata={self.data_dir}",
                f"--username={self.user}",
                f"--pwfile={password_file}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            run_as=self._run_as(),
        )
        password_file.unlink()
        if result.returncode != 0:
            raise ServerStartError(
                f"initdb failed with exit code {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}"
            )

    def _launch_on_a_free_port(self) -> None:
        for attempt in range(1, _START_ATTEMPTS + 1):
            self.port = free_port(self.host)
            try:
                self._launch()
                return
            except ServerStartError as error:  # another process took the port meanwhile?
                if attempt == _START_ATTEMPTS or "already in use" not in str(error):
                    raise

    def _launch(self) -> None:
        argv = [
            self._tool("postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-k",
            str(self.socket_dir),
            "-c",
            f"listen_addresses={self.host}",
        ]
        for key, value in self.settings.items():
            argv += ["-c", f"{key}={value}"]
        self._process = ManagedProcess(
            argv, log_path=self.log_path, run_as=self._run_as(), on_start=self.on_process_start
        )
        self._process.start()
        self._wait_ready(self._process)

    def _wait_ready(self, process: ManagedProcess) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            probe = subprocess.run(
                [self._tool("pg_isready"), "-q", "-h", self.host, "-p", str(self.port), "-t", "2"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                check=False,
            )
            if probe.returncode == 0 and process.running:
                return
            if process.exited_within(0.05):
                log = log_tail(self.log_path)
                reason = "port already in use" if "already in use" in log else "it exited"
                raise ServerStartError(
                    f"PostgreSQL on port {self.port} did not start ({reason}, exit code "
                    f"{process.returncode}); log {self.log_path}:\n{log}"
                )
            if time.monotonic() > deadline:
                process.kill()
                raise ServerStartError(
                    f"PostgreSQL on port {self.port} not ready after {self.start_timeout} s; "
                    f"log {self.log_path}:\n{log_tail(self.log_path)}"
                )

    def _client(self, tool: str, *args: str) -> None:
        result = run(
            [
                self._tool(tool),
                "-h",
                str(self.socket_dir),
                "-p",
                str(self.port),
                "-U",
                self.user,
                *args,
            ],
        )
        if result.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed: {result.stderr.strip()}")
