"""Keyset listings and registry-attached referrers: ListImages' (digest, tag) order served by an index, and
the mark on referrers the registry attached itself (a scan's SBOM), which are deleted with their subject.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("manifests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("registry_attached", sa.Boolean(), nullable=False, server_default=sa.false()))
    # The SBOMs attached before this revision are the ones the scans recorded.
    manifests = sa.table(
        "manifests",
        sa.column("repository_id"),
        sa.column("digest"),
        sa.column("subject_digest"),
        sa.column("registry_attached", sa.Boolean()),
    )
    scans = sa.table("image_scans", sa.column("repository_id"), sa.column("sbom_digest"))
    op.execute(
        sa.update(manifests)
        .where(
            manifests.c.subject_digest.is_not(None),
            sa.exists().where(
                scans.c.repository_id == manifests.c.repository_id, scans.c.sbom_digest == manifests.c.digest
            ),
        )
        .values(registry_attached=sa.true())
    )
    with op.batch_alter_table("tags", schema=None) as batch_op:
        batch_op.drop_index("ix_tags_manifest")
        batch_op.create_index("ix_tags_manifest", ["repository_id", "manifest_digest", "name"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tags", schema=None) as batch_op:
        batch_op.drop_index("ix_tags_manifest")
        batch_op.create_index("ix_tags_manifest", ["repository_id", "manifest_digest"], unique=False)
    with op.batch_alter_table("manifests", schema=None) as batch_op:
        batch_op.drop_column("registry_attached")
