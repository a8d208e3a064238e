"""The audit trail.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("time", sa.Float(), nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("principal", sa.String(length=2048), nullable=False),
        sa.Column("action", sa.String(length=128), nullable=False),
        sa.Column("repository", sa.String(length=256), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("error_code", sa.String(length=128), nullable=True),
        sa.Column("source_ip", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index("ix_audit_events_time", "audit_events", ["time"])
    op.create_index("ix_audit_events_principal", "audit_events", ["principal", "time"])
    op.create_index("ix_audit_events_repository", "audit_events", ["repository", "time"])


def downgrade() -> None:
    op.drop_table("audit_events")
