"""Fixtures for integration tests against real servers (see ``tests/support``).

- ``postgres_server``, ``s3_server``: one real server each per test session, started on first use
  and stopped (files removed) at the end of the session, also after failures. A test may stop,
  kill or restart them; whatever a test leaves down is started again after it.
- ``pg_proxy``, ``s3_proxy``: a :class:`~tests.support.FaultProxy` in front of each server, one per
  session as well (so the port, and a URL built on it, stays the same); it is healed back to
  ``Mode.PASS`` after every test that uses it.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol, TypeVar

import pytest

from tests.support import FaultProxy, PostgresServer, S3Server


class _Server(Protocol):
    @property
    def running(self) -> bool: ...

    def start(self) -> None: ...

    def close(self) -> None: ...


_S = TypeVar("_S", bound=_Server)
_SERVERS = pytest.StashKey[list[_Server]]()

# Tests that hold real processes to real-time bounds (paged within N intervals, a standby leads
# within two, a breaker's recovery still seconds away). Under pytest-xdist (`scripts/test` runs
# `-n 2`) each runs ALONE: it holds a lock file in the run's temporary directory exclusively,
# every other test holds it shared, so a drill of a dozen processes never shares the two cores
# with another test (on a loaded machine a takeover drill could page twice). Not an
# xdist_group: pytest-xdist 3.8's loadgroup silently stops grouping on pytest 9.2 (its node-id
# suffix no longer takes, pytest-dev/pytest-xdist#1386).
_REAL_TIME = ("tests/e2e/", "tests/monitor/test_monitor_ha.py")


@pytest.fixture(autouse=True)
def _real_time_apart(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    path = request.node.path
    root = request.config.rootpath
    where = path.relative_to(root).as_posix() if path.is_relative_to(root) else ""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        yield
        return
    alone = where.startswith(_REAL_TIME)
    # Each worker's basetemp is <the run's>/popen-gwN: the parent is shared by this run only.
    with (tmp_path_factory.getbasetemp().parent / "real-time.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def _session_server(request: pytest.FixtureRequest, server: _S) -> Iterator[_S]:
    """Start ``server``, have :func:`_revive_servers` watch it, and close it at the end."""
    watched = request.session.stash.setdefault(_SERVERS, [])
    try:
        server.start()
        watched.append(server)
        yield server
    finally:
        if server in watched:
            watched.remove(server)
        server.close()


@pytest.fixture(autouse=True)
def _revive_servers(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test, start again any session server the test left stopped or killed."""
    yield
    for server in request.session.stash.get(_SERVERS, []):
        if not server.running:
            server.start()


@pytest.fixture(scope="session")
def postgres_server(request: pytest.FixtureRequest) -> Iterator[PostgresServer]:
    """A real PostgreSQL server; ``.url`` is the SQLAlchemy asyncpg URL, ``.dsn`` the plain one."""
    with _session_server(request, PostgresServer()) as server:
        yield server


@pytest.fixture(scope="session")
def s3_server(request: pytest.FixtureRequest) -> Iterator[S3Server]:
    """A real S3 server (SeaweedFS); ``.client_kwargs()`` configures boto/aioboto clients."""
    with _session_server(request, S3Server()) as server:
        yield server


@pytest.fixture(scope="session")
def _pg_proxy_session(postgres_server: PostgresServer) -> Iterator[FaultProxy]:
    with FaultProxy(postgres_server.address, name="postgres") as proxy:
        yield proxy


@pytest.fixture(scope="session")
def _s3_proxy_session(s3_server: S3Server) -> Iterator[FaultProxy]:
    with FaultProxy(s3_server.address, name="s3") as proxy:
        yield proxy


@pytest.fixture
def pg_proxy(_pg_proxy_session: FaultProxy) -> Iterator[FaultProxy]:
    """The fault proxy in front of ``postgres_server``: ``postgres_server.url_for(address=...)``."""
    _pg_proxy_session.heal()
    yield _pg_proxy_session
    _pg_proxy_session.heal()


@pytest.fixture
def s3_proxy(_s3_proxy_session: FaultProxy) -> Iterator[FaultProxy]:
    """The fault proxy in front of ``s3_server``: ``s3_server.client_kwargs(s3_proxy.url())``."""
    _s3_proxy_session.heal()
    yield _s3_proxy_session
    _s3_proxy_session.heal()
