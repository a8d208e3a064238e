"""Tables of background work: the job queue, the scans it runs and the inventories they keep."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, ForeignKey, Index, Integer, String, Table, Text

from ecrd.metadata.tables import DIGEST, metadata

# Background work, claimed with row locks so any number of processes can work the queue.
jobs = Table(
    "jobs",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False),  # queued | running | done | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("run_after", Float, nullable=False),
    Column("claimed_at", Float),
    Column("claimed_by", String(64)),
    Column("last_error", Text),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)
Index("ix_jobs_ready", jobs.c.status, jobs.c.run_after)

image_scans = Table(
    "image_scans",
    metadata,
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("digest", DIGEST, primary_key=True),
    Column("status", String(32), nullable=False),
    Column("description", Text, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("completed_at", Float),
    Column("vulnerability_source_updated_at", Float),
    Column("severity_counts", Text),  # JSON {"HIGH": 2, …}
    Column("findings", Text),  # JSON list of ECR ImageScanFinding objects
    Column("sbom_digest", DIGEST),
    # JSON list of enhanced-scanning observations (``ecrd.scanner.enhanced.observe``), open and closed.
    Column("enhanced_findings", Text),
)

# The inventory each scan read from an image's layers (``ecrd.scanner.enhanced.inventory_document``), kept so
# continuous scanning re-matches it against new advisories without reading a layer again; and the advisory
# generation it was last matched at.
image_inventories = Table(
    "image_inventories",
    metadata,
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("digest", DIGEST, primary_key=True),
    Column("inventory", Text, nullable=False),
    Column("matched_generation", Integer, nullable=False),
)
