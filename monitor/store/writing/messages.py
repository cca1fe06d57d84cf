"""What subscribers are told, queued by the write that made the change public (#15): a
``public_messages`` row in that write's own transaction, so a message exists if and only if its
change does (nothing acknowledged is lost, nothing rolled back is announced). And the bounds that
every text from a person is cut to on its way in."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.store.reading.public import keys_json
from monitor.store.schema import public_messages

MESSAGE_SIZE = 20_000
"""A public update's text (``incident_events.text``, ``public_messages.text``): the CLI allows
5,000 characters; the store cuts rather than refuses anything longer."""
POSTMORTEM_SIZE = 100_000
"""A postmortem (the CLI allows 50,000)."""
NAME_SIZE = 200
"""Who wrote something (``written_by``, ``actor``, ``created_by``, ``cancelled_by``)."""
KEY_SIZE = 401
"""A component key (``TARGET/SERVICE``: 200 + 1 + 200)."""
MAX_KEYS = 500
"""Component keys one message or window lists at most (the CLI allows 50)."""


def bounded(value: str, size: int) -> str:
    """A multi-line text as a text column of ``size`` holds it: NUL (which PostgreSQL refuses in
    text) and lone surrogates (which no encoder takes) removed, cut to ``size`` characters. Line
    breaks stay: an update is written in paragraphs."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value[:size]


def bounded_keys(keys: Sequence[str]) -> list[str]:
    """Component keys deduplicated in their order, each cut to a key's size, at most
    :data:`MAX_KEYS` of them."""
    seen: dict[str, None] = {}
    for key in keys:
        seen.setdefault(bounded(key, KEY_SIZE), None)
        if len(seen) >= MAX_KEYS:
            break
    return list(seen)


async def queue_message(
    connection: AsyncConnection,
    *,
    event: str,
    text: str,
    components: Sequence[str],
    at: float,
    phase: str | None = None,
    incident_id: int | None = None,
    maintenance_id: int | None = None,
) -> int:
    """Queue one public message on ``connection`` (in the caller's transaction); its id."""
    result = await connection.execute(
        insert(public_messages).values(
            incident_id=incident_id,
            maintenance_id=maintenance_id,
            event=event,
            phase=phase,
            text=bounded(text, MESSAGE_SIZE),
            components=keys_json(bounded_keys(components)),
            at=at,
            fanned_out_at=None,
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]
