"""The store's Alembic migrations (``versions/``), applied by :mod:`monitor.store.migrate`.

A migration freezes the tables it touches (its own ``sa.Table`` definitions, never
:mod:`monitor.store.schema`, which moves on), so that it still does what it did once the schema
has grown past it.
"""
