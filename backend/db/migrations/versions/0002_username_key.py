"""users.username_key: the unique, normalised key of each username (NFKC, case-folded, Latin
look-alikes made Latin; ``backend.auth.usernames.username_key``).

Existing rows get the key of their name. Names that were distinct accounts before but share a key
(``alice`` and ``ALICE``): the oldest account keeps the key; each younger one gets ``#<its id>``,
which no new name can take, and still logs in with its name exactly as it was registered (the
login looks up the exact name first). A key longer than the column is handled the same way.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

from backend.auth.usernames import username_key

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

logger = logging.getLogger("backend.db.migrations")

KEY_LENGTH = 255
_users = sa.table(
    "users",
    sa.column("id", sa.String),
    sa.column("username", sa.String),
    sa.column("username_key", sa.String),
    sa.column("created_at", sa.DateTime),
)


def upgrade() -> None:
    # NOT NULL with a default: SQLite adds such a column in place, with no table rebuild (which,
    # with foreign keys on, would cascade-delete every quest of every user).
    op.add_column(
        "users",
        sa.Column("username_key", sa.String(KEY_LENGTH), nullable=False, server_default=""),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(_users.c.id, _users.c.username).order_by(_users.c.created_at, _users.c.id)
    ).all()
    taken: set[str] = set()
    keys: list[dict[str, str]] = []
    renamed: list[str] = []
    for user_id, name in rows:
        key = username_key(name)
        if key in taken or len(key) > KEY_LENGTH or key.startswith("#"):
            key = f"#{user_id}"
            renamed.append(user_id)
        taken.add(key)
        keys.append({"user_id": user_id, "key": key})
    if keys:
        bind.execute(
            _users.update()
            .where(_users.c.id == sa.bindparam("user_id"))
            .values(username_key=sa.bindparam("key")),
            keys,
        )
    if renamed:
        logger.warning(
            "%d account(s) share a normalised username with an older account; they keep logging "
            "in with their name exactly as registered",
            len(renamed),
            extra={"event": "username_key_collisions", "user_ids": renamed},
        )
    op.create_index("ux_users_username_key", "users", ["username_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_users_username_key", table_name="users")
    op.drop_column("users", "username_key")
