"""Replication: peers of other ecrd deployments, each image's replication status per destination, and backfills.

Revision ID: 0022
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0020"
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

    op.create_table(
        "replication_backfills",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("region", sa.String(length=25), nullable=False),
        sa.Column("registry_id", sa.String(length=12), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("completed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replication_backfills")),
    )
    op.create_table(
        "replication_backfill_results",
        sa.Column("backfill_id", sa.String(length=36), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("repository_name", sa.String(length=256), nullable=False),
        sa.Column("digest", sa.String(length=160), nullable=False),
        sa.Column("tag", sa.String(length=300), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["backfill_id"],
            ["replication_backfills.id"],
            name=op.f("fk_replication_backfill_results_backfill_id_replication_backfills"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("backfill_id", "number", name=op.f("pk_replication_backfill_results")),
    )


def downgrade() -> None:
    op.drop_table("replication_backfill_results")
    op.drop_table("replication_backfills")
    op.drop_table("image_replications")
    op.drop_table("replication_peers")
