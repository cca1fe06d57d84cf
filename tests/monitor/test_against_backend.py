"""The monitor against the real backend (in-process, on SQLite and an in-memory object store):
the detailed health API parses into per-service samples, and a breaker the backend opens shows."""

from __future__ import annotations

from pathlib import Path

import httpx

from backend.app import create_app
from backend.auth import Role
from backend.settings import Settings
from backend.state import AppState
from backend.storage import InMemoryObjectStore
from monitor.config import parse_config
from monitor.daemon import MonitorDaemon
from monitor.store import Status
from tests.support.polling import eventually


async def test_the_daemon_reads_a_real_backend_and_sees_its_breaker_open(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/q.db",
        keys_dir=tmp_path / "keys",
        health_interval=0.2,
    )
    app = create_app(settings, object_store=InMemoryObjectStore())
    config = parse_config(
        f"""
[storage]
url = "sqlite:///{tmp_path}/monitor.db"

[[targets]]
name = "questcity-api"
url = "http://backend.test"
token_env = "QUESTCITY_MONITOR_TOKEN"
""",
        tmp_path / "monitor.toml",
    )
    async with app.router.lifespan_context(app):
        state: AppState = app.state.questcity

        async def ready() -> bool:
            return state.lifecycle.ready

        await eventually(ready, "the backend's start-up (migrations, first health round)")
        token = state.token_service().mint("monitor", Role.OPERATOR, 600)
        daemon = MonitorDaemon(
            config,
            transport=httpx.ASGITransport(app=app),
            environ={"QUESTCITY_MONITOR_TOKEN": token},
        )
        await daemon.prepare()
        try:
            target = config.targets[0]
            healthy = await daemon.check_target(target)
            assert healthy.status is Status.HEALTHY
            services = {s.service: s for s in healthy.services}
            assert sorted(services) == ["database", "s3"]
            assert services["database"].breaker_state == "closed"
            pool = services["database"].details["details"]
            assert isinstance(pool, dict) and {"size", "checked_out", "waiting"} <= set(pool)

            breaker = state.registry.find_circuit_breaker("database")
            assert breaker is not None
            breaker.force_open()
            outage = await daemon.check_target(target)
            assert (outage.status, outage.http_status) == (Status.UNHEALTHY, 200)
            database = {s.service: s for s in outage.services}["database"]
            assert (database.status, database.breaker_state) == (Status.UNHEALTHY, "open")
            breaker.reset()
            # A background health check may have run while the breaker was open (and failed on
            # it); the next one, after the reset, passes.
            await state.checker.check_now("database")
            assert (await daemon.check_target(target)).status is Status.HEALTHY
        finally:
            await daemon.stop()
