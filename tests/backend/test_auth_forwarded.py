"""Which client a login is counted against: the start-up warning when no proxy is trusted.

Behind a reverse proxy on another host, uvicorn believes ``X-Forwarded-For`` only from the
addresses in ``FORWARDED_ALLOW_IPS`` (loopback by default); unset, every client has the proxy's
address and the per-client login limits become one limit for the whole site.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.server import build_server, warn_if_proxy_unnamed
from backend.settings import Settings

WARNING = "FORWARDED_ALLOW_IPS unset"


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "backend.internal"])
def test_listening_beyond_loopback_without_trusted_proxies_warns_once(
    host: str, caplog: pytest.LogCaptureFixture
) -> None:
    warn_if_proxy_unnamed(host, {})
    [message] = warnings(caplog)
    assert WARNING in message and "share one address and one login throttle" in message
    assert "set FORWARDED_ALLOW_IPS" in message


@pytest.mark.parametrize(
    ("host", "environ"),
    [
        ("127.0.0.1", {}),
        ("::1", {}),
        ("localhost", {}),
        ("0.0.0.0", {"FORWARDED_ALLOW_IPS": "10.0.0.0/8"}),
    ],
)
def test_loopback_or_a_named_proxy_is_quiet(
    host: str, environ: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    warn_if_proxy_unnamed(host, environ)
    assert warnings(caplog) == []


def test_the_backend_warns_at_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/questcity.db", keys_dir=tmp_path / "keys"
    )
    build_server(settings, "0.0.0.0", 8000)
    assert [m for m in warnings(caplog) if WARNING in m]
