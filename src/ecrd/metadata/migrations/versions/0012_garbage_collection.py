"""Online garbage collection: "is this blob referenced anywhere?" answered by an index, the lease row that lets
one process of a cluster run a scheduled collection, and the record of each collection.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The references index leads with the repository; the collector asks across all repositories.
    op.create_index(
        "ix_manifest_references_target_digest",
        "manifest_references",
        ["target_digest", "kind"],
    )
    op.create_table(
        "schedules",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("due_at", sa.Float(), nullable=False),
        sa.Column("claimed_by", sa.String(length=128), nullable=True),
        sa.Column("claimed_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_schedules")),
    )
    op.create_table(
        "gc_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=False),
        sa.Column("worker", sa.String(length=128), nullable=False),
        sa.Column("dry_run", sa.Integer(), nullable=False),
        sa.Column("blobs", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("uploads", sa.Integer(), nullable=False),
        sa.Column("orphans", sa.Integer(), nullable=False),
        sa.Column("orphan_bytes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gc_runs")),
    )


def downgrade() -> None:
    op.drop_table("gc_runs")
    op.drop_table("schedules")
    op.drop_index("ix_manifest_references_target_digest", table_name="manifest_references")
