"""Alembic environment of the monitor's store. Migrations run on a connection the caller hands in
(``config.attributes["connection"]``): :func:`monitor.store.migrate.upgrade_store`, which the
daemon's start and ``questcity store upgrade`` both call.

The revision is kept in a table of its own, ``monitor_alembic_version``: the store and the
backend's database may be one PostgreSQL database, and the backend's ``alembic_version`` is the
backend's."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from monitor.store.migrations import VERSION_TABLE
from monitor.store.schema import metadata

connection: Connection | None = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run the store's migrations with `questcity store upgrade` (or "
        "monitor.store.migrate.upgrade_store), not the alembic CLI"
    )

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
