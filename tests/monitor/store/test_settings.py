"""``[storage]``, read in one place for the monitor and the status page."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import parse_config
from monitor.store.settings import (
    DEFAULT_STORAGE_URL,
    Retention,
    StorageSettings,
    StorageSettingsError,
    storage_settings,
)
from statuspage.cli import storage_url

TARGET = '[[targets]]\nname = "api"\nurl = "http://127.0.0.1:8000"\n'


def test_defaults() -> None:
    assert storage_settings({}) == StorageSettings(DEFAULT_STORAGE_URL, Retention(7, 35, 400))


def test_values() -> None:
    settings = storage_settings(
        {
            "url": " postgresql://monitor@db/monitor ",
            "retention_raw_days": 3,
            "retention_hourly_days": 10.5,
            "retention_daily_days": 800,
        }
    )
    assert settings == StorageSettings("postgresql://monitor@db/monitor", Retention(3, 10.5, 800))


@pytest.mark.parametrize(
    ("table", "key", "problem"),
    [
        ("x", "storage", "must be a table"),
        ({"url": 5}, "storage.url", "must be a non-empty string"),
        ({"url": "  "}, "storage.url", "must be a non-empty string"),
        ({"url": "mysql://db/monitor"}, "storage.url", "use sqlite:///PATH or postgresql://"),
        ({"retention_raw_days": 0}, "storage.retention_raw_days", "greater than 0"),
        ({"retention_raw_days": True}, "storage.retention_raw_days", "greater than 0"),
        ({"retention_hourly_days": 1e300}, "storage.retention_hourly_days", "at most 3650"),
        ({"retention_daily_days": "ten"}, "storage.retention_daily_days", "at most 36500"),
    ],
)
def test_refusals_name_the_key(table: object, key: str, problem: str) -> None:
    with pytest.raises(StorageSettingsError) as raised:
        storage_settings(table)
    assert raised.value.key == key
    assert problem in str(raised.value)


@pytest.mark.parametrize(
    ("storage", "url", "retention"),
    [
        ("", "sqlite:///./var/monitor.db", Retention(7, 35, 400)),
        (
            '[storage]\nurl = "sqlite:///./var/other.db"\nretention_raw_days = 2\n',
            "sqlite:///./var/other.db",
            Retention(2, 35, 400),
        ),
    ],
    ids=["no-storage", "storage"],
)
def test_the_monitor_and_the_status_page_read_the_same_storage(
    tmp_path: Path, storage: str, url: str, retention: Retention
) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text(storage + TARGET)

    monitor = parse_config(config.read_text(), config)

    assert (monitor.storage_url, monitor.retention) == (url, retention)
    assert storage_url(config) == url
