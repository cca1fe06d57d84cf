"""The daemon runs the subscribers' sender when subscriptions are on (and only then): its
``public-sender`` job's round, on a real SQLite store and through a real SMTP server."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from monitor.config import MonitorConfig
from monitor.daemon import MonitorDaemon
from monitor.public.settings import PublicSettings, SmtpSettings, SubscriptionSettings
from monitor.store import SubscriberKind
from monitor.store.inbox import open_inbox
from tests.monitor.public.servers import Mailbox, text_of

SECRET_ENV = "QUESTCITY_SUBSCRIPTION_SECRET"


def config(path: Path, port: int, *, enabled: bool = True) -> MonitorConfig:
    return MonitorConfig(
        path=path.parent / "monitor.toml",
        storage_url=f"sqlite:///{path}",
        public=PublicSettings(
            smtp=SmtpSettings(
                host="127.0.0.1", sender="status@questcity.test", port=port, security="none"
            ),
            subscriptions=SubscriptionSettings(enabled=enabled),
        ),
    )


@pytest.fixture
def store_path(tmp_path: Path, _migrated_sqlite: Path) -> Path:
    path = tmp_path / "monitor.db"
    shutil.copyfile(_migrated_sqlite, path)  # the session's migrated store
    return path


async def test_the_daemon_sends_what_subscribers_are_owed(store_path: Path) -> None:
    path = store_path
    environ = {SECRET_ENV: "x" * 40}
    off = MonitorDaemon(config(path, 25, enabled=False), environ=environ)
    assert off.public_sender is None
    await off.engine.dispose()
    async with Mailbox() as box:
        daemon = MonitorDaemon(config(path, box.port), environ=environ)
        try:
            await daemon.prepare()
            async with open_inbox(f"sqlite:///{path}") as inbox:
                await inbox.subscribe(
                    SubscriberKind.EMAIL,
                    "player@example.org",
                    (),
                    "en",
                    time.time(),
                    resend_after=3600,
                    max_pending=10,
                )
            await daemon.send_public()
            left = await daemon.reader.due_deliveries(now=time.time() + 10**6)
        finally:
            await daemon.stop()
    [confirmation] = box.messages
    assert "/subscriptions/confirm?token=confirm." in text_of(confirmation)
    assert left == []  # sent, not pending
