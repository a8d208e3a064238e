"""The archive storage class: where each image and blob is kept.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("manifests") as manifests:
        manifests.add_column(sa.Column("image_status", sa.String(length=16), nullable=False, server_default="ACTIVE"))
        manifests.add_column(sa.Column("last_archived_at", sa.Float(), nullable=True))
        manifests.add_column(sa.Column("last_activated_at", sa.Float(), nullable=True))
    with op.batch_alter_table("blobs") as blobs:
        blobs.add_column(sa.Column("location", sa.String(length=8), nullable=False, server_default="hot"))
    # The archive's sweep and fsck ask "which blobs are in the archive" without reading every row.
    op.create_index("ix_blobs_location", "blobs", ["location"])


def downgrade() -> None:
    op.drop_index("ix_blobs_location", table_name="blobs")
    with op.batch_alter_table("blobs") as blobs:
        blobs.drop_column("location")
    with op.batch_alter_table("manifests") as manifests:
        manifests.drop_column("last_activated_at")
        manifests.drop_column("last_archived_at")
        manifests.drop_column("image_status")
