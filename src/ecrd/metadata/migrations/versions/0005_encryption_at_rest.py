"""Encryption at rest: wrapped data keys of uploads, blob links and repository manifests.

Revision ID: 0005
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("repositories") as batch:
        batch.add_column(sa.Column("manifest_key", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("repository_blobs") as batch:
        batch.add_column(sa.Column("wrapped_key", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("uploads") as batch:
        batch.add_column(sa.Column("wrapped_key", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("uploads") as batch:
        batch.drop_column("wrapped_key")
    with op.batch_alter_table("repository_blobs") as batch:
        batch.drop_column("wrapped_key")
    with op.batch_alter_table("repositories") as batch:
        batch.drop_column("manifest_key")
