"""``questcity statuspage``: its arguments and the one key it reads from ``monitor.toml``."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from statuspage.cli import DEFAULT_STORAGE_URL, ConfigError, add_commands, storage_url


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="questcity")
    add_commands(root.add_subparsers(dest="command"))
    return root


def test_defaults() -> None:
    args = parser().parse_args(["statuspage"])
    assert (args.config, args.host, args.port, args.public_url) == (
        Path("monitor.toml"),
        "127.0.0.1",
        8082,
        None,
    )
    assert args.handler.__name__ == "run_statuspage"


def test_options() -> None:
    args = parser().parse_args(
        ["statuspage", "--config", "x.toml", "--host", "0.0.0.0", "--port", "9000"]
    )
    assert (args.config, args.host, args.port) == (Path("x.toml"), "0.0.0.0", 9000)


def test_reads_only_the_storage_url(tmp_path: Path) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text(
        '[storage]\nurl = "sqlite:///./var/other.db"\nretention_raw_days = 3\n\n'
        '[[targets]]\nname = "questcity-api"\nurl = "http://127.0.0.1:8000"\n'
        'token_env = "QUESTCITY_MONITOR_TOKEN"\n'
    )
    assert storage_url(config) == "sqlite:///./var/other.db"
    config.write_text('[[targets]]\nname = "a"\nurl = "http://x"\n')
    assert storage_url(config) == DEFAULT_STORAGE_URL


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "not found"),
        ("[storage\nurl=", "not valid TOML"),
        ("[storage]\nurl = 5\n", "storage.url"),
        ('storage = "x"\n', "must be a table"),
    ],
)
def test_bad_configs(tmp_path: Path, content: str | None, message: str) -> None:
    config = tmp_path / "monitor.toml"
    if content is not None:
        config.write_text(content)
    with pytest.raises(ConfigError, match=message):
        storage_url(config)


def test_refuses_before_serving(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text('[storage]\nurl = "mysql://x/y"\n')
    args = parser().parse_args(["statuspage", "--config", str(config)])
    assert args.handler(args) == 2
    assert "use sqlite:///PATH" in capsys.readouterr().err
    missing = parser().parse_args(["statuspage", "--config", str(tmp_path / "nope.toml")])
    assert missing.handler(missing) == 2
