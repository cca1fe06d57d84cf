"""What ``questcity up`` checks before it starts anything: no stack of its own still running in
this directory, every port it will serve free and none wanted twice, PostgreSQL on this machine
when several monitors must share a store. Each refusal is a :class:`StackError`: one line,
saying what to do.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Sequence

from questcity.embedded.postgres import PostgresNotInstalledError, find_bin_dir
from questcity.fleet import Fleet, FleetError
from questcity.processes import remove_paths
from questcity.record import RECORD_PATH, StackRecord


class StackError(Exception):
    """A one-line reason the stack cannot start, and what to do about it."""


def refuse_a_running_stack(prefix: str) -> None:
    """Name a stack still running here (its record says so) and how to stop it; delete a stale
    record (its processes gone, their pids perhaps reused)."""
    record = StackRecord.load(RECORD_PATH)
    if record is None:
        with contextlib.suppress(FileNotFoundError):
            RECORD_PATH.unlink()  # unreadable: a stack that died writing it
        return
    if record.up.alive:
        raise StackError(
            f"a stack is already running in this directory (questcity up, pid "
            f"{record.up.pid}, started {record.started()}); stop it with Ctrl-C in its "
            f"terminal, or `{prefix} down`"
        )
    if alive := record.alive():
        raise StackError(
            f"a stack from an earlier run (started {record.started()}) is still running "
            f"here: {', '.join(p.describe() for p in alive)}; stop it with `{prefix} down`"
        )
    remove_paths(path for p in record.processes for path in p.cleanup)
    remove_paths(record.cleanup)
    record.delete()


def refuse_monitors_without_postgres(fleet: Fleet, *, use_postgres: bool | None) -> None:
    """Several monitors share one store and its lease: PostgreSQL's, or none at all
    (``use_postgres`` False: the user asked for SQLite)."""
    if not fleet.shared_store:
        return
    try:
        find_bin_dir()
        installed = True
    except PostgresNotInstalledError:
        installed = False
    try:
        fleet.refuse_without_postgres(
            sqlite_asked=use_postgres is False, postgres_installed=installed
        )
    except FleetError as error:
        raise StackError(str(error)) from None


_OPTIONS = {"backend": "backend", "status": "statuspage", "TUI": "tui", "TLS": "tls"}
"""The first word of a use in ``wanted`` → the option that moves its port (``--tui-port``)."""


def refuse_overlapping_ports(wanted: Sequence[tuple[str, int]]) -> None:
    """Two of the stack's own uses on one port (``--backend-port 8080 --replicas 3`` gives
    api-3 8082, the status page's): each passes the free check alone, and the later one would
    fail only after everything before it had started. ``wanted`` as for
    :func:`refuse_ports_in_use`, in the order the stack starts them."""
    first: dict[int, str] = {}
    for what, port in wanted:
        if port not in first:
            first[port] = what
            continue
        clear = max(p for _, p in wanted) + 1  # past every port the stack wants
        raise StackError(
            f"port {port} would serve both the {first[port]} and the {what}; pass "
            f"--{_option(what)}-port {clear}, or another --{_option(first[port])}-port"
        )


def refuse_ports_in_use(wanted: Sequence[tuple[str, int]]) -> None:
    """``wanted``: (what, port) pairs, ``what`` naming the option that moves it first
    (``backend api-2``: ``--backend-port``)."""
    for what, port in wanted:
        if not port_free(port):
            raise StackError(
                f"port {port} (for the {what}) is in use; stop what uses it, or pick another "
                f"with --{_option(what)}-port"
            )


def _option(what: str) -> str:
    return _OPTIONS[what.split()[0]]


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
