"""The shape of the fleet ``questcity up --replicas N --monitors M`` runs: which backend replicas
(their names, instance ids and ports) and which monitors (their ids), and whether this machine
can run that many monitors at all.

Plain values: :mod:`questcity.local_stack` starts what this module describes.

- Replica ``i`` (from 1) is instance ``api-i`` on port ``first_port + i - 1``: consecutive ports,
  so a user who asked for ``--backend-port 8000 --replicas 3`` can guess where each one is.
- Monitor ``i`` is ``monitor-i`` (its ``QUESTCITY_MONITOR_ID``, the lease holder the TUI shows).
- One backend and one monitor keep the process names ``up`` always used (``backend``,
  ``monitor``: their log files and the names ``questcity down`` prints); with several, each is
  named by its number (``backend-2``, ``monitor-2``), so the stack's record tells them apart.
- Several monitors share one store and argue over one lease in it, which only PostgreSQL offers
  (a second monitor on a SQLite file is refused by the monitor itself): ``--monitors 2`` without
  PostgreSQL is refused before anything starts.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_REPLICAS = 5
"""The most backend replicas ``up`` runs on one machine: enough to see a fleet disagree."""
MAX_MONITORS = 3
MONITOR_DATABASE = "questcity_monitor"
"""The monitor store's database, beside the backend's in ``up``'s throwaway cluster."""


class FleetError(ValueError):
    """A fleet this machine cannot run, in one line saying what to do instead."""


@dataclass(frozen=True, slots=True)
class BackendReplica:
    name: str
    """The process's name in the stack's record and its log file (``backend``, ``backend-2``)."""
    instance: str
    """Its ``QUESTCITY_INSTANCE_ID`` (``api-2``)."""
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass(frozen=True, slots=True)
class MonitorMember:
    name: str
    """The process's name in the stack's record and its log file (``monitor``, ``monitor-2``)."""
    monitor_id: str
    """Its ``QUESTCITY_MONITOR_ID`` (``monitor-2``): the lease holder's name."""


@dataclass(frozen=True, slots=True)
class Fleet:
    replicas: int = 1
    monitors: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.replicas <= MAX_REPLICAS:
            raise FleetError(f"--replicas must be 1 to {MAX_REPLICAS}, got {self.replicas}")
        if not 1 <= self.monitors <= MAX_MONITORS:
            raise FleetError(f"--monitors must be 1 to {MAX_MONITORS}, got {self.monitors}")

    @property
    def shared_store(self) -> bool:
        """Whether the monitors need a PostgreSQL store to share (and lead) between them."""
        return self.monitors > 1

    def backends(self, first_port: int) -> list[BackendReplica]:
        return [
            BackendReplica(
                name="backend" if self.replicas == 1 else f"backend-{n}",
                instance=f"api-{n}",
                port=first_port + n - 1,
            )
            for n in range(1, self.replicas + 1)
        ]

    def monitor_members(self) -> list[MonitorMember]:
        return [
            MonitorMember(
                name="monitor" if self.monitors == 1 else f"monitor-{n}", monitor_id=f"monitor-{n}"
            )
            for n in range(1, self.monitors + 1)
        ]

    def refuse_without_postgres(self, *, sqlite_asked: bool, postgres_installed: bool) -> None:
        """Raise :class:`FleetError` when the monitors need PostgreSQL and will not have it."""
        if not self.shared_store:
            return
        wanted = f"--monitors {self.monitors} needs PostgreSQL for the monitor store"
        if sqlite_asked:
            raise FleetError(f"{wanted}; drop --sqlite, or run one monitor")
        if not postgres_installed:
            raise FleetError(
                f"{wanted}; install postgresql (Debian's `postgresql` package: its server "
                f"binaries), or run one monitor"
            )
