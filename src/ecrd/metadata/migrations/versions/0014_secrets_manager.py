"""The secrets service: secrets, their encrypted versions, staging labels and tags.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Byte order for the names listings page by, on PostgreSQL as on SQLite (see ecrd.metadata.secrets_tables).
SECRET_NAME = sa.String(length=512).with_variant(sa.String(length=512, collation="C"), "postgresql")
TAG_KEY = sa.String(length=128).with_variant(sa.String(length=128, collation="C"), "postgresql")

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "secrets",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", SECRET_NAME, nullable=False),
        sa.Column("arn", sa.String(length=2048), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("kms_key_id", sa.String(length=2048), nullable=True),
        sa.Column("secret_type", sa.String(length=256), nullable=True),
        sa.Column("policy", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("last_changed_at", sa.Float(), nullable=False),
        sa.Column("last_accessed_at", sa.Float(), nullable=True),
        sa.Column("deleted_at", sa.Float(), nullable=True),
        sa.Column("deletion_date", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_secrets")),
        sa.UniqueConstraint("name", name=op.f("uq_secrets_name")),
    )
    op.create_index("ix_secrets_created_at", "secrets", ["created_at", "id"])
    op.create_index("ix_secrets_deletion_date", "secrets", ["deletion_date"])

    op.create_table(
        "secret_versions",
        sa.Column("secret_id", sa.String(length=36), nullable=False),
        sa.Column("version_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("key_arn", sa.String(length=2048), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("sealed_value", sa.LargeBinary(), nullable=False),
        sa.Column("last_accessed_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["secret_id"], ["secrets.id"], name=op.f("fk_secret_versions_secret_id_secrets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("secret_id", "version_id", name=op.f("pk_secret_versions")),
    )
    op.create_index("ix_secret_versions_created_at", "secret_versions", ["secret_id", "created_at"])

    op.create_table(
        "secret_version_stages",
        sa.Column("secret_id", sa.String(length=36), nullable=False),
        sa.Column("stage", sa.String(length=256), nullable=False),
        sa.Column("version_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["secret_id"], ["secrets.id"], name=op.f("fk_secret_version_stages_secret_id_secrets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("secret_id", "stage", name=op.f("pk_secret_version_stages")),
    )

    op.create_table(
        "secret_tags",
        sa.Column("secret_id", sa.String(length=36), nullable=False),
        sa.Column("tag_key", TAG_KEY, nullable=False),
        sa.Column("tag_value", sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(
            ["secret_id"], ["secrets.id"], name=op.f("fk_secret_tags_secret_id_secrets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("secret_id", "tag_key", name=op.f("pk_secret_tags")),
    )


def downgrade() -> None:
    op.drop_table("secret_tags")
    op.drop_table("secret_version_stages")
    op.drop_index("ix_secret_versions_created_at", table_name="secret_versions")
    op.drop_table("secret_versions")
    op.drop_index("ix_secrets_deletion_date", table_name="secrets")
    op.drop_index("ix_secrets_created_at", table_name="secrets")
    op.drop_table("secrets")
