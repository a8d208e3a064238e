"""vulnerability database: OSV advisories, their packages, and imports

Revision ID: 0003_vulndb
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_vulndb"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vulndb_advisories",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("modified", sa.Float(), nullable=False),
        sa.Column("withdrawn", sa.Boolean(), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vulndb_advisories")),
    )
    op.create_table(
        "vulndb_advisory_packages",
        sa.Column("ecosystem", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("advisory_id", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["advisory_id"],
            ["vulndb_advisories.id"],
            name=op.f("fk_vulndb_advisory_packages_advisory_id_vulndb_advisories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("ecosystem", "name", "advisory_id", name=op.f("pk_vulndb_advisory_packages")),
    )
    op.create_index("ix_vulndb_advisory_packages_advisory", "vulndb_advisory_packages", ["advisory_id"])
    op.create_table(
        "vulndb_imports",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("imported_at", sa.Float(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("inserted", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vulndb_imports")),
    )


def downgrade() -> None:
    op.drop_table("vulndb_imports")
    op.drop_index("ix_vulndb_advisory_packages_advisory", table_name="vulndb_advisory_packages")
    op.drop_table("vulndb_advisory_packages")
    op.drop_table("vulndb_advisories")
