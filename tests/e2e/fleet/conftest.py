"""The fleet both fleet tests drive: one `questcity up --headless --replicas 3 --monitors 2` for
this package, started on first use and stopped after its last test, before any other test runs
(it must say ``stopped.`` and leave no port answering, as
:func:`tests.support.fleet.running_fleet` checks).

Starting it (PostgreSQL's initdb, SeaweedFS, three backends, two monitors, the status page) and
stopping it cost each test ~15-40 s; the two tests started the same stack one after the other.
They share it in this order: the healthy fleet's watch first (it needs every replica's counters
fresh but api-2's, and leaves S3 healed and every breaker reset), then the drill (which kills a
monitor and fails S3 again). Run alone, either starts the stack itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from questcity.embedded.postgres import find_bin_dir
from tests.support.fleet import FleetStack, running_fleet

REPLICAS = 3
MONITORS = 2
_ORDER = ("test_fleet_healthy.py", "test_fleet_drill.py")


@pytest_asyncio.fixture(scope="package", loop_scope="package")
async def fleet(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FleetStack]:
    # Two monitors need PostgreSQL's server binaries. CI installs them (scripts/ensure-system-deps),
    # so a machine without them fails here naming the package, as the postgres_server fixture
    # does: this is the "done when", never skipped quietly.
    find_bin_dir()
    cwd = tmp_path_factory.mktemp("fleet")
    async with running_fleet(cwd, replicas=REPLICAS, monitors=MONITORS) as stack:
        yield stack


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The healthy fleet's watch before the drill (see the module's docstring)."""

    def rank(item: pytest.Item) -> int:
        here = item.path.parent == Path(__file__).parent
        return _ORDER.index(item.path.name) if here and item.path.name in _ORDER else -1

    fleet_items = sorted((i for i in items if rank(i) >= 0), key=rank)
    slots = iter(fleet_items)
    items[:] = [next(slots) if rank(item) >= 0 else item for item in items]
