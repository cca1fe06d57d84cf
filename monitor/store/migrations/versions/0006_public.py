"""Talking to the public (#15): incidents people write, maintenance windows, subscribers and what
they are sent.

- ``incidents`` gain ``origin`` (``auto``: opened by the daemon; ``written``: by a person),
  ``phase`` (the Statuspage status a person last set), ``written_by`` (who opened it or took it
  over), ``postmortem`` and ``postmortem_at``; ``incident_events`` gain ``phase`` (an update's);
- ``maintenances`` with ``maintenance_components`` and ``maintenance_events``: planned work,
  its components and its timeline (started, completed, cancelled, what it held back);
- ``subscribers``: e-mail addresses and webhooks that follow some components or all;
  ``address_key`` (a digest of the normalised address) makes one live row per kind and address;
- ``public_messages``: what subscribers are told, queued in the transaction of the public change;
- ``deliveries``: one message (or a confirmation request) owed to one subscriber, with its tries.

Every existing row keeps its meaning: the incidents already stored were opened by the daemon
(``origin = 'auto'``) and nobody wrote into them (no phase, no author, no postmortem); their
events set no phase. The new tables start empty: nothing stored so far was public news that is
still owed to anyone.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    # NOT NULL with a default: SQLite adds such a column in place, PostgreSQL fills the existing
    # rows with the default without rewriting the table (11+).
    op.add_column(
        "incidents",
        sa.Column("origin", sa.String(10), nullable=False, server_default="auto"),
    )
    op.add_column("incidents", sa.Column("phase", sa.String(20)))
    op.add_column("incidents", sa.Column("written_by", sa.String(200)))
    op.add_column("incidents", sa.Column("postmortem", sa.Text))
    op.add_column("incidents", sa.Column("postmortem_at", sa.Float))
    op.add_column("incident_events", sa.Column("phase", sa.String(20)))
    op.create_table(
        "maintenances",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("message", sa.Text),
        sa.Column("starts_at", sa.Float, nullable=False),
        sa.Column("ends_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("cancelled_at", sa.Float),
        sa.Column("cancelled_by", sa.String(200)),
        sa.Column("started_at", sa.Float),
        sa.Column("completed_at", sa.Float),
    )
    op.create_index("ix_maintenances_ends_at", "maintenances", ["ends_at"])
    op.create_table(
        "maintenance_components",
        sa.Column(
            "maintenance_id",
            _Id,
            sa.ForeignKey("maintenances.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("component", sa.String(401), primary_key=True),
    )
    op.create_table(
        "maintenance_events",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column(
            "maintenance_id",
            _Id,
            sa.ForeignKey("maintenances.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("text", sa.String(500), nullable=False),
    )
    op.create_index(
        "ix_maintenance_events_maintenance", "maintenance_events", ["maintenance_id", "at"]
    )
    op.create_table(
        "subscribers",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("address", sa.String(2000), nullable=False),
        sa.Column("address_key", sa.String(64)),
        sa.Column("components", sa.Text, nullable=False, server_default=""),
        sa.Column("language", sa.String(5), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("confirmed_at", sa.Float),
        sa.Column("unsubscribed_at", sa.Float),
        sa.Column("confirm_sent_at", sa.Float),
    )
    op.create_index(
        "ux_subscribers_kind_address_key", "subscribers", ["kind", "address_key"], unique=True
    )
    op.create_index("ix_subscribers_created_at", "subscribers", ["created_at"])
    op.create_table(
        "public_messages",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("incident_id", _Id, sa.ForeignKey("incidents.id", ondelete="SET NULL")),
        sa.Column("maintenance_id", _Id, sa.ForeignKey("maintenances.id", ondelete="SET NULL")),
        sa.Column("event", sa.String(20), nullable=False),
        sa.Column("phase", sa.String(20)),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("components", sa.Text, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("fanned_out_at", sa.Float),
    )
    op.create_index("ix_public_messages_fanned_out_at", "public_messages", ["fanned_out_at"])
    op.create_table(
        "deliveries",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column(
            "subscriber_id",
            _Id,
            sa.ForeignKey("subscribers.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("message_id", _Id, sa.ForeignKey("public_messages.id", ondelete="CASCADE")),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_at", sa.Float, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("done_at", sa.Float),
        sa.Column("error", sa.String(100)),
    )
    op.create_index(
        "ux_deliveries_message_subscriber",
        "deliveries",
        ["message_id", "subscriber_id"],
        unique=True,
    )
    op.create_index("ix_deliveries_state_next_at", "deliveries", ["state", "next_at"])
    op.create_index("ix_deliveries_subscriber", "deliveries", ["subscriber_id"])


def downgrade() -> None:
    raise NotImplementedError("the store is never taken back: upgrade the program instead")
