"""component_states: each component's latest status and since when it has held (a73d6f6), filled
from the raw checks of the store so far.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from monitor.store.migrations.states import backfill_states

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "component_states",
        sa.Column("target", sa.String(200), primary_key=True),
        sa.Column("service", sa.String(200), primary_key=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("since", sa.Float, nullable=False),
        sa.Column("checked_at", sa.Float, nullable=False),
    )
    backfill_states(op.get_bind())


def downgrade() -> None:
    raise NotImplementedError("the store is never taken back: upgrade the program instead")
