"""identity: IAM users, roles, policies and access keys

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Byte order for the names listings page by, on PostgreSQL as on SQLite (see ecrd.metadata.iam_tables).
NAME_KEY = sa.String(length=128).with_variant(sa.String(length=128, collation="C"), "postgresql")

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "iam_users",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("name_key", NAME_KEY, nullable=False),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_iam_users")),
        sa.UniqueConstraint("name_key", name=op.f("uq_iam_users_name_key")),
    )
    op.create_table(
        "iam_roles",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("name_key", NAME_KEY, nullable=False),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=False),
        sa.Column("max_session_duration", sa.Integer(), nullable=False),
        sa.Column("assume_role_policy", sa.Text(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_iam_roles")),
        sa.UniqueConstraint("name_key", name=op.f("uq_iam_roles_name_key")),
    )
    op.create_table(
        "iam_policies",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("name_key", NAME_KEY, nullable=False),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("default_version_id", sa.String(length=16), nullable=False),
        sa.Column("next_version", sa.Integer(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_iam_policies")),
        sa.UniqueConstraint("name_key", name=op.f("uq_iam_policies_name_key")),
    )
    op.create_table(
        "iam_policy_versions",
        sa.Column("policy_id", sa.String(length=32), nullable=False),
        sa.Column("version_id", sa.String(length=16), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["iam_policies.id"],
            name=op.f("fk_iam_policy_versions_policy_id_iam_policies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("policy_id", "version_id", name=op.f("pk_iam_policy_versions")),
    )
    op.create_table(
        "iam_user_policies",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("name_key", NAME_KEY, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["iam_users.id"], name=op.f("fk_iam_user_policies_user_id_iam_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "name_key", name=op.f("pk_iam_user_policies")),
    )
    op.create_table(
        "iam_role_policies",
        sa.Column("role_id", sa.String(length=32), nullable=False),
        sa.Column("name_key", NAME_KEY, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["role_id"], ["iam_roles.id"], name=op.f("fk_iam_role_policies_role_id_iam_roles"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("role_id", "name_key", name=op.f("pk_iam_role_policies")),
    )
    op.create_table(
        "iam_user_attachments",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("policy_ref", sa.String(length=2048), nullable=False),
        sa.Column("policy_id", sa.String(length=32), nullable=True),
        sa.Column("attached_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["policy_id"], ["iam_policies.id"], name=op.f("fk_iam_user_attachments_policy_id_iam_policies")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["iam_users.id"], name=op.f("fk_iam_user_attachments_user_id_iam_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "policy_ref", name=op.f("pk_iam_user_attachments")),
    )
    with op.batch_alter_table("iam_user_attachments", schema=None) as batch_op:
        batch_op.create_index("ix_iam_user_attachments_policy_ref", ["policy_ref"], unique=False)
        batch_op.create_index("ix_iam_user_attachments_policy_id", ["policy_id"], unique=False)

    op.create_table(
        "iam_role_attachments",
        sa.Column("role_id", sa.String(length=32), nullable=False),
        sa.Column("policy_ref", sa.String(length=2048), nullable=False),
        sa.Column("policy_id", sa.String(length=32), nullable=True),
        sa.Column("attached_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["policy_id"], ["iam_policies.id"], name=op.f("fk_iam_role_attachments_policy_id_iam_policies")
        ),
        sa.ForeignKeyConstraint(
            ["role_id"], ["iam_roles.id"], name=op.f("fk_iam_role_attachments_role_id_iam_roles"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("role_id", "policy_ref", name=op.f("pk_iam_role_attachments")),
    )
    with op.batch_alter_table("iam_role_attachments", schema=None) as batch_op:
        batch_op.create_index("ix_iam_role_attachments_policy_ref", ["policy_ref"], unique=False)
        batch_op.create_index("ix_iam_role_attachments_policy_id", ["policy_id"], unique=False)

    op.create_table(
        "iam_access_keys",
        sa.Column("access_key_id", sa.String(length=128), nullable=False),
        sa.Column("principal", sa.String(length=8), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=True),
        sa.Column("role_id", sa.String(length=32), nullable=True),
        sa.Column("session_name", sa.String(length=64), nullable=True),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("session_token_hash", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["role_id"], ["iam_roles.id"], name=op.f("fk_iam_access_keys_role_id_iam_roles"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["iam_users.id"], name=op.f("fk_iam_access_keys_user_id_iam_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("access_key_id", name=op.f("pk_iam_access_keys")),
    )
    with op.batch_alter_table("iam_access_keys", schema=None) as batch_op:
        batch_op.create_index("ix_iam_access_keys_expires_at", ["expires_at"], unique=False)
        batch_op.create_index("ix_iam_access_keys_role_id", ["role_id"], unique=False)
        batch_op.create_index("ix_iam_access_keys_user_id", ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("iam_access_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_iam_access_keys_user_id")
        batch_op.drop_index("ix_iam_access_keys_role_id")
        batch_op.drop_index("ix_iam_access_keys_expires_at")

    op.drop_table("iam_access_keys")
    with op.batch_alter_table("iam_role_attachments", schema=None) as batch_op:
        batch_op.drop_index("ix_iam_role_attachments_policy_id")
        batch_op.drop_index("ix_iam_role_attachments_policy_ref")

    op.drop_table("iam_role_attachments")
    with op.batch_alter_table("iam_user_attachments", schema=None) as batch_op:
        batch_op.drop_index("ix_iam_user_attachments_policy_id")
        batch_op.drop_index("ix_iam_user_attachments_policy_ref")

    op.drop_table("iam_user_attachments")
    op.drop_table("iam_role_policies")
    op.drop_table("iam_user_policies")
    op.drop_table("iam_policy_versions")
    op.drop_table("iam_policies")
    op.drop_table("iam_roles")
    op.drop_table("iam_users")
