"""The audit trail: every write and every denial, with who, what, where and the outcome."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, String, Table

from ecrd.metadata.tables import metadata

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("time", Float, nullable=False),
    Column("request_id", String(36), nullable=False),
    Column("principal", String(2048), nullable=False),
    Column("action", String(128), nullable=False),
    Column("repository", String(256)),
    Column("outcome", String(16), nullable=False),
    Column("status", Integer, nullable=False),
    Column("error_code", String(128)),
    Column("source_ip", String(64), nullable=False),
    # The registry the event happened in (ecrd.domain.records.AuditEvent.registry): whose trail it is on.
    Column("account_id", String(12)),
    Column("region", String(25)),
)
Index("ix_audit_events_time", audit_events.c.time)
Index("ix_audit_events_principal", audit_events.c.principal, audit_events.c.time)
Index("ix_audit_events_repository", audit_events.c.repository, audit_events.c.time)
Index("ix_audit_events_account_id", audit_events.c.account_id, audit_events.c.time)
