"""Queries on replication: the peers (of the whole deployment), the status of each image's replication per
destination (of a repository, so of its registry), and the backfills (each of the registry whose images it
replicates: its ``account_id`` and ``source_region``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, select, update
from sqlalchemy.sql.elements import ColumnElement

from ecrd.domain.registries import RegistryId
from ecrd.domain.replication import IN_PROGRESS, Backfill, BackfillResult, Destination, ReplicationState
from ecrd.metadata.replication_tables import image_replications as statuses
from ecrd.metadata.replication_tables import replication_backfill_results as results
from ecrd.metadata.replication_tables import replication_backfills as backfills
from ecrd.metadata.replication_tables import replication_peers as peers
from ecrd.metadata.tables import dialect_insert, manifests, tags


@dataclass(frozen=True, slots=True)
class StoredPeer:
    destination: Destination
    url: str
    access_key_id: str
    sealed_secret: str
    created_at: float


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


# -- backfills ------------------------------------------------------------------------------------------------


def _backfill(row: Any) -> Backfill:
    return Backfill(
        row.id,
        Destination(row.region, row.registry_id),
        row.status,
        row.failure_code,
        row.total,
        row.completed,
        row.failed,
        row.started_at,
        row.ended_at,
    )


def _of_source(registry: RegistryId) -> ColumnElement[bool]:
    return and_(backfills.c.account_id == registry.account_id, backfills.c.source_region == registry.region)


def insert_backfill(conn: Connection, source: RegistryId, backfill: Backfill) -> None:
    """A backfill of the images of ``source``."""
    conn.execute(
        insert(backfills).values(
            id=backfill.id,
            account_id=source.account_id,
            source_region=source.region,
            region=backfill.destination.region,
            registry_id=backfill.destination.registry_id,
            status=backfill.status,
            failure_code=None,
            total=0,
            completed=0,
            failed=0,
            started_at=backfill.started_at,
            ended_at=None,
        )
    )


def get_backfill(
    conn: Connection, source: RegistryId, backfill_id: str, *, for_update: bool = False
) -> Backfill | None:
    """The backfill of ``source``'s images of that id (None for another registry's)."""
    query = select(backfills).where(_of_source(source), backfills.c.id == backfill_id)
    row = conn.execute(query.with_for_update() if for_update else query).first()
    return _backfill(row) if row is not None else None


def backfill_source(conn: Connection, backfill_id: str) -> RegistryId | None:
    """The registry whose images the backfill replicates (a backfill job's payload names only the backfill)."""
    row = conn.execute(
        select(backfills.c.account_id, backfills.c.source_region).where(backfills.c.id == backfill_id)
    ).first()
    return RegistryId(row.account_id, row.source_region) if row is not None else None


def backfills_in(conn: Connection, source: RegistryId, statuses_: Sequence[str]) -> list[Backfill]:
    rows = conn.execute(select(backfills).where(_of_source(source), backfills.c.status.in_(statuses_)))
    return [_backfill(row) for row in rows]


def backfill_page(
    conn: Connection, source: RegistryId, *, after: tuple[float, str] | None, limit: int
) -> list[Backfill]:
    """The backfills of ``source``'s images newest first (by start, then id), those after ``after``."""
    query = (
        select(backfills)
        .where(_of_source(source))
        .order_by(backfills.c.started_at.desc(), backfills.c.id.desc())
        .limit(limit)
    )
    if after is not None:
        started, backfill_id = after
        query = query.where(
            (backfills.c.started_at < started) | ((backfills.c.started_at == started) & (backfills.c.id < backfill_id))
        )
    return [_backfill(row) for row in conn.execute(query)]


def set_backfill(conn: Connection, backfill_id: str, **values: object) -> None:
    conn.execute(update(backfills).where(backfills.c.id == backfill_id).values(**values))


def candidate_images(conn: Connection, repository_ids: Sequence[int]) -> list[tuple[int, str, str | None]]:
    """Every image and tag of these repositories, as (repository id, digest, tag or None for an untagged image),
    leaving out the referrers the registry attached itself."""
    query = (
        select(manifests.c.repository_id, manifests.c.digest, tags.c.name)
        .select_from(
            manifests.outerjoin(
                tags,
                (tags.c.repository_id == manifests.c.repository_id) & (tags.c.manifest_digest == manifests.c.digest),
            )
        )
        .where(manifests.c.repository_id.in_(repository_ids), manifests.c.registry_attached.is_(False))
        .order_by(manifests.c.repository_id, manifests.c.digest, tags.c.name)
    )
    return [(row[0], row[1], row[2]) for row in conn.execute(query)]


def add_backfill_results(
    conn: Connection, backfill_id: str, first: int, rows: Sequence[tuple[int, str, str, str | None]]
) -> None:
    """Pending results numbered from ``first``: (repository id, repository name, digest, tag)."""
    if rows:
        conn.execute(
            insert(results),
            [
                {
                    "backfill_id": backfill_id,
                    "number": first + offset,
                    "repository_id": repository_id,
                    "repository_name": name,
                    "digest": digest,
                    "tag": tag,
                    "status": "PENDING",
                    "failure_code": None,
                }
                for offset, (repository_id, name, digest, tag) in enumerate(rows)
            ],
        )


def pending_results(conn: Connection, backfill_id: str, limit: int) -> list[BackfillResult]:
    query = (
        select(results)
        .where(results.c.backfill_id == backfill_id, results.c.status == "PENDING")
        .order_by(results.c.number)
        .limit(limit)
    )
    return [_result(row) for row in conn.execute(query)]


def finish_result(conn: Connection, backfill_id: str, number: int, status: str, failure_code: str | None) -> None:
    conn.execute(
        update(results)
        .where(results.c.backfill_id == backfill_id, results.c.number == number)
        .values(status=status, failure_code=failure_code)
    )


def result_page(
    conn: Connection, backfill_id: str, *, status: str | None, after: int | None, limit: int
) -> list[BackfillResult]:
    query = select(results).where(results.c.backfill_id == backfill_id, results.c.status != "PENDING")
    if status is not None:
        query = query.where(results.c.status == status)
    if after is not None:
        query = query.where(results.c.number > after)
    return [_result(row) for row in conn.execute(query.order_by(results.c.number).limit(limit))]


def failure_codes(conn: Connection, backfill_id: str) -> list[str]:
    query = (
        select(results.c.failure_code)
        .where(results.c.backfill_id == backfill_id, results.c.failure_code.is_not(None))
        .distinct()
        .order_by(results.c.failure_code)
    )
    return [str(code) for code in conn.execute(query).scalars()]


def _result(row: Any) -> BackfillResult:
    return BackfillResult(
        row.number, row.repository_id, row.repository_name, row.digest, row.tag, row.status, row.failure_code
    )
