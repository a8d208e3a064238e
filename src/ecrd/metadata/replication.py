"""Queries on replication: the peers, and the status of each image's replication per destination."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, select, update

from ecrd.domain.replication import IN_PROGRESS, Destination
from ecrd.metadata.replication_tables import image_replications as statuses
from ecrd.metadata.replication_tables import replication_peers as peers
from ecrd.metadata.tables import dialect_insert


@dataclass(frozen=True, slots=True)
class StoredPeer:
    destination: Destination
    url: str
    access_key_id: str
    sealed_secret: str
    created_at: float


@dataclass(frozen=True, slots=True)
class ReplicationState:
    destination: Destination
    status: str
    failure_code: str | None
    attempts: int


def _peer(row: object) -> StoredPeer:
    return StoredPeer(
        Destination(row.region, row.registry_id),  # type: ignore[attr-defined]
        row.url,  # type: ignore[attr-defined]
        row.access_key_id,  # type: ignore[attr-defined]
        row.sealed_secret,  # type: ignore[attr-defined]
        row.created_at,  # type: ignore[attr-defined]
    )


def put_peer(conn: Connection, peer: StoredPeer) -> None:
    values = {
        "registry_id": peer.destination.registry_id,
        "region": peer.destination.region,
        "url": peer.url,
        "access_key_id": peer.access_key_id,
        "sealed_secret": peer.sealed_secret,
        "created_at": peer.created_at,
    }
    statement = dialect_insert(conn)(peers).values(**values)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[peers.c.registry_id, peers.c.region],
            set_={k: v for k, v in values.items() if k not in ("registry_id", "region")},
        )
    )


def get_peer(conn: Connection, destination: Destination) -> StoredPeer | None:
    row = conn.execute(
        select(peers).where(peers.c.registry_id == destination.registry_id, peers.c.region == destination.region)
    ).first()
    return _peer(row) if row is not None else None


def list_peers(conn: Connection) -> list[StoredPeer]:
    return [_peer(row) for row in conn.execute(select(peers).order_by(peers.c.registry_id, peers.c.region))]


def delete_peer(conn: Connection, destination: Destination) -> bool:
    return bool(
        conn.execute(
            delete(peers).where(peers.c.registry_id == destination.registry_id, peers.c.region == destination.region)
        ).rowcount
    )


def start(conn: Connection, repository_id: int, digest: str, destination: Destination, now: float) -> None:
    """Mark the image's replication to ``destination`` in progress (again, after a push of a moved tag)."""
    values = {"status": IN_PROGRESS, "failure_code": None, "attempts": 0, "updated_at": now}
    statement = dialect_insert(conn)(statuses).values(
        repository_id=repository_id,
        digest=digest,
        region=destination.region,
        registry_id=destination.registry_id,
        **values,
    )
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[statuses.c.repository_id, statuses.c.digest, statuses.c.region, statuses.c.registry_id],
            set_=values,
        )
    )


def _where(repository_id: int, digest: str, destination: Destination):  # type: ignore[no-untyped-def]
    return (
        (statuses.c.repository_id == repository_id)
        & (statuses.c.digest == digest)
        & (statuses.c.region == destination.region)
        & (statuses.c.registry_id == destination.registry_id)
    )


def record_attempt(conn: Connection, repository_id: int, digest: str, destination: Destination, now: float) -> int:
    """Count one more attempt; the count so far (0 when the image's replication is no longer recorded)."""
    where = _where(repository_id, digest, destination)
    conn.execute(update(statuses).where(where).values(attempts=statuses.c.attempts + 1, updated_at=now))
    return int(conn.execute(select(statuses.c.attempts).where(where)).scalar_one_or_none() or 0)


def finish(
    conn: Connection,
    repository_id: int,
    digest: str,
    destination: Destination,
    status: str,
    failure_code: str | None,
    now: float,
) -> None:
    conn.execute(
        update(statuses)
        .where(_where(repository_id, digest, destination))
        .values(status=status, failure_code=failure_code, updated_at=now)
    )


def states(conn: Connection, repository_id: int, digest: str) -> list[ReplicationState]:
    rows = conn.execute(
        select(statuses)
        .where(statuses.c.repository_id == repository_id, statuses.c.digest == digest)
        .order_by(statuses.c.region, statuses.c.registry_id)
    )
    return [
        ReplicationState(Destination(row.region, row.registry_id), row.status, row.failure_code, row.attempts)
        for row in rows
    ]
