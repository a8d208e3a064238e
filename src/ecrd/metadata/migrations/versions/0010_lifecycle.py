"""Lifecycle policies, their previews and the pull-time update exclusions.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _repository_id(table: str) -> list[Any]:
    return [
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name=op.f(f"fk_{table}_repository_id_repositories"),
            ondelete="CASCADE",
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "lifecycle_policies",
        *_repository_id("lifecycle_policies"),
        sa.Column("policy_text", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("last_evaluated_at", sa.Float(), nullable=True),
        sa.Column("run_claimed_by", sa.String(length=128), nullable=True),
        sa.Column("run_claimed_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("repository_id", name=op.f("pk_lifecycle_policies")),
    )
    op.create_table(
        "lifecycle_previews",
        *_repository_id("lifecycle_previews"),
        sa.Column("policy_text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("repository_id", name=op.f("pk_lifecycle_previews")),
    )
    op.create_table(
        "lifecycle_preview_results",
        *_repository_id("lifecycle_preview_results"),
        sa.Column("digest", sa.String(length=200), nullable=False),
        sa.Column("image_tags", sa.Text(), nullable=False),
        sa.Column("tagged", sa.Boolean(), nullable=False),
        sa.Column("pushed_at", sa.Float(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("target_storage_class", sa.String(length=16), nullable=True),
        sa.Column("rule_priority", sa.Integer(), nullable=False),
        sa.Column("storage_class", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("repository_id", "digest", name=op.f("pk_lifecycle_preview_results")),
    )
    op.create_table(
        "lifecycle_actions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("time", sa.Float(), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("repository", sa.String(length=256), nullable=False),
        sa.Column("digest", sa.String(length=200), nullable=False),
        sa.Column("image_tags", sa.Text(), nullable=False),
        sa.Column("rule_priority", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("target_storage_class", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lifecycle_actions")),
    )
    op.create_index("ix_lifecycle_actions_time", "lifecycle_actions", ["time"])
    op.create_table(
        "pull_time_exclusions",
        sa.Column("principal_arn", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("principal_arn", name=op.f("pk_pull_time_exclusions")),
    )


def downgrade() -> None:
    op.drop_table("pull_time_exclusions")
    op.drop_index("ix_lifecycle_actions_time", table_name="lifecycle_actions")
    op.drop_table("lifecycle_actions")
    op.drop_table("lifecycle_preview_results")
    op.drop_table("lifecycle_previews")
    op.drop_table("lifecycle_policies")
