"""Change counters for per-process caches: the "access" generation, bumped by triggers.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# What the access caches hold is read from these tables (a later migration that adds such a table adds its
# triggers too). Images (tags, manifests, blob links) are not cached: their reads stay single queries.
ACCESS_TABLES = (
    "repositories",
    "repository_tags",
    "registry_settings",
    "iam_users",
    "iam_roles",
    "iam_policies",
    "iam_policy_versions",
    "iam_user_policies",
    "iam_role_policies",
    "iam_user_attachments",
    "iam_role_attachments",
    "iam_access_keys",
    "kms_keys",
    "kms_aliases",
    "kms_key_tags",
)
_BUMP = "UPDATE generations SET value = value + 1 WHERE scope = 'access'"


def upgrade() -> None:
    op.create_table(
        "generations",
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("scope", name=op.f("pk_generations")),
    )
    op.execute("INSERT INTO generations (scope, value) VALUES ('access', 0)")
    # Triggers, not application code, bump the counter: no write path (a later feature, fsck, a cascade)
    # can forget to, and the bump commits with the change it announces.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION ecrd_bump_access_generation() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN {_BUMP}; RETURN NULL; END $$"
        )
        for table in ACCESS_TABLES:
            op.execute(
                f"CREATE TRIGGER ecrd_generation_{table} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION ecrd_bump_access_generation()"
            )
    else:
        for table in ACCESS_TABLES:
            for event in ("insert", "update", "delete"):
                op.execute(
                    f"CREATE TRIGGER ecrd_generation_{table}_{event} AFTER {event.upper()} ON {table} "
                    f"BEGIN {_BUMP}; END"
                )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ACCESS_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS ecrd_generation_{table} ON {table}")
        op.execute("DROP FUNCTION IF EXISTS ecrd_bump_access_generation()")
    else:
        for table in ACCESS_TABLES:
            for event in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS ecrd_generation_{table}_{event}")
    op.drop_table("generations")
