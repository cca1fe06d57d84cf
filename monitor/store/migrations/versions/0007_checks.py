"""Checks beyond the health API (#16): a ``[[checks]]`` entry is a component of its own.

- ``components.kind``: the check's kind (``http``, ``tcp``, ``dns``, ``tls``, ``postgres``);
  NULL for a target of the health API and its services;
- ``components.public``: whether the status page shows the component (and its incidents, its
  badge, its maintenance windows, its subscribers' messages). A check is public only when its
  config says ``public = true``; a target and its services always are.

Every existing row keeps its meaning: the catalogue so far holds targets and their services
alone, each of no check kind and public (the page showed every one of them).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("components", sa.Column("kind", sa.String(10)))
    # NOT NULL with a default: SQLite adds such a column in place, PostgreSQL fills the existing
    # rows with the default without rewriting the table (11+).
    op.add_column(
        "components",
        sa.Column("public", sa.Boolean, nullable=False, server_default=sa.true()),
    )


def downgrade() -> None:
    raise NotImplementedError("the store is never taken back: upgrade the program instead")
