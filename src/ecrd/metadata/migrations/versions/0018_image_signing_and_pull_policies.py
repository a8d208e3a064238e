"""Image signing and pull policies: signing profiles, the signing status of images, and the image pull policy
of a repository and of a repository creation template.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signing_profiles",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kms_key", sa.String(length=2048), nullable=False),
        sa.Column("certificate", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_signing_profiles")),
    )
    op.create_table(
        "image_signing_statuses",
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=200), nullable=False),
        sa.Column("profile_arn", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("failure_reason", sa.String(length=1024), nullable=True),
        sa.Column("signature_digest", sa.String(length=200), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name=op.f("fk_image_signing_statuses_repository_id_repositories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("repository_id", "digest", "profile_arn", name=op.f("pk_image_signing_statuses")),
    )

    op.add_column("repositories", sa.Column("pull_policy", sa.Text(), nullable=True))
    op.add_column("repository_creation_templates", sa.Column("pull_policy", sa.Text(), nullable=True))


def downgrade() -> None:
    # SQLite drops a column in place (3.35+): a batch copy of the table would lose its generation triggers.
    op.drop_column("repositories", "pull_policy")
    op.drop_column("repository_creation_templates", "pull_policy")
    op.drop_table("image_signing_statuses")
    op.drop_table("signing_profiles")
