"""Tables of registry events: the outbox written with each event's cause, the webhooks, and their deliveries."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Float, ForeignKey, Index, Integer, String, Table, Text

from ecrd.metadata.tables import metadata

# The outbox: one row per event, inserted in the transaction of the change it reports.
events = Table(
    "events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False),
    Column("detail_type", String(64), nullable=False),
    Column("repository", String(256)),
    Column("time", Float, nullable=False),
    Column("body", Text, nullable=False),  # the EventBridge envelope, JSON
    # Whether the dispatcher has made this event's deliveries (one per webhook whose filter takes it).
    Column("dispatched", Boolean, nullable=False, default=False),
)
Index("ix_events_dispatched", events.c.dispatched, events.c.id)
Index("ix_events_time", events.c.time)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("url", String(2048), nullable=False),
    Column("secret", Text, nullable=False),  # sealed with a key of the master key, bound to the webhook's id
    Column("detail_types", Text),  # JSON list; null: every type
    Column("repositories", Text),  # JSON list of wildcard patterns; null: every repository
    Column("created_at", Float, nullable=False),
)

# One row per (event, webhook), claimed with a lease by the dispatcher of any process.
event_deliveries = Table(
    "event_deliveries",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column(
        "event_id",
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("events.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("webhook_id", Integer, ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(16), nullable=False),  # pending | delivering | delivered | dead
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False),
    Column("claimed_by", String(64)),
    Column("claimed_at", Float),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)
Index("ix_event_deliveries_ready", event_deliveries.c.status, event_deliveries.c.next_attempt_at)
Index("ix_event_deliveries_event", event_deliveries.c.event_id)
