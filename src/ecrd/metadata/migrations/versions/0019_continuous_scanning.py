"""Continuous scanning: the inventory of each scanned image and its enhanced findings.

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "image_inventories",
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=200), nullable=False),
        sa.Column("inventory", sa.Text(), nullable=False),
        sa.Column("matched_generation", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name=op.f("fk_image_inventories_repository_id_repositories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("repository_id", "digest", name=op.f("pk_image_inventories")),
    )
    with op.batch_alter_table("image_scans") as batch:
        batch.add_column(sa.Column("enhanced_findings", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("image_scans") as batch:
        batch.drop_column("enhanced_findings")
    op.drop_table("image_inventories")
