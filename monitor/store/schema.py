"""The history tables (SQLAlchemy Core). Times are float seconds since the epoch: roll-up periods
are then plain integer division, identically on SQLite and PostgreSQL.

The tables as the newest migration leaves them. A change here comes with a revision in
``monitor/store/migrations/versions/`` (``test_migrations`` checks that the two agree); stores
are made and upgraded by those, never from this module (:mod:`monitor.store.migrate`)."""

from __future__ import annotations

import hashlib

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
    true,
)

metadata = MetaData()

# 64-bit ids on PostgreSQL (1,000 targets every 10 s is 8.6 M checks a day: a 32-bit SERIAL runs
# out in months); SQLite's rowid alias must be spelled INTEGER, and is 64-bit anyway.
Id = BigInteger().with_variant(Integer, "sqlite")

checks = Table(
    "checks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("target", String(200), nullable=False),
    Column("at", Float, nullable=False),
    Column("status", String(20), nullable=False),
    Column("latency_ms", Float),
    Column("http_status", Integer),
    Column("error", String(200)),
    # A check an engineer asked for (#14): it sets the current state, never a roll-up or a chart.
    Column("manual", Boolean, nullable=False, server_default=false()),
    Index("ix_checks_target_at", "target", "at"),
    Index("ix_checks_at", "at"),
)

service_checks = Table(
    "service_checks",
    metadata,
    Column("check_id", Id, ForeignKey("checks.id", ondelete="CASCADE"), primary_key=True),
    Column("service", String(200), primary_key=True),
    Column("target", String(200), nullable=False),
    Column("at", Float, nullable=False),
    Column("status", String(20), nullable=False),
    Column("response_ms", Float),
    Column("consecutive_failures", Integer),
    Column("breaker_state", String(20)),
    Column("details", Text),
    Index("ix_service_checks_target_service_at", "target", "service", "at"),
)

rollups = Table(
    "rollups",
    metadata,
    Column("target", String(200), primary_key=True),
    Column("service", String(200), primary_key=True),
    Column("period", String(5), primary_key=True),  # "hour" or "day"
    Column("start", Integer, primary_key=True),
    Column("checks", Integer, nullable=False),
    Column("up", Integer, nullable=False),
    Column("worst", Integer, nullable=False),
    Column("latency_sum", Float, nullable=False),
    Column("latency_count", Integer, nullable=False),
    Column("latency_max", Float, nullable=False),
    Index("ix_rollups_period_start", "period", "start"),
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("target", String(200), nullable=False),
    Column("service", String(200), nullable=False),
    Column("state", String(10), nullable=False),
    Column("impact", String(20), nullable=False),
    Column("title", String(300), nullable=False),
    Column("opened_at", Float, nullable=False),
    Column("resolved_at", Float),
    Column("updated_at", Float, nullable=False),
    # #15: ``auto`` (the daemon's, by cause) or ``written`` (a person's); the Statuspage status a
    # person last set; who opened it or took it over; the postmortem.
    Column("origin", String(10), nullable=False, server_default="auto"),
    Column("phase", String(20)),
    Column("written_by", String(200)),
    Column("postmortem", Text),
    Column("postmortem_at", Float),
    Index("ix_incidents_state", "state"),
    Index("ix_incidents_opened_at", "opened_at"),
)

incident_events = Table(
    "incident_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("incident_id", Id, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("at", Float, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("status", String(20)),
    Column("text", Text, nullable=False),
    Column("public", Boolean, nullable=False),
    Column("actor", String(200)),
    Column("phase", String(20)),  # an ``update`` event's Statuspage status (#15)
    Index("ix_incident_events_incident", "incident_id", "at"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("rule", String(100), nullable=False),
    Column("target", String(200), nullable=False),
    Column("service", String(200), nullable=False),
    Column("state", String(10), nullable=False),
    Column("summary", Text, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("resolved_at", Float),
    # The outbox (#13): the state whose notice every sink took or gave up on; NULL or behind
    # ``state`` = that notice is still owed, and a resuming monitor sends it.
    Column("notified", String(10)),
    # #14: when the summary was last re-written with the current figures, and who acknowledged
    # the alert when (an ack stops reminders; it does not resolve the alert).
    Column("updated_at", Float),
    Column("acked_at", Float),
    Column("acked_by", String(200)),
    Index("ix_alerts_state", "state"),
)

silences = Table(
    "silences",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("component", String(401), nullable=False),  # TARGET/SERVICE: 200 + 1 + 200
    Column("starts_at", Float, nullable=False),
    Column("ends_at", Float, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("reason", String(500)),
    Column("created_at", Float, nullable=False),
    Index("ix_silences_ends_at", "ends_at"),
)
"""A component's alerts kept quiet until ``ends_at`` (#14): recorded and shown, not sent. Never
deleted by the program; a read takes those in force at a time."""

incident_components = Table(
    "incident_components",
    metadata,
    Column(
        "incident_id",
        Id,
        ForeignKey("incidents.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("target", String(200), primary_key=True),
    Column("service", String(200), primary_key=True),
    Column("status", String(20), nullable=False),
    Column("critical", Boolean, nullable=False, server_default=false()),
)
"""Every component an incident's cause affects, with the worst status it had (#14: one incident
per cause, listing the API degraded because S3 is down with S3)."""

components = Table(
    "components",
    metadata,
    Column("target", String(200), primary_key=True),
    Column("service", String(200), primary_key=True),
    Column("display_name", String(200), nullable=False),
    Column("group_name", String(200), nullable=False),
    Column("position", Integer, nullable=False),
    # A service the backend marks critical (its check says so; the config does not know it).
    Column("critical", Boolean, nullable=False, server_default=false()),
    # A [[checks]] entry's kind (http, tcp, dns, tls, postgres); NULL: a target or its service.
    Column("kind", String(10)),
    # On the status page: a check only when its config says so; targets always (#16).
    Column("public", Boolean, nullable=False, server_default=true()),
)

component_states = Table(
    "component_states",
    metadata,
    Column("target", String(200), primary_key=True),
    Column("service", String(200), primary_key=True),
    Column("status", String(20), nullable=False),
    Column("since", Float, nullable=False),
    Column("checked_at", Float, nullable=False),
)
"""Each component's latest status and since when it has held, kept in the check's transaction, so
that "what is up right now" is one small read rather than a scan of the raw checks."""

day_strips = Table(
    "day_strips_v2",
    metadata,
    Column("target", String(200), primary_key=True),
    Column("service", String(200), primary_key=True),
    Column("last_day", Integer, nullable=False),
    Column("days", Text, nullable=False),
)
"""The daily roll-ups of one component's settled days (up to the day before yesterday) as one
row, packed columns (:mod:`monitor.store.strips`), rebuilt once a day: a 90-day view of 50
components reads 50 of these and a few days of roll-ups, not 4,500 rows.

``_v2``: the first version kept a JSON list per day in ``day_strips``, which stores of that
version still hold and nothing reads or writes any more (revision 0003 says why the name stays)."""

revisions = Table(
    "revisions",
    metadata,
    Column("name", String(50), primary_key=True),
    Column("value", BigInteger, nullable=False),
)
"""Counters for writes that add no row with a fresh id (a resolved alert, a new catalogue), so
that ``HistoryReader.last_change`` moves for them too."""

replica_checks = Table(
    "replica_checks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("target", String(200), nullable=False),
    Column("replica", String(200), nullable=False),
    Column("instance_id", String(200)),
    Column("instance_started_at", Float),
    Column("at", Float, nullable=False),
    Column("status", String(20), nullable=False),
    Column("latency_ms", Float),
    Column("http_status", Integer),
    Column("error", String(200)),
    Column("services", Text, nullable=False),
    Index("ix_replica_checks_target_replica_at", "target", "replica", "at"),
    Index("ix_replica_checks_at", "at"),
)
"""Each replica's own check, written with its target's (aggregate) check in one transaction: the
per-replica figures, never mixed. ``services``: its samples as compact JSON
(:func:`monitor.store.batch.services_json`). Kept as long as the raw checks."""

replicas = Table(
    "replicas",
    metadata,
    Column("target", String(200), primary_key=True),
    Column("replica", String(200), primary_key=True),
    Column("instance_id", String(200)),
    Column("instance_started_at", Float),
    Column("status", String(20), nullable=False),
    Column("since", Float, nullable=False),
    Column("checked_at", Float, nullable=False),
    Column("latency_ms", Float),
    Column("error", String(200)),
    Column("services", Text, nullable=False),
    Column("retired_at", Float),
)
"""Each replica's latest state, upserted with its check (the TUI's replica rows); ``retired_at``
set when it left its target's replica set, cleared when it is seen again."""

maintenances = Table(
    "maintenances",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("title", String(200), nullable=False),
    Column("message", Text),
    Column("starts_at", Float, nullable=False),
    Column("ends_at", Float, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("cancelled_at", Float),
    Column("cancelled_by", String(200)),
    Column("started_at", Float),
    Column("completed_at", Float),
    Index("ix_maintenances_ends_at", "ends_at"),
)
"""Maintenance windows (#15): planned work during which their components read
``under_maintenance`` and their alerts and automatic incidents are held."""

maintenance_components = Table(
    "maintenance_components",
    metadata,
    Column(
        "maintenance_id",
        Id,
        ForeignKey("maintenances.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("component", String(401), primary_key=True),  # a component key, as silences'
)

maintenance_events = Table(
    "maintenance_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column(
        "maintenance_id",
        Id,
        ForeignKey("maintenances.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("at", Float, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("text", String(500), nullable=False),
    Index("ix_maintenance_events_maintenance", "maintenance_id", "at"),
)

subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(10), nullable=False),
    Column("address", String(2000), nullable=False),
    Column("address_key", String(64)),
    Column("components", Text, nullable=False, server_default=""),
    Column("language", String(5), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("confirmed_at", Float),
    Column("unsubscribed_at", Float),
    Column("confirm_sent_at", Float),
    Index("ux_subscribers_kind_address_key", "kind", "address_key", unique=True),
    Index("ix_subscribers_created_at", "created_at"),
)
"""E-mail addresses and webhooks told about incidents and windows (#15). ``components``: a JSON
list of component keys, ``''`` or ``'[]'`` for every component. ``address_key``:
:func:`address_key` of the address while the row is live, NULL once unsubscribed: the unique
index then makes one live row per kind and address on both databases (NULLs never collide), an
address may subscribe again after unsubscribing, and no index entry is ever longer than 64."""

public_messages = Table(
    "public_messages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("incident_id", Id, ForeignKey("incidents.id", ondelete="SET NULL")),
    Column("maintenance_id", Id, ForeignKey("maintenances.id", ondelete="SET NULL")),
    Column("event", String(20), nullable=False),
    Column("phase", String(20)),
    Column("text", Text, nullable=False),
    Column("components", Text, nullable=False),  # a JSON list of component keys
    Column("at", Float, nullable=False),
    Column("fanned_out_at", Float),
    Index("ix_public_messages_fanned_out_at", "fanned_out_at"),
)
"""What subscribers are told (#15), queued in the transaction of the public change;
``fanned_out_at`` set once its deliveries are made."""

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("subscriber_id", Id, ForeignKey("subscribers.id", ondelete="CASCADE"), nullable=False),
    # NULL: the subscriber's confirmation request (which the unique index lets repeat).
    Column("message_id", Id, ForeignKey("public_messages.id", ondelete="CASCADE")),
    Column("state", String(10), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_at", Float, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("done_at", Float),
    Column("error", String(100)),
    Index("ux_deliveries_message_subscriber", "message_id", "subscriber_id", unique=True),
    Index("ix_deliveries_state_next_at", "state", "next_at"),
    Index("ix_deliveries_subscriber", "subscriber_id"),
)
"""One message owed to one subscriber (#15), with its tries: the sender's queue."""


def address_key(address: str, kind: str = "email") -> str:
    """The ``subscribers.address_key`` of an address of ``kind``: a SHA-256 digest (hex) of it
    stripped and, for an e-mail address, lower-cased (``Alice@Example.org`` and
    ``alice@example.org`` are one subscriber); for a webhook URL only its scheme and host are
    lower-cased: its path and query are the receiver's, ``/hooks/AbC`` is not ``/hooks/abc``."""
    address = address.strip()
    if kind == "webhook":
        scheme, sep, rest = address.partition("://")
        if sep:
            # The authority (host and port; the form refuses a user part) ends at the first
            # / ? or #: host names are case-insensitive, the rest is compared as written.
            end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
            address = f"{scheme.lower()}://{rest[:end].lower()}{rest[end:]}"
    else:
        address = address.lower()
    return hashlib.sha256(address.encode("utf-8", "replace")).hexdigest()


LEADER = "leader"
"""The name of the leadership lease's row."""

monitor_lease = Table(
    "monitor_lease",
    metadata,
    Column("name", String(50), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("epoch", BigInteger, nullable=False),
    Column("beat", BigInteger, nullable=False),
    Column("acquired_at", Float, nullable=False),
    Column("renewed_at", Float, nullable=False),
    Column("ttl", Float, nullable=False),
)
"""The monitors' leadership lease, one row (``name = 'leader'``): :mod:`monitor.store.leases`."""
