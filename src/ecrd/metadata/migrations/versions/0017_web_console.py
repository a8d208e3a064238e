"""The web console: IAM login profiles, the account password policy, console sessions and failed sign-ins

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "iam_login_profiles",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=False),
        sa.Column("previous_hashes", sa.Text(), nullable=False),
        sa.Column("password_reset_required", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("password_changed_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["iam_users.id"], name=op.f("fk_iam_login_profiles_user_id_iam_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_iam_login_profiles")),
    )
    op.create_table(
        "iam_password_policy",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("policy", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_iam_password_policy")),
    )
    op.create_table(
        "console_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=True),
        sa.Column("user_name", sa.String(length=128), nullable=True),
        sa.Column("access_key_id", sa.String(length=128), nullable=True),
        sa.Column("must_change_password", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_console_sessions")),
    )
    op.create_index("ix_console_sessions_expires_at", "console_sessions", ["expires_at"])
    op.create_table(
        "console_sign_in_failures",
        sa.Column("subject", sa.String(length=256), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_started_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("subject", name=op.f("pk_console_sign_in_failures")),
    )


def downgrade() -> None:
    op.drop_table("console_sign_in_failures")
    op.drop_index("ix_console_sessions_expires_at", table_name="console_sessions")
    op.drop_table("console_sessions")
    op.drop_table("iam_password_policy")
    op.drop_table("iam_login_profiles")
