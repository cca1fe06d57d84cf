"""users.username_key unique only where it is set: room for the rows of a rolling upgrade.

During a rolling upgrade pods of the version before 0002 keep serving after the schema moved on.
They know nothing of ``username_key`` and insert their new accounts with the column's default,
``''``: under 0002's plain unique index the second such row was refused, so every later
registration on an old pod answered 409. Here the index leaves ``''`` out (a partial index, on
SQLite and PostgreSQL alike), and a second, partial index finds those rows for the backend to fill
with their keys (``backend.db.repositories.fill_missing_username_keys``: at start-up and before
each registration). The server default stays: the old pods need it.

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

_SET = sa.text("username_key <> ''")
_MISSING = sa.text("username_key = ''")


def upgrade() -> None:
    op.drop_index("ux_users_username_key", table_name="users")
    op.create_index(
        "ux_users_username_key",
        "users",
        ["username_key"],
        unique=True,
        sqlite_where=_SET,
        postgresql_where=_SET,
    )
    op.create_index(
        "ix_users_username_key_missing",
        "users",
        ["created_at", "id"],
        sqlite_where=_MISSING,
        postgresql_where=_MISSING,
    )


def downgrade() -> None:
    op.drop_index("ix_users_username_key_missing", table_name="users")
    op.drop_index("ux_users_username_key", table_name="users")
    op.create_index("ux_users_username_key", "users", ["username_key"], unique=True)
