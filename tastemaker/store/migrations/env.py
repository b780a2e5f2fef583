"""Alembic environment: runs migrations on the connection the caller provides."""

from __future__ import annotations

from alembic import context

from tastemaker.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only when someone runs the alembic CLI directly
    raise RuntimeError("Run migrations through `tastemaker db upgrade`, which passes a connection.")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
