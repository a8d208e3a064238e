"""The pull-through cache: rules, blob fetch claims and tag check times.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pull_through_cache_rules",
        sa.Column("ecr_repository_prefix", sa.String(length=32), nullable=False),
        sa.Column("upstream_registry_url", sa.String(length=1024), nullable=False),
        sa.Column("upstream_registry", sa.String(length=64), nullable=True),
        sa.Column("upstream_repository_prefix", sa.String(length=32), nullable=False),
        sa.Column("credential_arn", sa.String(length=612), nullable=True),
        sa.Column("custom_role_arn", sa.String(length=2048), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("ecr_repository_prefix", name=op.f("pk_pull_through_cache_rules")),
    )
    op.create_table(
        "pull_through_fetches",
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=160), nullable=False),
        sa.Column("claim", sa.String(length=36), nullable=False),
        sa.Column("claimed_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name=op.f("fk_pull_through_fetches_repository_id_repositories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("repository_id", "digest", name=op.f("pk_pull_through_fetches")),
    )
    op.create_table(
        "pull_through_tag_checks",
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=300), nullable=False),
        sa.Column("checked_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name=op.f("fk_pull_through_tag_checks_repository_id_repositories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("repository_id", "tag", name=op.f("pk_pull_through_tag_checks")),
    )


def downgrade() -> None:
    op.drop_table("pull_through_tag_checks")
    op.drop_table("pull_through_fetches")
    op.drop_table("pull_through_cache_rules")
