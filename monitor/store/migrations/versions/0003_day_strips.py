"""day_strips_v2: each component's settled daily roll-ups as one row of packed columns
(ce5b50d, 8b5a1b6).

Created empty: the daemon's daily retention run fills it from the roll-ups
(``compact_day_strips``), and until then readers take those days from the roll-ups, as they do
for every day past a strip's last one, so no bar changes.

The name keeps its ``_v2``. Stores of ce5b50d hold a ``day_strips`` table of JSON lists, which a
status page of that version still reads; the packed form under that name would break such a
page mid-upgrade, and moving the old table aside first is a data migration of stores nobody
could test here. That ``day_strips`` is left alone (nothing reads or writes it any more); a
later revision may drop it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "day_strips_v2",
        sa.Column("target", sa.String(200), primary_key=True),
        sa.Column("service", sa.String(200), primary_key=True),
        sa.Column("last_day", sa.Integer, nullable=False),
        sa.Column("days", sa.Text, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("the store is never taken back: upgrade the program instead")
