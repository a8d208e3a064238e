"""The metadata store: SQLAlchemy tables, queries and migrations, on SQLite or PostgreSQL."""
