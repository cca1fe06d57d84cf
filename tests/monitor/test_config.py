"""monitor.toml: the fixed keys, defaults, and errors that name the file, the line and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import ConfigError, load_config, parse_config

GOOD = """\
[storage]
url = "sqlite:///./var/monitor.db"

[[targets]]
name = "questcity-api"                      # shown in the TUI and on the status page
url = "http://127.0.0.1:8000"
interval = 10
timeout = 5
token_env = "QUESTCITY_MONITOR_TOKEN"
admin_token_env = "QUESTCITY_ADMIN_TOKEN"
display_name = "QuestCity API"
group = "Production"
services = { database = "Quests and accounts", s3 = "Photos" }

[alerts]
breaker_open_for = 120

[[notifiers]]
type = "webhook"
url = "http://127.0.0.1:9999/hook"
"""


def test_the_design_example_parses_with_its_values() -> None:
    config = parse_config(GOOD, Path("monitor.toml"))
    target = config.targets[0]
    assert config.storage_url == "sqlite:///./var/monitor.db"
    assert (target.name, target.url, target.interval, target.timeout) == (
        "questcity-api",
        "http://127.0.0.1:8000",
        10.0,
        5.0,
    )
    assert target.title == "QuestCity API"
    assert target.service_title("s3") == "Photos"
    assert target.service_title("redis_cache") == "Redis cache"
    assert target.token({"QUESTCITY_MONITOR_TOKEN": "tok"}) == "tok"
    assert target.admin_token({}) is None
    assert config.alerts.breaker_open_for == 120.0
    assert config.alerts.check_failure_rate == 0.5
    assert config.retention.raw_days == 7.0
    assert [n.kind for n in config.notifiers] == ["webhook"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("interval = 10", 'interval = "ten"'),
            "monitor.toml:7: targets[0].interval: must be a number greater than 0, got 'ten'",
        ),
        (
            ("timeout = 5", "timeout = 50"),
            "monitor.toml:8: targets[0].timeout: must not exceed the interval (10 s), got 50.0",
        ),
        (
            ('url = "http://127.0.0.1:8000"', 'url = "127.0.0.1:8000"'),
            "monitor.toml:6: targets[0].url: must be an http:// or https:// base URL",
        ),
        (
            ('url = "sqlite:///./var/monitor.db"', 'url = "mysql://x"'),
            "monitor.toml:2: storage.url: use sqlite:///PATH or postgresql://",
        ),
        (
            ("breaker_open_for = 120", "breaker_open_for = -1"),
            "monitor.toml:16: alerts.breaker_open_for: must be a number of seconds, 0 or more",
        ),
        (
            ('type = "webhook"', 'type = "pager"'),
            'monitor.toml:19: notifiers[0].type: must be "log" or "webhook"',
        ),
        (("group = ", "colour = "), "monitor.toml:12: targets[0].colour: unknown key"),
    ],
)
def test_a_bad_value_is_named_with_its_line_and_key(change: tuple[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(GOOD.replace(*change), Path("monitor.toml"))
    assert str(raised.value).startswith(message)


def test_syntax_errors_and_missing_targets_are_explained() -> None:
    with pytest.raises(ConfigError, match=r"monitor.toml: not valid TOML: .*line 1"):
        parse_config("[storage\n", Path("monitor.toml"))
    with pytest.raises(ConfigError, match="add at least one \\[\\[targets\\]\\]"):
        parse_config("[storage]\n", Path("monitor.toml"))
    duplicate = GOOD + '\n[[targets]]\nname = "questcity-api"\nurl = "http://x"\n'
    with pytest.raises(ConfigError, match=r"targets\[1\].name: names must be unique"):
        parse_config(duplicate, Path("monitor.toml"))


def test_a_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no such file; write one .* or pass --config PATH"):
        load_config(tmp_path / "monitor.toml")
