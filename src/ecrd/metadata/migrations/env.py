"""Alembic environment: migrations run on the connection the store hands over."""

from __future__ import annotations

from alembic import context

from ecrd.metadata.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("ecrd migrations run through MetadataStore.migrate()")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
