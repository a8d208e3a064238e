"""Queries on the audit trail."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Connection, insert, select

from ecrd.domain.records import AuditEvent
from ecrd.domain.registries import RegistryId
from ecrd.metadata.audit_tables import audit_events


def insert_event(conn: Connection, event: AuditEvent) -> None:
    conn.execute(
        insert(audit_events).values(
            time=event.time,
            request_id=event.request_id,
            principal=event.principal[:2048],
            action=event.action[:128],
            repository=event.repository,
            outcome=event.outcome,
            status=event.status,
            error_code=event.error_code,
            source_ip=event.source_ip[:64],
            account_id=event.registry.account_id if event.registry else None,
            region=event.registry.region if event.registry else None,
        )
    )


def on_trail_of(account_id: str) -> ColumnElement[bool]:
    """The events an account's trail shows, as CloudTrail's does: what happened in its registries, and what its
    own principals did anywhere (a cross-account call is on the trails of both accounts)."""
    return (
        (audit_events.c.account_id == account_id)
        | audit_events.c.principal.startswith(f"arn:aws:iam::{account_id}:", autoescape=True)
        | audit_events.c.principal.startswith(f"arn:aws:sts::{account_id}:", autoescape=True)
    )


def query_events(
    conn: Connection,
    *,
    principal: str | None = None,
    repository: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    account_id: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int = 100,
) -> list[AuditEvent]:
    query = select(audit_events).order_by(audit_events.c.time.desc(), audit_events.c.id.desc()).limit(limit)
    if principal is not None:
        query = query.where(audit_events.c.principal == principal)
    if repository is not None:
        query = query.where(audit_events.c.repository == repository)
    if action is not None:
        query = query.where(audit_events.c.action == action)
    if outcome is not None:
        query = query.where(audit_events.c.outcome == outcome)
    if account_id is not None:
        query = query.where(on_trail_of(account_id))
    if since is not None:
        query = query.where(audit_events.c.time >= since)
    if until is not None:
        query = query.where(audit_events.c.time < until)
    return [
        AuditEvent(
            r.time,
            r.request_id,
            r.principal,
            r.action,
            r.repository,
            r.outcome,
            r.status,
            r.error_code,
            r.source_ip,
            RegistryId(r.account_id, r.region) if r.account_id and r.region else None,
        )
        for r in conn.execute(query)
    ]
