"""key service: KMS keys, aliases and key tags

Revision ID: 0004
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Byte order for the names listings page by, on PostgreSQL as on SQLite (see ecrd.metadata.kms_tables).
ALIAS_NAME = sa.String(length=256).with_variant(sa.String(length=256, collation="C"), "postgresql")
TAG_KEY = sa.String(length=128).with_variant(sa.String(length=128, collation="C"), "postgresql")

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kms_keys",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("key_usage", sa.String(length=32), nullable=False),
        sa.Column("key_spec", sa.String(length=32), nullable=False),
        sa.Column("key_manager", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("policy", sa.Text(), nullable=False),
        sa.Column("material", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("created_by", sa.String(length=2048), nullable=False),
        sa.Column("deletion_date", sa.Float(), nullable=True),
        sa.Column("pending_window_days", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kms_keys")),
    )
    with op.batch_alter_table("kms_keys", schema=None) as batch_op:
        batch_op.create_index("ix_kms_keys_deletion_date", ["deletion_date"], unique=False)

    op.create_table(
        "kms_aliases",
        sa.Column("name", ALIAS_NAME, nullable=False),
        sa.Column("key_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"], ["kms_keys.id"], name=op.f("fk_kms_aliases_key_id_kms_keys"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_kms_aliases")),
    )
    with op.batch_alter_table("kms_aliases", schema=None) as batch_op:
        batch_op.create_index("ix_kms_aliases_key_id", ["key_id"], unique=False)

    op.create_table(
        "kms_key_tags",
        sa.Column("key_id", sa.String(length=36), nullable=False),
        sa.Column("tag_key", TAG_KEY, nullable=False),
        sa.Column("tag_value", sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"], ["kms_keys.id"], name=op.f("fk_kms_key_tags_key_id_kms_keys"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("key_id", "tag_key", name=op.f("pk_kms_key_tags")),
    )


def downgrade() -> None:
    op.drop_table("kms_key_tags")
    with op.batch_alter_table("kms_aliases", schema=None) as batch_op:
        batch_op.drop_index("ix_kms_aliases_key_id")
    op.drop_table("kms_aliases")
    with op.batch_alter_table("kms_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_kms_keys_deletion_date")
    op.drop_table("kms_keys")
