"""The store as it was first kept: checks and their services, roll-ups, incidents with their
events, alerts, the component catalogue, and the ``revisions`` counters (as of 393fb93).

Tables are created only where missing: the monitor's very first version (81b1c09) had no
``revisions`` table and made its stores without one, and such a store starts here (every later
version's store is stamped past this revision by :func:`monitor.store.migrate.upgrade_store`,
from the tables it has). On PostgreSQL a store of that first version keeps its 32-bit ids, as
it did under every version since (``create_all`` never changed a column).

Revision ID: 0001
Revises:
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer, "sqlite")
_tables = sa.MetaData()

sa.Table(
    "checks",
    _tables,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("target", sa.String(200), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("latency_ms", sa.Float),
    sa.Column("http_status", sa.Integer),
    sa.Column("error", sa.String(200)),
    sa.Index("ix_checks_target_at", "target", "at"),
    sa.Index("ix_checks_at", "at"),
)
sa.Table(
    "service_checks",
    _tables,
    sa.Column("check_id", _Id, sa.ForeignKey("checks.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("service", sa.String(200), primary_key=True),
    sa.Column("target", sa.String(200), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("response_ms", sa.Float),
    sa.Column("consecutive_failures", sa.Integer),
    sa.Column("breaker_state", sa.String(20)),
    sa.Column("details", sa.Text),
    sa.Index("ix_service_checks_target_service_at", "target", "service", "at"),
)
sa.Table(
    "rollups",
    _tables,
    sa.Column("target", sa.String(200), primary_key=True),
    sa.Column("service", sa.String(200), primary_key=True),
    sa.Column("period", sa.String(5), primary_key=True),
    sa.Column("start", sa.Integer, primary_key=True),
    sa.Column("checks", sa.Integer, nullable=False),
    sa.Column("up", sa.Integer, nullable=False),
    sa.Column("worst", sa.Integer, nullable=False),
    sa.Column("latency_sum", sa.Float, nullable=False),
    sa.Column("latency_count", sa.Integer, nullable=False),
    sa.Column("latency_max", sa.Float, nullable=False),
    sa.Index("ix_rollups_period_start", "period", "start"),
)
sa.Table(
    "incidents",
    _tables,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("target", sa.String(200), nullable=False),
    sa.Column("service", sa.String(200), nullable=False),
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("impact", sa.String(20), nullable=False),
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("opened_at", sa.Float, nullable=False),
    sa.Column("resolved_at", sa.Float),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Index("ix_incidents_state", "state"),
    sa.Index("ix_incidents_opened_at", "opened_at"),
)
sa.Table(
    "incident_events",
    _tables,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column(
        "incident_id", _Id, sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20)),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("public", sa.Boolean, nullable=False),
    sa.Column("actor", sa.String(200)),
    sa.Index("ix_incident_events_incident", "incident_id", "at"),
)
sa.Table(
    "alerts",
    _tables,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("rule", sa.String(100), nullable=False),
    sa.Column("target", sa.String(200), nullable=False),
    sa.Column("service", sa.String(200), nullable=False),
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("resolved_at", sa.Float),
    sa.Index("ix_alerts_state", "state"),
)
sa.Table(
    "components",
    _tables,
    sa.Column("target", sa.String(200), primary_key=True),
    sa.Column("service", sa.String(200), primary_key=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("group_name", sa.String(200), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
)
sa.Table(
    "revisions",
    _tables,
    sa.Column("name", sa.String(50), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)


def upgrade() -> None:
    _tables.create_all(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    raise NotImplementedError("the store is never taken back: upgrade the program instead")
