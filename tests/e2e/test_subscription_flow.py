"""The subscription flow end to end: the status page (its ASGI app) over a real SQLite store,
the monitor's sender, a real SMTP server (aiosmtpd) and a real webhook receiver.

A player subscribes by e-mail; the sender's round delivers the confirmation; the player follows
the link (GET shows a button, the button POSTs); a person opens an incident; the next round
e-mails it with an unsubscribe link; one click on it (RFC 8058's POST) unsubscribes; the next
update sends that player nothing. A webhook subscribes too, confirms by fetching its
``confirm_url`` and receives both updates. Every round is awaited directly on a given clock.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from monitor import public_actions
from monitor.public.mail import Mailer
from monitor.public.sender import PublicSender
from monitor.public.settings import (
    PageSettings,
    PublicSettings,
    SmtpSettings,
    SubscriptionSettings,
)
from monitor.public.webhooks import WebhookPoster
from monitor.store import HistoryReader, create_schema, open_engine
from monitor.store.writer import HistoryWriter
from shared.resilience import SYSTEM_CLOCK
from tests.monitor.public.servers import Mailbox, Receiver, text_of
from tests.statuspage.conftest import PUBLIC_URL, serving
from tests.statuspage.scenarios import API, CATALOGUE, NOW
from tests.statuspage.test_subscribe import form_token
from tests.support.store_template import migrate_store

SECRET_ENV = "QUESTCITY_E2E_SUBSCRIPTION_SECRET"
SECRET = "end-to-end-secret-for-the-subscription-links-42"
FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def _migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("subscription-flow") / "monitor.db"
    migrate_store(f"sqlite:///{path}")
    return path


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def stack(
    _migrated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[str, HistoryReader, HistoryWriter]]:
    path = tmp_path / "monitor.db"
    shutil.copyfile(_migrated, path)
    url = f"sqlite:///{path}"
    engine = open_engine(url)
    await create_schema(engine)
    monkeypatch.setenv(SECRET_ENV, SECRET)
    writer = HistoryWriter(engine)
    await writer.sync_components(CATALOGUE)
    try:
        yield url, HistoryReader(engine), writer
    finally:
        await engine.dispose()


def local(link: str) -> str:
    """A link in a message, as a path the ASGI client asks for."""
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}" == PUBLIC_URL
    return f"{parts.path}?{parts.query}"


def link_in(text: str, path: str) -> str:
    found = re.search(rf"{re.escape(PUBLIC_URL)}{re.escape(path)}\?token=[\w.\-]+", text)
    assert found is not None, text
    return found.group(0)


async def test_subscribe_confirm_notify_unsubscribe(
    stack: tuple[str, HistoryReader, HistoryWriter],
) -> None:
    url, reader, writer = stack
    clock = Clock()
    async with Mailbox() as box, Receiver() as receiver:
        settings = PublicSettings(
            page=PageSettings(url=PUBLIC_URL, name="QuestCity", timezone="Europe/Moscow"),
            smtp=SmtpSettings(
                host="127.0.0.1", sender="status@questcity.test", port=box.port, security="none"
            ),
            subscriptions=SubscriptionSettings(
                enabled=True, secret_env=SECRET_ENV, allow_private_webhooks=True
            ),
        )
        assert settings.smtp is not None
        sender = PublicSender(
            settings,
            reader,
            writer,
            clock=SYSTEM_CLOCK,
            mail=Mailer(settings.smtp, password=None, sender_name="QuestCity status"),
            webhooks=WebhookPoster(timeout=5, allow_private=True),
            secret=SECRET.encode(),
        )
        async with serving(url, settings=settings, clock=clock) as page:
            # 1. Subscribe: nothing is sent from the request; the round sends the confirmation.
            asked = await page.post(
                "/subscribe",
                data={
                    "kind": "email",
                    "address": "player@example.org",
                    "language": "ru",
                    "form_token": await form_token(page),  # as the form GET /subscribe showed
                },
            )
            assert asked.status_code == 200
            hook_url = receiver.url("flow")
            hooked = await page.post(
                "/subscribe",
                data={"kind": "webhook", "address": hook_url, "form_token": await form_token(page)},
            )
            assert hooked.status_code == 200
            assert box.messages == [] and receiver.bodies == []

            first = await sender.run_once(clock.now)
            assert (first.sent, first.failed) == (2, 0)
            [confirmation] = box.messages
            assert confirmation["To"] == "player@example.org"
            confirm_link = link_in(text_of(confirmation), "/subscriptions/confirm")
            [request] = receiver.bodies
            assert request["type"] == "subscription_confirmation"

            # 2. Confirm: GET shows the button (a link scanner confirms nothing), POST confirms.
            shown = await page.get(local(confirm_link))
            assert shown.status_code == 200
            token = confirm_link.split("token=", 1)[1]
            confirmed = await page.post(
                "/subscriptions/confirm", data={"token": token}, headers=FORM
            )
            assert confirmed.status_code == 200
            fetched = await page.get(local(str(request["confirm_url"])))  # SNS style: GET
            assert fetched.status_code == 200

            # 3. A person opens an incident; the next round tells both.
            clock.now += 60
            incident_id = await public_actions.open_incident(
                reader,
                writer,
                title="Вход в игру не работает",
                components=[API],
                impact="major",
                message="Разбираемся, скоро вернёмся.",
                by="operator",
                at=clock.now,
            )
            second = await sender.run_once(clock.now)
            assert (second.sent, second.failed) == (2, 0)
            update = box.messages[-1]
            assert update["To"] == "player@example.org"
            assert "Вход в игру не работает" in str(update["Subject"])
            body = text_of(update)
            assert "Разбираемся, скоро вернёмся." in body
            assert f"{PUBLIC_URL}/incidents/{incident_id}" in body
            unsubscribe = link_in(body, "/subscriptions/unsubscribe")
            assert update["List-Unsubscribe"] == f"<{unsubscribe}>"
            assert update["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            incident = receiver.bodies[-1]["incident"]
            assert incident["id"] == str(incident_id)
            assert incident["name"] == "Вход в игру не работает"

            # 4. One click (what a mail client does with List-Unsubscribe-Post).
            clicked = await page.post(
                local(unsubscribe), content=b"List-Unsubscribe=One-Click", headers=FORM
            )
            assert clicked.status_code == 200

            # 5. The next update reaches the webhook only.
            clock.now += 60
            await public_actions.update_incident(
                reader,
                writer,
                incident_id,
                status="resolved",
                message="Всё работает.",
                by="operator",
                at=clock.now,
            )
            third = await sender.run_once(clock.now)
            assert third.sent == 1
            assert len(box.messages) == 2
            assert receiver.bodies[-1]["incident"]["status"] == "resolved"
            assert await sender.run_once(clock.now + 60) == type(third)()  # nothing left
