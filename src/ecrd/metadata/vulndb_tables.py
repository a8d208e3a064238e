"""The vulnerability database's schema: OSV advisory records, the packages each is filed under, and imports.

A record is kept whole as its JSON text (the scanner reads the OSV shape); ``vulndb_advisory_packages`` indexes
it by (ecosystem, package name) so a scan fetches only the records for the packages it found. Names are stored
as ``ecrd.scanner.advisories.normalize_package_name`` spells them (PEP 503 for PyPI). ``modified`` is the
record's own ``modified`` time in epoch seconds: a re-import replaces a record only with a newer one.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, ForeignKey, Index, Integer, String, Table, Text

from ecrd.metadata.tables import metadata

ADVISORY_ID = String(128)

vulndb_advisories = Table(
    "vulndb_advisories",
    metadata,
    Column("id", ADVISORY_ID, primary_key=True),
    Column("modified", Float, nullable=False),
    Column("withdrawn", Boolean, nullable=False, default=False),
    Column("record", Text, nullable=False),
)

vulndb_advisory_packages = Table(
    "vulndb_advisory_packages",
    metadata,
    # The primary key's leading columns serve the scanner's lookup by (ecosystem, name).
    Column("ecosystem", String(100), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("advisory_id", ADVISORY_ID, ForeignKey("vulndb_advisories.id", ondelete="CASCADE"), primary_key=True),
)
Index("ix_vulndb_advisory_packages_advisory", vulndb_advisory_packages.c.advisory_id)

vulndb_imports = Table(
    "vulndb_imports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", Text, nullable=False),
    Column("imported_at", Float, nullable=False),
    Column("records", Integer, nullable=False),
    Column("inserted", Integer, nullable=False),
    Column("updated", Integer, nullable=False),
    Column("unchanged", Integer, nullable=False),
    Column("skipped", Integer, nullable=False),
)
