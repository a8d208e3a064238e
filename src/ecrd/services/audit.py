"""The audit trail as a service: events recorded by the request log, queried by `ecrd audit`."""

from __future__ import annotations

from ecrd.domain.records import AuditEvent
from ecrd.metadata import audit as audit_queries
from ecrd.metadata.store import MetadataStore


class AuditTrail:
    def __init__(self, store: MetadataStore) -> None:
        self.store = store

    def record(self, event: AuditEvent) -> None:
        # Recorded after the change it describes committed, without waiting for the disk: the next flushed
        # commit carries it there (a write request would otherwise pay a second fsync for its audit line).
        with self.store.write(flush=False) as conn:
            audit_queries.insert_event(conn, event)

    def events(
        self,
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
        with self.store.read() as conn:
            return audit_queries.query_events(
                conn,
                principal=principal,
                repository=repository,
                action=action,
                outcome=outcome,
                account_id=account_id,
                since=since,
                until=until,
                limit=limit,
            )
