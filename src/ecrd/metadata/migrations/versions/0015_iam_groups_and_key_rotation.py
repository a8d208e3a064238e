"""IAM groups (members, inline and attached policies), and the rotation of KMS keys: its schedule, the version of
the material in use, and the materials rotations made

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Byte order for the names listings page by, on PostgreSQL as on SQLite (see ecrd.metadata.iam_tables).
NAME_KEY = sa.String(length=128).with_variant(sa.String(length=128, collation="C"), "postgresql")

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# A member's identity policies are read through these tables, so they bump the access generation as the
# tables of migration 0008 do.
GROUP_TABLES = ("iam_groups", "iam_group_members", "iam_group_policies", "iam_group_attachments")
_BUMP = "UPDATE generations SET value = value + 1 WHERE scope = 'access'"


def upgrade() -> None:
    op.create_table(
        "iam_groups",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("name_key", NAME_KEY, nullable=False),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_iam_groups")),
        sa.UniqueConstraint("name_key", name=op.f("uq_iam_groups_name_key")),
    )
    op.create_table(
        "iam_group_members",
        sa.Column("group_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"], ["iam_groups.id"], name=op.f("fk_iam_group_members_group_id_iam_groups"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["iam_users.id"], name=op.f("fk_iam_group_members_user_id_iam_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("group_id", "user_id", name=op.f("pk_iam_group_members")),
    )
    op.create_index("ix_iam_group_members_user_id", "iam_group_members", ["user_id"])
    op.create_table(
        "iam_group_policies",
        sa.Column("group_id", sa.String(length=32), nullable=False),
        sa.Column("name_key", NAME_KEY, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"], ["iam_groups.id"], name=op.f("fk_iam_group_policies_group_id_iam_groups"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("group_id", "name_key", name=op.f("pk_iam_group_policies")),
    )
    op.create_table(
        "iam_group_attachments",
        sa.Column("group_id", sa.String(length=32), nullable=False),
        sa.Column("policy_ref", sa.String(length=2048), nullable=False),
        sa.Column("policy_id", sa.String(length=32), nullable=True),
        sa.Column("attached_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["policy_id"], ["iam_policies.id"], name=op.f("fk_iam_group_attachments_policy_id_iam_policies")
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["iam_groups.id"],
            name=op.f("fk_iam_group_attachments_group_id_iam_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", "policy_ref", name=op.f("pk_iam_group_attachments")),
    )
    op.create_index("ix_iam_group_attachments_policy_ref", "iam_group_attachments", ["policy_ref"])
    op.create_index("ix_iam_group_attachments_policy_id", "iam_group_attachments", ["policy_id"])
    if op.get_bind().dialect.name == "postgresql":
        for table in GROUP_TABLES:
            op.execute(
                f"CREATE TRIGGER ecrd_generation_{table} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION ecrd_bump_access_generation()"
            )
    else:
        for table in GROUP_TABLES:
            for event in ("insert", "update", "delete"):
                op.execute(
                    f"CREATE TRIGGER ecrd_generation_{table}_{event} AFTER {event.upper()} ON {table} "
                    f"BEGIN {_BUMP}; END"
                )
    # Automatic rotation of a key's material: the period while it is on (NULL: off) and when it is next due.
    # Plain ALTER TABLE (no batch copy, which would lose the table's generation triggers of migration 0008).
    op.add_column("kms_keys", sa.Column("rotation_period_days", sa.Integer(), nullable=True))
    op.add_column("kms_keys", sa.Column("next_rotation_at", sa.Float(), nullable=True))
    op.add_column("kms_keys", sa.Column("material_version", sa.Integer(), nullable=False, server_default=sa.text("0")))
    op.create_index("ix_kms_keys_next_rotation_at", "kms_keys", ["next_rotation_at"])
    op.create_table(
        "kms_key_materials",
        sa.Column("key_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("material", sa.Text(), nullable=False),
        sa.Column("rotation_type", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"], ["kms_keys.id"], name=op.f("fk_kms_key_materials_key_id_kms_keys"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("key_id", "version", name=op.f("pk_kms_key_materials")),
    )
    # AWS rotates its managed keys every year (decision 0026): the ones made before rotation existed are due
    # one year (31536000 s) after their creation, as they would have been.
    op.execute(
        "UPDATE kms_keys SET rotation_period_days = 365, next_rotation_at = created_at + 31536000 "
        "WHERE key_manager = 'AWS'"
    )


def downgrade() -> None:
    op.drop_table("kms_key_materials")
    op.drop_index("ix_kms_keys_next_rotation_at", table_name="kms_keys")
    op.drop_column("kms_keys", "material_version")
    op.drop_column("kms_keys", "next_rotation_at")
    op.drop_column("kms_keys", "rotation_period_days")
    for table in reversed(GROUP_TABLES):
        # Dropping a table drops its triggers on both back ends.
        op.drop_table(table)
