"""Repository creation templates.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "repository_creation_templates",
        sa.Column("prefix", sa.String(length=256), nullable=False),
        sa.Column("applied_for", sa.Text(), nullable=False),
        sa.Column("description", sa.String(length=256), nullable=True),
        sa.Column("encryption_type", sa.String(length=16), nullable=False),
        sa.Column("kms_key", sa.String(length=2048), nullable=True),
        sa.Column("resource_tags", sa.Text(), nullable=False),
        sa.Column("image_tag_mutability", sa.String(length=32), nullable=False),
        sa.Column("mutability_exclusions", sa.Text(), nullable=False),
        sa.Column("repository_policy", sa.Text(), nullable=True),
        sa.Column("lifecycle_policy", sa.Text(), nullable=True),
        sa.Column("custom_role_arn", sa.String(length=2048), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("prefix", name=op.f("pk_repository_creation_templates")),
    )


def downgrade() -> None:
    op.drop_table("repository_creation_templates")
