"""What subscribers read: e-mail subjects and bodies in English and Russian, the headers every
message carries, and webhook JSON in Statuspage's shape with the page's own ids."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default

from monitor.i18n import format_moment
from monitor.impact import describe
from monitor.public import messages, payloads
from monitor.public.mail import Email, compose, mask_address, message_id
from monitor.public.settings import PageSettings
from monitor.store.models import (
    Incident,
    IncidentComponent,
    IncidentEvent,
    IncidentOrigin,
    IncidentState,
    Status,
)
from monitor.store.public_models import Maintenance, PublicMessage
from statuspage.model import opaque_id as page_opaque_id

AT = datetime(2026, 12, 7, 9, 35, tzinfo=UTC).timestamp()
PAGE = PageSettings(url="https://status.questcity.test", name="QuestCity", timezone="Europe/Moscow")
NAMES = {("api", ""): "QuestCity API", ("api", "database"): "Database"}
UNSUBSCRIBE = "https://status.questcity.test/subscriptions/unsubscribe?token=unsubscribe.1.0.x"

AUTO = Incident(
    7,
    "api",
    "database",
    IncidentState.OPEN,
    Status.UNREACHABLE,
    "stored title",
    AT - 3900,
    None,
    AT - 3900,
    events=(IncidentEvent(AT - 3900, "opened", Status.UNREACHABLE, "", True),),
    components=(
        IncidentComponent("api", "database", Status.UNREACHABLE, critical=True),
        IncidentComponent("api", "", Status.UNHEALTHY),
    ),
)
WRITTEN = Incident(
    9,
    "api",
    "",
    IncidentState.RESOLVED,
    Status.UNHEALTHY,
    "Логин не работает <b>",
    AT - 3900,
    AT,
    AT,
    events=(
        IncidentEvent(AT - 3900, "update", None, "Смотрим.", True, "me", "investigating"),
        IncidentEvent(
            AT, "update", None, "Починили, спасибо!\nВсё работает.", True, "me", "resolved"
        ),
    ),
    components=(IncidentComponent("api", "", Status.UNHEALTHY),),
    origin=IncidentOrigin.WRITTEN,
    phase="resolved",
    written_by="me",
)
WINDOW = Maintenance(
    3, "DB upgrade", "Expect short pauses.", ("api/database",), AT + 86400, AT + 90000, "me", AT
)


def ctx(language: str) -> messages.Context:
    return messages.Context(PAGE, language, NAMES, UNSUBSCRIBE, AT)


def opened() -> PublicMessage:
    return PublicMessage(1, 7, None, "opened", "investigating", "", ("api/database",), AT - 3900)


def test_an_automatic_incident_is_worded_by_the_page_rule_in_english() -> None:
    rendered = messages.incident_email(ctx("en"), opened(), AUTO)

    wording = describe(AUTO.components, lambda t, s: NAMES[(t, s)])
    assert rendered.subject == f"[QuestCity status] Investigating: {wording.title}"
    assert wording.title == "Major outage: Database"
    assert f"We are investigating a problem: {wording.body}" in rendered.text
    assert "https://status.questcity.test/incidents/7" in rendered.text
    assert f"Unsubscribe: {UNSUBSCRIBE}" in rendered.text
    # The page's zone, named: 09:35 UTC - 3900 s is 11:30 in Moscow.
    assert "Started: 7 Dec 2026, 11:30 MSK" in rendered.text
    assert "stored title" not in rendered.text  # the daemon's own title is never shown


def test_the_same_incident_in_russian() -> None:
    rendered = messages.incident_email(ctx("ru"), opened(), AUTO)

    assert rendered.subject.startswith("[Статус QuestCity] ")
    assert "Выясняем причину" in rendered.subject
    assert ": Database" in rendered.subject  # component names as written
    assert "Investigating" not in rendered.subject + rendered.text
    assert "Мы разбираемся с неполадкой" in rendered.text
    assert format_moment(AT - 3900, "ru", PAGE.zone) in rendered.text
    assert "дек." in rendered.text and "MSK" in rendered.text
    assert UNSUBSCRIBE in rendered.text


def test_a_written_incident_shows_its_text_as_written_with_its_duration() -> None:
    message = PublicMessage(
        2, 9, None, "resolved", "resolved", "Починили, спасибо!\nВсё работает.", ("api",), AT
    )
    for language, resolved, duration in (
        ("en", "Resolved", "1 h 5 min"),
        ("ru", "Решён", "1 ч 5 мин"),
    ):
        rendered = messages.incident_email(ctx(language), message, WRITTEN)
        assert rendered.subject.endswith(f"{resolved}: Логин не работает <b>")
        assert "Починили, спасибо!\nВсё работает." in rendered.text
        assert duration in rendered.text


def test_a_maintenance_window_names_its_times_and_zone() -> None:
    message = PublicMessage(4, None, 3, "scheduled", None, "", ("api/database",), AT)
    rendered = messages.maintenance_email(ctx("en"), message, WINDOW)

    assert rendered.subject == "[QuestCity status] Maintenance scheduled: DB upgrade"
    assert "Scheduled from 8 Dec 2026, 12:35 MSK to 8 Dec 2026, 13:35 MSK" in rendered.text
    assert "Europe/Moscow" in rendered.text
    assert "Expect short pauses." in rendered.text and "Components: Database" in rendered.text
    assert UNSUBSCRIBE in rendered.text
    started = PublicMessage(5, None, 3, "started", None, "", ("api/database",), AT + 86400)
    ru = messages.maintenance_email(ctx("ru"), started, WINDOW)
    assert "Maintenance" not in ru.subject
    assert "Идут плановые технические работы" in ru.text


def test_the_incident_webhook_is_statuspage_shaped_with_the_page_ids() -> None:
    document = payloads.incident_payload(ctx("en"), opened(), AUTO)

    assert document["meta"]["unsubscribe"] == UNSUBSCRIBE
    assert document["page"]["id"] == page_opaque_id("page", PAGE.url)
    incident = document["incident"]
    statuspage_fields = {
        "id", "name", "status", "impact", "created_at", "updated_at", "monitoring_at",
        "resolved_at", "shortlink", "started_at", "page_id", "incident_updates", "components",
        "backfilled", "impact_override", "postmortem_body", "postmortem_published_at",
        "scheduled_for", "scheduled_until",
    }  # fmt: skip
    assert set(incident) == statuspage_fields
    assert incident["name"] == "Major outage: Database"
    assert (incident["status"], incident["impact"]) == ("investigating", "critical")
    assert incident["shortlink"] == "https://status.questcity.test/incidents/7"
    assert [c["id"] for c in incident["components"]] == [
        page_opaque_id("component", "api", "database"),
        page_opaque_id("component", "api", ""),
    ]
    [update] = incident["incident_updates"]
    assert update["id"] == page_opaque_id("update", "7", "0")
    assert update["body"].startswith("We are investigating a problem: ")
    assert incident["created_at"].endswith("Z")


def test_the_maintenance_webhook() -> None:
    message = PublicMessage(5, None, 3, "started", None, "", ("api/database",), AT + 86400)
    document = payloads.maintenance_payload(ctx("en"), message, WINDOW)

    window = document["scheduled_maintenance"]
    assert window["id"] == page_opaque_id("maintenance", "3")
    assert (window["status"], window["impact"]) == ("in_progress", "maintenance")
    assert window["scheduled_for"] == "2026-12-08T09:35:00.000Z"
    assert [c["status"] for c in window["components"]] == ["under_maintenance"]


def test_every_message_carries_one_click_unsubscribe_and_auto_submitted() -> None:
    email = Email(
        to="player@example.org",
        subject="[QuestCity status] Investigating: broken\r\nBcc: victim@example.org",
        text="Привет\n",
        language="ru",
        message_id=message_id(12, "status@questcity.test"),
        unsubscribe_url=UNSUBSCRIBE,
        at=AT,
    )
    wire = compose(email, sender="status@questcity.test", sender_name="QuestCity status")
    parsed = message_from_bytes(wire.as_bytes(), policy=default)

    assert parsed["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["Message-ID"] == message_id(12, "status@questcity.test")
    assert parsed["Message-ID"].endswith("@questcity.test>")
    assert parsed["Bcc"] is None  # the line break in the subject injected nothing
    assert str(parsed["Subject"]).startswith("[QuestCity status] Investigating: broken")
    assert parsed.get_content().strip() == "Привет"
    # The confirmation request is not a list message: no unsubscribe header on it.
    plain = compose(
        Email("a@example.org", "s", "t", "en", "<x@y>"), sender="s@q.test", sender_name="Q"
    )
    assert plain["List-Unsubscribe"] is None


def test_logs_show_masked_addresses() -> None:
    from monitor.public.webhooks import masked

    assert mask_address("player.one@example.org") == "p***@example.org"
    assert (
        masked("https://hooks.example.org/T0K3N/secret?key=s3cr3t") == "https://hooks.example.org/…"
    )
