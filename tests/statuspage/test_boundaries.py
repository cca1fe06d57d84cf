"""The status page reads the monitor's store and loads nothing else of the monitor: not the
store's write side, not the policy library, the daemon, the TUI, Textual or APScheduler.

Proved by what a fresh interpreter has loaded (``sys.modules``) after it has built the app and
served every kind of output from a real store, not by reading import lines: an import done
late, inside a function, or by a package's ``__init__`` counts the same.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path

from monitor.store import CheckRecord, Status
from tests.statuspage.conftest import Store
from tests.statuspage.scenarios import NOW

FORBIDDEN_PACKAGES = (
    "monitor.store.writer",  # the write side of the store
    "monitor.store.writing",
    "monitor.store.batch",
    "monitor.store.migrate",  # schema changes are the daemon's
    "monitor.store.migrations",
    "alembic",
    "shared",  # the policy library (shared.resilience)
    "monitor.daemon",
    "monitor.tui",
    "monitor.config",
    "monitor.alerts",
    "monitor.incidents",
    "monitor.notifiers",
    "monitor.probe",
    "backend",
    "textual",
    "textual_serve",
    "apscheduler",
)

SERVE_ONCE = textwrap.dedent(
    """
    import asyncio, json, sys
    from pathlib import Path

    import httpx

    from statuspage.app import create_app
    from statuspage.cli import storage_url

    PATHS = ("/", "/api/v2/summary.json", "/history.atom", "/badge/api.svg", "/incidents/1")

    async def serve(url: str, now: float) -> list[tuple[int, str]]:
        app = create_app(url, clock=lambda: now)
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://page") as client,
        ):
            return [((r := await client.get(p)).status_code, r.text) for p in PATHS]

    answers = asyncio.run(serve(storage_url(Path(sys.argv[1])), float(sys.argv[2])))
    print(json.dumps({"answers": answers, "modules": sorted(sys.modules)}))
    """
)


def _forbidden(module: str) -> bool:
    return any(module == name or module.startswith(f"{name}.") for name in FORBIDDEN_PACKAGES)


async def test_serving_the_page_loads_only_the_read_side(store: Store, tmp_path: Path) -> None:
    await store.writer.record_check(CheckRecord("api", NOW - 5, Status.HEALTHY, 12.0, 200, None))
    config = tmp_path / "monitor.toml"
    config.write_text(f'[storage]\nurl = "{store.url}"\n')

    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", SERVE_ONCE, str(config), str(NOW)],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    codes = [code for code, _ in seen["answers"]]
    assert codes == [200, 200, 200, 200, 404]  # every output made, from the store
    assert "api" in seen["answers"][0][1]
    modules: list[str] = seen["modules"]
    assert "monitor.store.reader" in modules  # it did read the store
    assert [m for m in modules if _forbidden(m)] == []
