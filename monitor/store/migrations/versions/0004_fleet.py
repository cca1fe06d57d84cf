"""The fleet (#13): each replica's own checks (``replica_checks``), each replica's latest state
(``replicas``), the monitors' leadership lease (``monitor_lease``), and the alerts' outbox
(``alerts.notified``: the state whose notice was handled).

Created empty: a store's history so far is of single-replica targets, whose replica rows the
daemon writes from its next check on (the target's own checks and states are unchanged). The
alerts already stored were announced (at most once) by the monitor that wrote them: they are
marked notified, so the first monitor after the upgrade does not page them all again.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "replica_checks",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("replica", sa.String(200), nullable=False),
        sa.Column("instance_id", sa.String(200)),
        sa.Column("instance_started_at", sa.Float),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("latency_ms", sa.Float),
        sa.Column("http_status", sa.Integer),
        sa.Column("error", sa.String(200)),
        sa.Column("services", sa.Text, nullable=False),
    )
    op.create_index(
        "ix_replica_checks_target_replica_at", "replica_checks", ["target", "replica", "at"]
    )
    op.create_index("ix_replica_checks_at", "replica_checks", ["at"])
    op.create_table(
        "replicas",
        sa.Column("target", sa.String(200), primary_key=True),
        sa.Column("replica", sa.String(200), primary_key=True),
        sa.Column("instance_id", sa.String(200)),
        sa.Column("instance_started_at", sa.Float),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("since", sa.Float, nullable=False),
        sa.Column("checked_at", sa.Float, nullable=False),
        sa.Column("latency_ms", sa.Float),
        sa.Column("error", sa.String(200)),
        sa.Column("services", sa.Text, nullable=False),
        sa.Column("retired_at", sa.Float),
    )
    op.create_table(
        "monitor_lease",
        sa.Column("name", sa.String(50), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("beat", sa.BigInteger, nullable=False),
        sa.Column("acquired_at", sa.Float, nullable=False),
        sa.Column("renewed_at", sa.Float, nullable=False),
        sa.Column("ttl", sa.Float, nullable=False),
    )

    op.add_column("alerts", sa.Column("notified", sa.String(10)))
    op.execute("UPDATE alerts SET notified = state")


def downgrade() -> None:
    raise NotImplementedError("the store is never taken back: upgrade the program instead")
