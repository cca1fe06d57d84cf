"""What ``questcity up`` tells the monitor and the status page for talking to the public (#15):
``[page]`` and ``[subscriptions]`` in its monitor.toml (webhooks only: no SMTP server locally),
and the key that signs subscribers' links, made once in the stack's var dir (0600) and reused."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from monitor.config import load_config
from questcity.stack_settings import (
    SUBSCRIPTION_SECRET_ENV,
    SUBSCRIPTION_SECRET_FILE,
    subscription_secret,
    write_monitor_config,
)


def test_the_config_names_the_page_and_takes_webhook_subscriptions_only(tmp_path: Path) -> None:
    path = write_monitor_config(
        tmp_path / "monitor.toml",
        backend_port=8000,
        interval=2.0,
        page_url="http://127.0.0.1:18082",
    )
    public = load_config(path).public
    assert (public.page.url, public.page.timezone) == ("http://127.0.0.1:18082", "UTC")
    chosen = public.subscriptions
    assert (chosen.enabled, chosen.email, chosen.webhooks) == (True, False, True)
    assert chosen.secret_env == SUBSCRIPTION_SECRET_ENV
    assert public.smtp is None
    key = "k" * 40
    assert chosen.secret({SUBSCRIPTION_SECRET_ENV: key}) == key.encode()


def test_the_key_is_made_once_private_and_reused(tmp_path: Path) -> None:
    first = subscription_secret(tmp_path)
    path = tmp_path / SUBSCRIPTION_SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 43  # 32+ random bytes, URL-safe base64
    assert subscription_secret(tmp_path) == first  # links from the last run still verify
    assert subscription_secret(tmp_path / ".." / tmp_path.name) == first


def test_two_stacks_get_different_keys(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert subscription_secret(tmp_path / "a") != subscription_secret(tmp_path / "b")


@pytest.mark.parametrize("case", ["readable by others", "too short", "a symlink"])
def test_a_key_file_not_the_stacks_own_is_replaced(tmp_path: Path, case: str) -> None:
    path = tmp_path / SUBSCRIPTION_SECRET_FILE
    planted = "p" * 64
    if case == "a symlink":
        elsewhere = tmp_path / "elsewhere"
        elsewhere.write_text(planted)
        elsewhere.chmod(0o600)
        path.symlink_to(elsewhere)
    else:
        path.write_text(planted if case == "readable by others" else "short")
        path.chmod(0o644 if case == "readable by others" else 0o600)
    made = subscription_secret(tmp_path)
    assert made not in (planted, "short")
    assert not path.is_symlink()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    if case == "a symlink":
        assert (tmp_path / "elsewhere").read_text() == planted  # never written through
