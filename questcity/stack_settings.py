"""What ``questcity up`` (:mod:`questcity.up`) configures the stack's processes with: the
backend's environment, the tokens the monitor and the on-call TUI present, and the
``monitor.toml`` it writes for the monitor, the status page and the TUI.

Plain values in, plain values out: the stack starts the processes; this module only says what
they are told.
"""

from __future__ import annotations

from pathlib import Path

from questcity.embedded.s3 import S3Server

TOKEN_TTL = 30 * 24 * 3600
"""Seconds the minted tokens last: a month, longer than any local stack runs."""


def backend_env(
    database_url: str, s3_url: str, s3: S3Server, *, keys_dir: Path, health_interval: float
) -> dict[str, str]:
    """The backend's settings (``QUESTCITY_*``, ARCHITECTURE §4) for the stack's database and S3
    server, reached through their fault proxies at ``database_url`` and ``s3_url``."""
    return {
        "QUESTCITY_DATABASE_URL": database_url,
        "QUESTCITY_S3_ENDPOINT_URL": s3_url,
        "QUESTCITY_S3_ACCESS_KEY": s3.access_key,
        "QUESTCITY_S3_SECRET_KEY": s3.secret_key,
        "QUESTCITY_S3_REGION": s3.region,
        "QUESTCITY_KEYS_DIR": str(keys_dir),
        "QUESTCITY_HEALTH_INTERVAL": str(health_interval),
        "QUESTCITY_DB_TIMEOUT": "2",
        "QUESTCITY_S3_TIMEOUT": "2",
    }


def mint_tokens(env: dict[str, str]) -> dict[str, str]:
    """Tokens signed with the key of the backend ``env`` configures: an operator's for the
    monitor, an admin's for the on-call TUI (breaker resets); as the variables ``monitor.toml``
    names them by."""
    from backend.auth import mint_token_command
    from backend.settings import Settings

    settings = Settings.from_mapping(env)
    return {
        "QUESTCITY_MONITOR_TOKEN": mint_token_command(
            settings, "operator", TOKEN_TTL, "questcity-up-monitor"
        ),
        "QUESTCITY_ADMIN_TOKEN": mint_token_command(
            settings, "admin", TOKEN_TTL, "questcity-up-on-call"
        ),
    }


def write_monitor_config(path: Path, *, backend_port: int, interval: float) -> Path:
    """``monitor.toml`` for watching the stack's backend on ``backend_port`` every
    ``interval`` seconds, written at ``path``."""
    path.write_text(
        f"""# Written by `questcity up`; edit a copy for your own monitor.
[storage]
url = "sqlite:///./var/monitor.db"

[incidents]
open_after = 2
resolve_after = 2

[[targets]]
name = "questcity-api"
url = "http://127.0.0.1:{backend_port}"
interval = {interval}
timeout = {min(interval * 0.75, 1.5)}
token_env = "QUESTCITY_MONITOR_TOKEN"
admin_token_env = "QUESTCITY_ADMIN_TOKEN"
display_name = "QuestCity API"
group = "QuestCity"
services = {{ database = "Quests and accounts", s3 = "Photos and avatars" }}
""",
        encoding="utf-8",
    )
    return path
