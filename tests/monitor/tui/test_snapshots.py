"""Screenshots (SVG, ``app.export_screenshot()``) of the fixed history under a frozen clock.

After an intended change of the look, review the new SVGs and update them with
``uv run pytest tests/monitor/tui/test_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import pytest

from monitor.tui.screens import ConfirmModal, DetailScreen
from monitor.tui.widgets.components import ComponentsTable
from tests.monitor.tui.conftest import AppFactory, settle

SNAPSHOTS = Path(__file__).parent / "snapshots"


class Snapshot(Protocol):
    """What the tests use of pytest-snapshot's fixture (the package ships no type hints)."""

    snapshot_dir: Path

    def assert_match(self, value: str, snapshot_name: str) -> None: ...


@pytest.fixture
def snap(snapshot: Snapshot) -> Snapshot:
    snapshot.snapshot_dir = SNAPSHOTS
    return snapshot


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
async def test_main_screen(make_app: AppFactory, snap: Snapshot, size: tuple[int, int]) -> None:
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        snap.assert_match(app.export_screenshot(), f"main_{size[0]}x{size[1]}.svg")


async def test_detail_screen(make_app: AppFactory, snap: Snapshot) -> None:
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("down", "enter")
        await settle(pilot)
        assert isinstance(app.screen, DetailScreen)
        snap.assert_match(app.export_screenshot(), "detail_160x48.svg")


async def test_confirm_modal(make_app: AppFactory, snap: Snapshot) -> None:
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("down", "r")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmModal)
        snap.assert_match(app.export_screenshot(), "confirm_reset_160x48.svg")


async def test_read_only_mode(make_app: AppFactory, snap: Snapshot) -> None:
    app = make_app(environ={})  # no admin token for any target
    async with app.run_test(size=(120, 32)) as pilot:
        await settle(pilot)
        await pilot.press("down", "r")
        await settle(pilot)
        assert app.screen.query_one(ComponentsTable).selected() is not None
        snap.assert_match(app.export_screenshot(), "read_only_120x32.svg")
