"""The README's drill, end to end: `questcity up --headless` in a clean directory, then S3 and the
database failed and healed with `questcity chaos`, watched through the API, the monitor's status
page and the breaker-reset API, as an on-call engineer would."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from backend.storage import PLACEHOLDER_PNG
from monitor.config import load_config
from monitor.store import HistoryReader, open_engine
from monitor.store.writer import HistoryWriter
from monitor.tui.app import MonitorApp
from monitor.tui.screens.confirm import ConfirmModal
from monitor.tui.widgets.components import ComponentsTable
from questcity.embedded.ports import free_port
from tests.monitor.tui.conftest import settle
from tests.support.polling import eventually as poll

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@dataclass
class Stack:
    cwd: Path
    api: str
    status: str
    process: asyncio.subprocess.Process

    def chaos(self, *words: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "questcity", "chaos", *words],
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def admin_token(self) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "questcity", "token", "--role", "admin"],
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
            env={**os.environ, "QUESTCITY_KEYS_DIR": str(self.cwd / "var" / "keys")},
        )
        return done.stdout.strip()


async def eventually(check: Callable[[], Awaitable[bool]], what: str, within: float = 40.0) -> None:
    await poll(check, what, within=within, every=0.25)


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    api_port, status_port = free_port(), free_port()
    log = (tmp_path / "up.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "questcity",
        "up",
        "--headless",
        "--backend-port",
        str(api_port),
        "--statuspage-port",
        str(status_port),
        "--tls-port",
        str(free_port()),
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:

        async def ready() -> bool:
            assert process.returncode is None, (tmp_path / "up.log").read_text()
            return b"Running headless" in (tmp_path / "up.log").read_bytes()

        await eventually(ready, "questcity up ready", within=120)
        yield Stack(
            tmp_path, f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{status_port}", process
        )
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), timeout=60)
        finally:
            log.close()
    output = (tmp_path / "up.log").read_text()
    assert "stopped." in output, output
    async with httpx.AsyncClient(timeout=2.0) as client:
        for port in (api_port, status_port):  # nothing is left listening
            with pytest.raises(httpx.ConnectError):
                await client.get(f"http://127.0.0.1:{port}/")


async def test_the_drill(stack: Stack) -> None:
    async with httpx.AsyncClient(timeout=10.0) as client:
        api, status = stack.api, stack.status

        async def indicator() -> str:
            answer: str = (await client.get(f"{status}/api/v2/status.json")).json()["status"][
                "indicator"
            ]
            return answer

        async def operational() -> bool:
            return await indicator() == "none"

        await eventually(operational, "the status page says all systems operational")

        credentials = {"username": "drill", "password": "drill password"}
        assert (await client.post(f"{api}/api/v1/auth/register", json=credentials)).is_success
        token = (await client.post(f"{api}/api/v1/auth/token", json=credentials)).json()[
            "access_token"
        ]
        player = {"Authorization": f"Bearer {token}"}
        quest = await client.post(
            f"{api}/api/v1/quests",
            headers=player,
            json={"title": "Kremlin walk", "city": "Kazan", "points": 5},
        )
        assert quest.status_code == 201
        quest_id = quest.json()["id"]
        cover_url = f"{api}/api/v1/quests/{quest_id}/cover"
        assert (await client.put(cover_url, content=PNG, headers=player)).status_code == 200
        assert (await client.get(cover_url)).content == PNG
        assert (await client.get(f"{api}/api/v1/quests/{quest_id}")).status_code == 200

        # S3 down: the monitor sees it within a check interval and the breaker's threshold.
        assert stack.chaos("s3", "down") == "s3: down (new connections refused)"

        async def photos_out() -> bool:
            components = (await client.get(f"{status}/api/v2/components.json")).json()
            states = {c["name"]: c["status"] for c in components["components"]}
            return states.get("Photos and avatars") in ("partial_outage", "major_outage")

        await eventually(photos_out, "the status page shows the photos component out")
        assert await indicator() != "none"
        image = await client.get(cover_url)
        assert (image.status_code, image.content) == (200, PLACEHOLDER_PNG)
        assert image.headers["X-QuestCity-Degraded"] == "s3"

        # The database down too: writes refused with Retry-After, reads from the last good copy.
        assert stack.chaos("database", "down") == "database: down (new connections refused)"

        async def writes_refused() -> bool:
            response = await client.post(
                f"{api}/api/v1/quests",
                headers=player,
                json={"title": "During the outage", "city": "Kazan", "points": 1},
            )
            return response.status_code == 503 and "Retry-After" in response.headers

        await eventually(writes_refused, "writes answer 503 with Retry-After")
        stale = await client.get(f"{api}/api/v1/quests/{quest_id}")
        assert stale.status_code == 200
        assert stale.headers["X-QuestCity-Degraded"] == "database"

        # Both back; the on-call engineer resets the breakers rather than wait 30 s for trials.
        assert stack.chaos("status") == (
            "database: down (new connections refused)\ns3: down (new connections refused)\n"
            "backend: no fault (connections pass)"
        )
        assert stack.chaos("database", "heal") == "database: no fault (connections pass)"
        assert stack.chaos("s3", "up") == "s3: no fault (connections pass)"  # the older word
        assert stack.chaos("status") == (
            "database: no fault (connections pass)\ns3: no fault (connections pass)\n"
            "backend: no fault (connections pass)"
        )
        admin = {"Authorization": f"Bearer {stack.admin_token()}"}
        for service in ("database", "s3"):
            reset = await client.post(
                f"{api}/api/v1/health/services/{service}/reset", headers=admin
            )
            assert reset.status_code == 200
            assert reset.json()["state"] == "closed"

        async def healthy() -> bool:
            body = (await client.get(f"{api}/api/v1/health/")).json()
            return bool(body["status"] == "healthy")

        await eventually(healthy, "the backend is healthy again without a restart")
        await eventually(operational, "the status page is operational again")
        assert (await client.get(cover_url)).content == PNG
        after = await client.post(
            f"{api}/api/v1/quests",
            headers=player,
            json={"title": "After the drill", "city": "Kazan", "points": 1},
        )
        assert after.status_code == 201


async def reset_from_the_tui(stack: Stack, admin_token: str, service: str) -> str:
    """Press `r` on the service in the on-call TUI, answer Yes, and return what the TUI said."""
    config = load_config(stack.cwd / "monitor.toml")  # where up writes it in a fresh directory
    engine = open_engine(f"sqlite:///{stack.cwd}/var/monitor.db")
    try:
        async with httpx.AsyncClient(timeout=10.0) as http:
            app = MonitorApp(
                config,
                reader=HistoryReader(engine),
                writer=HistoryWriter(engine),
                http=http,
                environ={"QUESTCITY_ADMIN_TOKEN": admin_token},
                actor="drill",
            )
            async with app.run_test(size=(160, 48)) as pilot:
                await settle(pilot)
                table = app.screen.query_one(ComponentsTable)
                table.move_cursor(row=table.keys.index(f"questcity-api::{service}"), animate=False)
                await pilot.press("r")
                await settle(pilot)
                assert isinstance(app.screen, ConfirmModal)
                await pilot.click("#yes")
                await settle(pilot)
                return app.last_result
    finally:
        await engine.dispose()
