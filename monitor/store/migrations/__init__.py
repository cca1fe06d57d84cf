"""The store's Alembic migrations (``versions/``), applied by :mod:`monitor.store.migrate`.

A migration freezes the tables it touches (its own ``sa.Table`` definitions, never
:mod:`monitor.store.schema`, which moves on), so that it still does what it did once the schema
has grown past it.
"""

VERSION_TABLE = "monitor_alembic_version"
"""Not Alembic's default ``alembic_version``: the backend keeps its own revision there, and the
store and the backend's database may be one PostgreSQL database."""

HEAD_REVISION = "0007"
"""The newest revision in ``versions/``, so that a store already there is recognised without
loading Alembic (:func:`monitor.store.engine.create_schema`). A new revision changes it; a test
holds it to Alembic's own head."""
