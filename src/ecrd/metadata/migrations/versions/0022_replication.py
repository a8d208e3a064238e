"""Replication: peers of other ecrd deployments, and each image's replication status per destination.

Revision ID: 0022
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "replication_peers",
        sa.Column("registry_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=25), nullable=False),
        sa.Column("url", sa.String(length=1024), nullable=False),
        sa.Column("access_key_id", sa.String(length=128), nullable=False),
        sa.Column("sealed_secret", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("registry_id", "region", name=op.f("pk_replication_peers")),
    )
    op.create_table(
        "image_replications",
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=160), nullable=False),
        sa.Column("region", sa.String(length=25), nullable=False),
        sa.Column("registry_id", sa.String(length=12), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name=op.f("fk_image_replications_repository_id_repositories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("repository_id", "digest", "region", "registry_id", name=op.f("pk_image_replications")),
    )


def downgrade() -> None:
    op.drop_table("image_replications")
    op.drop_table("replication_peers")
