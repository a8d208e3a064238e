"""Queries on the event outbox, the webhooks and their deliveries: record, dispatch, claim (SKIP LOCKED on
PostgreSQL), settle, list, redeliver and prune."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, and_, delete, exists, insert, or_, select, update

from ecrd.domain.events import EventFilter, RegistryEvent
from ecrd.metadata.events_tables import event_deliveries as deliveries
from ecrd.metadata.events_tables import events, webhooks

# The one statement on the push path, built once: SQLAlchemy caches its compiled form.
_INSERT_EVENT = insert(events)

PENDING, DELIVERING, DELIVERED, DEAD = "pending", "delivering", "delivered", "dead"
DELIVERY_STATUSES = (PENDING, DELIVERING, DELIVERED, DEAD)


@dataclass(frozen=True, slots=True)
class Webhook:
    id: int
    url: str
    sealed_secret: str
    filter: EventFilter
    created_at: float


@dataclass(frozen=True, slots=True)
class Delivery:
    """A delivery as the dispatcher claimed it: what to send, where, and with which (sealed) secret."""

    id: int
    webhook_id: int
    url: str
    sealed_secret: str
    event_id: str
    body: str
    attempts: int


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """A delivery as ``ecrd events`` shows it."""

    id: int
    webhook_id: int
    url: str
    event_id: str
    detail_type: str
    repository: str | None
    status: str
    attempts: int
    next_attempt_at: float
    last_status: int | None
    last_error: str | None
    updated_at: float


def record_event(conn: Connection, event: RegistryEvent) -> None:
    conn.execute(
        _INSERT_EVENT,
        {
            "event_id": event.event_id,
            "detail_type": event.detail_type,
            "repository": event.repository,
            "time": event.time,
            "body": event.body,
            "dispatched": False,
        },
    )


def recent_events(
    conn: Connection, *, detail_type: str | None = None, repository: str | None = None, limit: int = 100
) -> list[RegistryEvent]:
    query = select(events).order_by(events.c.id.desc()).limit(limit)
    if detail_type is not None:
        query = query.where(events.c.detail_type == detail_type)
    if repository is not None:
        query = query.where(events.c.repository == repository)
    return [RegistryEvent(r.event_id, r.detail_type, r.repository, r.time, r.body) for r in conn.execute(query)]


# -- webhooks ------------------------------------------------------------------------------------------------


def add_webhook(conn: Connection, url: str, event_filter: EventFilter, now: float) -> int:
    """A new webhook, its secret still empty: the sealed secret is bound to the id, set by ``set_secret``."""
    result = conn.execute(
        insert(webhooks).values(
            url=url,
            secret="",
            detail_types=json.dumps(list(event_filter.detail_types)) if event_filter.detail_types else None,
            repositories=json.dumps(list(event_filter.repositories)) if event_filter.repositories else None,
            created_at=now,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def set_secret(conn: Connection, webhook_id: int, sealed: str) -> None:
    conn.execute(update(webhooks).where(webhooks.c.id == webhook_id).values(secret=sealed))


def list_webhooks(conn: Connection) -> list[Webhook]:
    return [
        Webhook(
            r.id,
            r.url,
            r.secret,
            EventFilter(tuple(json.loads(r.detail_types or "[]")), tuple(json.loads(r.repositories or "[]"))),
            r.created_at,
        )
        for r in conn.execute(select(webhooks).order_by(webhooks.c.id))
    ]


def remove_webhook(conn: Connection, webhook_id: int) -> bool:
    conn.execute(delete(deliveries).where(deliveries.c.webhook_id == webhook_id))
    return bool(conn.execute(delete(webhooks).where(webhooks.c.id == webhook_id)).rowcount)


# -- dispatch and delivery -----------------------------------------------------------------------------------


def dispatch(conn: Connection, now: float, limit: int) -> int:
    """Make the deliveries of up to ``limit`` events not yet dispatched, one per webhook whose filter takes the
    event, and mark the events dispatched. Rows are locked (SKIP LOCKED) so processes dispatch apart."""
    query = (
        select(events.c.id, events.c.detail_type, events.c.repository)
        .where(events.c.dispatched.is_(False))
        .order_by(events.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    pending = conn.execute(query).all()
    if not pending:
        return 0
    hooks = list_webhooks(conn)
    rows = [
        {
            "event_id": row.id,
            "webhook_id": hook.id,
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for row in pending
        for hook in hooks
        if hook.filter.matches(row.detail_type, row.repository)
    ]
    if rows:
        conn.execute(insert(deliveries), rows)
    conn.execute(update(events).where(events.c.id.in_([row.id for row in pending])).values(dispatched=True))
    return len(pending)


def _ready(now: float, lease_seconds: float) -> ColumnElement[bool]:
    return or_(
        and_(deliveries.c.status == PENDING, deliveries.c.next_attempt_at <= now),
        and_(deliveries.c.status == DELIVERING, deliveries.c.claimed_at < now - lease_seconds),
    )


def work_waiting(conn: Connection, now: float, lease_seconds: float) -> bool:
    """Whether an event waits to be dispatched or a delivery is due: a read, so that an idle dispatcher never
    takes the writers' lock."""
    undispatched = select(events.c.id).where(events.c.dispatched.is_(False)).limit(1)
    due = select(deliveries.c.id).where(_ready(now, lease_seconds)).limit(1)
    return conn.execute(undispatched).first() is not None or conn.execute(due).first() is not None


def claim_deliveries(conn: Connection, worker: str, now: float, lease_seconds: float, limit: int) -> list[Delivery]:
    """Up to ``limit`` deliveries that are due, or whose claimer's lease ran out (it died mid-delivery):
    claimed for ``worker``, their attempt counted."""
    query = (
        select(deliveries.c.id, deliveries.c.attempts)
        .where(_ready(now, lease_seconds))
        .order_by(deliveries.c.next_attempt_at)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(of=deliveries, skip_locked=True)
    claimed = conn.execute(query).all()
    if not claimed:
        return []
    ids = [row.id for row in claimed]
    conn.execute(
        update(deliveries)
        .where(deliveries.c.id.in_(ids))
        .values(
            status=DELIVERING,
            claimed_by=worker,
            claimed_at=now,
            attempts=deliveries.c.attempts + 1,
            updated_at=now,
        )
    )
    rows = conn.execute(
        select(
            deliveries.c.id,
            deliveries.c.webhook_id,
            deliveries.c.attempts,
            webhooks.c.url,
            webhooks.c.secret,
            events.c.event_id,
            events.c.body,
        )
        .join(webhooks, webhooks.c.id == deliveries.c.webhook_id)
        .join(events, events.c.id == deliveries.c.event_id)
        .where(deliveries.c.id.in_(ids))
        .order_by(deliveries.c.id)
    )
    return [Delivery(r.id, r.webhook_id, r.url, r.secret, r.event_id, r.body, r.attempts) for r in rows]


def settle(
    conn: Connection,
    delivery_id: int,
    worker: str,
    now: float,
    *,
    status: str,
    next_attempt_at: float | None = None,
    last_status: int | None = None,
    last_error: str | None = None,
) -> bool:
    """Record an attempt's outcome, if ``worker`` still holds the delivery (a claim whose lease ran out may have
    passed to another process, whose outcome then counts)."""
    result = conn.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery_id, deliveries.c.status == DELIVERING, deliveries.c.claimed_by == worker)
        .values(
            status=status,
            next_attempt_at=now if next_attempt_at is None else next_attempt_at,
            claimed_by=None,
            claimed_at=None,
            last_status=last_status,
            last_error=last_error[:2000] if last_error else None,
            updated_at=now,
        )
    )
    return bool(result.rowcount)


def list_deliveries(
    conn: Connection, *, statuses: tuple[str, ...] = DELIVERY_STATUSES, limit: int = 100
) -> list[DeliveryRecord]:
    query = (
        select(
            deliveries,
            webhooks.c.url,
            events.c.event_id.label("event_uuid"),
            events.c.detail_type,
            events.c.repository,
        )
        .join(webhooks, webhooks.c.id == deliveries.c.webhook_id)
        .join(events, events.c.id == deliveries.c.event_id)
        .where(deliveries.c.status.in_(statuses))
        .order_by(deliveries.c.id.desc())
        .limit(limit)
    )
    return [
        DeliveryRecord(
            r.id,
            r.webhook_id,
            r.url,
            r.event_uuid,
            r.detail_type,
            r.repository,
            r.status,
            r.attempts,
            r.next_attempt_at,
            r.last_status,
            r.last_error,
            r.updated_at,
        )
        for r in conn.execute(query)
    ]


def redeliver(conn: Connection, now: float, *, delivery_id: int | None = None) -> int:
    """Queue dead-lettered deliveries again (one, or all), with a fresh count of attempts."""
    query = update(deliveries).where(deliveries.c.status == DEAD)
    if delivery_id is not None:
        query = query.where(deliveries.c.id == delivery_id)
    return int(
        conn.execute(
            query.values(status=PENDING, attempts=0, next_attempt_at=now, last_error=None, updated_at=now)
        ).rowcount
    )


def prune(conn: Connection, before: float, limit: int) -> int:
    """Delete up to ``limit`` events older than ``before`` that are dispatched and have no delivery still to
    make, with their deliveries (delivered or dead-lettered)."""
    open_delivery = exists().where(deliveries.c.event_id == events.c.id, deliveries.c.status.in_([PENDING, DELIVERING]))
    ids = list(
        conn.execute(
            select(events.c.id)
            .where(events.c.time < before, events.c.dispatched.is_(True), ~open_delivery)
            .order_by(events.c.id)
            .limit(limit)
        ).scalars()
    )
    if not ids:
        return 0
    conn.execute(delete(deliveries).where(deliveries.c.event_id.in_(ids)))
    conn.execute(delete(events).where(events.c.id.in_(ids)))
    return len(ids)
