"""Signals (#14): alerts that are re-written, acknowledged and silenced; incidents that list every
component their cause affects; critical components; manual checks.

- ``alerts`` gain ``updated_at`` (the summary's last re-write), ``acked_at``, ``acked_by``;
- ``silences``: a component's alerts kept quiet until ``ends_at``;
- ``incident_components``: each incident's affected components with their worst status;
- ``components.critical``: a service the backend marks critical (false until a check says so);
- ``checks.manual``: a check an engineer asked for, kept out of roll-ups and charts.

Every existing row stays as it is: its alerts were never acknowledged nor re-written, its checks
were the scheduler's, and its components are not critical until the next check says otherwise.
The incidents already stored list no components (readers show their cause alone): what each
affected is not known from the rows.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.add_column("alerts", sa.Column("updated_at", sa.Float))
    op.add_column("alerts", sa.Column("acked_at", sa.Float))
    op.add_column("alerts", sa.Column("acked_by", sa.String(200)))
    # NOT NULL with a default: SQLite adds such a column in place, PostgreSQL fills the existing
    # rows with the default without rewriting the table (11+).
    op.add_column(
        "components",
        sa.Column("critical", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "checks", sa.Column("manual", sa.Boolean, nullable=False, server_default=sa.false())
    )
    op.create_table(
        "silences",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("component", sa.String(401), nullable=False),
        sa.Column("starts_at", sa.Float, nullable=False),
        sa.Column("ends_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("reason", sa.String(500)),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_silences_ends_at", "silences", ["ends_at"])
    op.create_table(
        "incident_components",
        sa.Column(
            "incident_id",
            _Id,
            sa.ForeignKey("incidents.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("target", sa.String(200), primary_key=True),
        sa.Column("service", sa.String(200), primary_key=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("critical", sa.Boolean, nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    raise NotImplementedError("the store is never taken back: upgrade the program instead")
