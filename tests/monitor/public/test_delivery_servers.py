"""The sender through real destinations: an SMTP server (aiosmtpd) and a webhook receiver on
127.0.0.1, with the store faked; and how the SMTP server's failures are told (short classes,
never its reply)."""

from __future__ import annotations

import logging

import pytest

from monitor.public.mail import SESSIONS, Email, Mailer, message_id
from monitor.public.outcomes import Broken, Refused, Unreachable
from monitor.public.sender import PublicSender
from monitor.public.settings import PageSettings, PublicSettings, SmtpSettings, SubscriptionSettings
from monitor.public.webhooks import WebhookPoster
from monitor.store.public_models import DeliveryState, SubscriberKind
from questcity.embedded.ports import free_port
from shared.resilience import SYSTEM_CLOCK
from tests.monitor.public.fakes import SECRET, FakeStore
from tests.monitor.public.servers import NO_SUCH_MAILBOX, PASSWORD, Mailbox, Receiver, text_of
from tests.monitor.public.test_sender import NOW, incident_store


def smtp(port: int, **kw: object) -> SmtpSettings:
    return SmtpSettings(
        host="127.0.0.1", sender="status@questcity.test", port=port, security="none", timeout=5,
        **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def email(to: str) -> Email:
    return Email(to, "subject", "body\n", "en", message_id(1, "status@questcity.test"), at=NOW)


async def test_mail_failures_are_short_classes_without_the_server_reply() -> None:
    async with Mailbox(login=True) as box:
        good = Mailer(smtp(box.port, username="status"), password=PASSWORD, sender_name="Q")
        await good.send(email("player@example.org"))
        with pytest.raises(Refused) as rejected:
            await good.send(email(NO_SUCH_MAILBOX))
        wrong = Mailer(smtp(box.port, username="status"), password="wrong", sender_name="Q")
        with pytest.raises(Broken) as auth:
            await wrong.send(email("player@example.org"))

    assert len(box.messages) == 1
    assert (rejected.value.kind, rejected.value.final) == ("rejected", True)
    assert "secret-server-detail" not in repr(rejected.value.__dict__) + str(rejected.value)
    assert rejected.value.__cause__ is None and rejected.value.__context__ is None
    assert auth.value.kind == "auth failed"
    closed = Mailer(smtp(free_port()), password=None, sender_name="Q")
    with pytest.raises(Unreachable, match="refused"):
        await closed.send(email("player@example.org"))


async def test_confirmation_and_update_through_real_smtp_and_a_real_webhook(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    async with Mailbox() as box, Receiver() as receiver:
        store = incident_store()
        store.add_subscriber("player.one@example.org", language="ru")
        hook = store.add_subscriber(receiver.url(), kind=SubscriberKind.WEBHOOK)
        newcomer = store.add_subscriber("newcomer@example.org", confirmed=False)
        store.add_delivery(newcomer.id, None, NOW)
        settings = PublicSettings(
            page=PageSettings(url="https://status.questcity.test", name="QuestCity"),
            smtp=smtp(box.port),
            subscriptions=SubscriptionSettings(enabled=True, allow_private_webhooks=True),
        )
        sender = PublicSender(
            settings,
            store,
            store,
            clock=SYSTEM_CLOCK,
            mail=Mailer(settings.smtp, password=None, sender_name="QuestCity status"),  # type: ignore[arg-type]
            webhooks=WebhookPoster(timeout=5, allow_private=True),
            secret=SECRET,
        )

        report = await sender.run_once(NOW)

        assert (report.sent, report.failed) == (3, 0)
        by_to = {str(m["To"]): m for m in box.messages}
        confirm = by_to["newcomer@example.org"]
        assert "/subscriptions/confirm?token=confirm.3." in text_of(confirm)
        assert confirm["List-Unsubscribe"] is None
        update = by_to["player.one@example.org"]
        assert "Выясняем причину" in str(update["Subject"])
        assert update["List-Unsubscribe"].startswith(
            "<https://status.questcity.test/subscriptions/unsubscribe?token=unsubscribe.1."
        )
        assert update["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert update["Auto-Submitted"] == "auto-generated"
        assert update["From"].addresses[0].addr_spec == "status@questcity.test"
        [payload] = receiver.bodies
        assert payload["incident"]["shortlink"] == "https://status.questcity.test/incidents/7"
        hooked = next(d for d in store.deliveries.values() if d.subscriber_id == hook.id)
        assert receiver.headers[0]["Idempotency-Key"] == f"questcity-delivery-{hooked.id}"
        assert {d.state for d in store.deliveries.values()} == {DeliveryState.SENT}

    # What the monitor's process logs (not the test's SMTP server's own log, mail.log).
    logged = "\n".join(
        f"{r.getMessage()} {r.__dict__}" for r in caplog.records if r.name != "mail.log"
    )
    assert "player.one@" not in logged and "p***@example.org" in logged
    assert "s3cr3t" not in logged and "/hook/" not in logged
    assert SECRET.decode() not in logged and "token=" not in logged


async def test_an_smtp_server_down_is_retried_later() -> None:
    store = FakeStore()
    person = store.add_subscriber("p@example.org", confirmed=False)
    store.add_delivery(person.id, None, NOW)
    settings = PublicSettings(smtp=smtp(free_port()), subscriptions=SubscriptionSettings(True))
    assert settings.smtp is not None
    from shared.resilience.testing import waits_disabled

    sender = PublicSender(
        settings,
        store,
        store,
        clock=SYSTEM_CLOCK,
        mail=Mailer(settings.smtp, password=None, sender_name="Q"),
        webhooks=None,
        secret=SECRET,
    )
    with waits_disabled():
        report = await sender.run_once(NOW)

    assert report.retrying == 1
    assert store.deliveries[1].state is DeliveryState.PENDING
    assert (store.deliveries[1].error, store.deliveries[1].next_at) == ("refused", NOW + 30)


async def test_a_round_sends_many_emails_over_a_few_kept_connections() -> None:
    async with Mailbox() as box:
        store = incident_store()
        for n in range(20):
            store.add_subscriber(f"player{n}@example.org")
        settings = PublicSettings(smtp=smtp(box.port), subscriptions=SubscriptionSettings(True))
        assert settings.smtp is not None
        mailer = Mailer(settings.smtp, password=None, sender_name="Q")
        sender = PublicSender(
            settings, store, store, clock=SYSTEM_CLOCK, mail=mailer, webhooks=None, secret=SECRET
        )

        report = await sender.run_once(NOW)

        assert report.sent == 20 and len(box.messages) == 20
        # One connection per e-mail lane at most, not one per e-mail.
        assert box.connections == mailer.connections <= SESSIONS


async def test_a_kept_connection_the_server_dropped_is_replaced() -> None:
    async with Mailbox() as box:
        mailer = Mailer(smtp(box.port), password=None, sender_name="Q")
        await mailer.send(email("one@example.org"))
        await mailer.send(email("two@example.org"))
        assert box.connections == 1
        box.restart()  # the kept connection is dead now

        await mailer.send(email("three@example.org"))
        await mailer.aclose()

    assert [str(m["To"]) for m in box.messages] == [
        "one@example.org",
        "two@example.org",
        "three@example.org",
    ]
    assert box.connections == 2
