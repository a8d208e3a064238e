"""Schema migrations of the metadata store (Alembic)."""
