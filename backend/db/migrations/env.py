"""Alembic environment. Migrations run on a connection the caller hands in
(``config.attributes["connection"]``): the backend's start-up and ``questcity db upgrade`` both
open it through the same async engine, as in Alembic's asyncio cookbook."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from backend.db.models import Base

connection: Connection | None = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run migrations with `questcity db upgrade` (or backend.db.migrate), not the alembic CLI"
    )

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
