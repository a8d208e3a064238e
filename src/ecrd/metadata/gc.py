"""Queries of the online garbage collector, and the row locks that keep it from racing the registry's writers.

Every party that could make a blob needed again takes a lock on the blob's row (PostgreSQL; SQLite's write
transactions are exclusive already): a manifest writer ``FOR KEY SHARE`` on each blob it references, an upload
that finds the blob stored ``FOR NO KEY UPDATE``, a new link the foreign key's ``KEY SHARE``. The collector takes
``FOR UPDATE SKIP LOCKED``, which conflicts with all of them, and decides again under it: a blob some writer is
using right now is skipped until the next collection, and a writer that comes after sees what the collector did.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    Float,
    Integer,
    String,
    Table,
    and_,
    delete,
    exists,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ecrd.metadata.tables import blobs, manifest_references, metadata, repository_blobs, uploads

# A task that one process of the cluster runs every so often: whoever moves ``due_at`` on runs it (a lease row).
schedules = Table(
    "schedules",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("due_at", Float, nullable=False),
    Column("claimed_by", String(128)),
    Column("claimed_at", Float),
)

# One row per collection: what it freed (or, dry, would free) and who ran it.
gc_runs = Table(
    "gc_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float, nullable=False),
    Column("worker", String(128), nullable=False),
    Column("dry_run", Integer, nullable=False),
    Column("blobs", Integer, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("uploads", Integer, nullable=False),
    Column("orphans", Integer, nullable=False),
    Column("orphan_bytes", BigInteger, nullable=False),
)


def _is_postgresql(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


# -- what the collector may take ------------------------------------------------------------------------------


def blob_page(conn: Connection, after: str, limit: int) -> list[str]:
    """The next ``limit`` blob digests after ``after`` in digest order (a keyset page of the blobs table)."""
    return list(
        conn.execute(select(blobs.c.digest).where(blobs.c.digest > after).order_by(blobs.c.digest).limit(limit))
        .scalars()
        .all()
    )


def _collectable(cutoff: float) -> ColumnElement[bool]:
    """A blob no manifest of any repository references, stored before ``cutoff``, and linked (if at all) only
    before it: a blob uploaded or mounted later may be waiting for the manifest that will reference it."""
    return and_(
        blobs.c.created_at < cutoff,
        ~exists().where(manifest_references.c.target_digest == blobs.c.digest, manifest_references.c.kind == "blob"),
        ~exists().where(repository_blobs.c.digest == blobs.c.digest, repository_blobs.c.created_at >= cutoff),
    )


def collectable(conn: Connection, first: str, last: str, cutoff: float) -> list[tuple[str, int]]:
    """(digest, size) of the collectable blobs whose digests lie in ``first``..``last``."""
    rows = conn.execute(
        select(blobs.c.digest, blobs.c.size)
        .where(blobs.c.digest >= first, blobs.c.digest <= last, _collectable(cutoff))
        .order_by(blobs.c.digest)
    )
    return [(row.digest, row.size) for row in rows]


def take_collectable(conn: Connection, digests: Sequence[str], cutoff: float) -> list[tuple[str, int]]:
    """Lock the blobs' rows and decide again under the locks: (digest, size) of those still collectable. A row
    some writer holds is skipped, not waited for: the writer is about to use the blob."""
    if not digests:
        return []
    locking = select(blobs.c.digest).where(blobs.c.digest.in_(digests)).order_by(blobs.c.digest)
    if _is_postgresql(conn):
        locking = locking.with_for_update(skip_locked=True)
    held = list(conn.execute(locking).scalars())
    if not held:
        return []
    # A statement of its own: under READ COMMITTED it sees every reference committed before the lock was granted.
    rows = conn.execute(
        select(blobs.c.digest, blobs.c.size)
        .where(blobs.c.digest.in_(held), _collectable(cutoff))
        .order_by(blobs.c.digest)
    )
    return [(row.digest, row.size) for row in rows]


def unlink_everywhere(conn: Connection, digests: Sequence[str]) -> None:
    """No repository links these blobs any more: from the commit on, no manifest can reference them."""
    if digests:
        conn.execute(delete(repository_blobs).where(repository_blobs.c.digest.in_(digests)))


def take_unlinked(conn: Connection, digests: Sequence[str]) -> list[tuple[str, int]]:
    """Lock the blobs' rows (skipping held ones) and keep those no repository links and no manifest references."""
    if not digests:
        return []
    query = (
        select(blobs.c.digest, blobs.c.size)
        .where(
            blobs.c.digest.in_(digests),
            ~exists().where(repository_blobs.c.digest == blobs.c.digest),
            ~exists().where(
                manifest_references.c.target_digest == blobs.c.digest, manifest_references.c.kind == "blob"
            ),
        )
        .order_by(blobs.c.digest)
    )
    if _is_postgresql(conn):
        # FOR UPDATE OF blobs alone: the NOT EXISTS subqueries lock nothing, and a link inserted meanwhile waits
        # on this lock (its foreign key), so the answer holds until the commit.
        query = query.with_for_update(skip_locked=True, of=blobs)
    return [(row.digest, row.size) for row in conn.execute(query)]


def delete_rows(conn: Connection, digests: Sequence[str]) -> None:
    if digests:
        conn.execute(delete(blobs).where(blobs.c.digest.in_(digests)))


def recorded(conn: Connection, digests: Sequence[str]) -> set[str]:
    """Those of ``digests`` that have a blob row."""
    if not digests:
        return set()
    return set(conn.execute(select(blobs.c.digest).where(blobs.c.digest.in_(digests))).scalars())


def claim_absent(conn: Connection, digest: str, now: float) -> bool:
    """Insert a placeholder row for a blob that has none, so no upload can commit this digest until the
    transaction ends (an upload's own claim waits on it); False when a row exists (or an upload holds it).
    The caller deletes the placeholder before committing."""
    dialect_insert = pg_insert if _is_postgresql(conn) else sqlite_insert
    inserted = conn.execute(
        dialect_insert(blobs)
        .values(digest=digest, size=0, created_at=now)
        .on_conflict_do_nothing()
        .returning(blobs.c.digest)
    ).first()
    return inserted is not None


def upload_sessions(conn: Connection, upload_ids: Sequence[str]) -> set[str]:
    """Those of ``upload_ids`` that are live sessions."""
    if not upload_ids:
        return set()
    return set(conn.execute(select(uploads.c.id).where(uploads.c.id.in_(upload_ids))).scalars())


def count_expired_uploads(conn: Connection, before: float) -> int:
    query = select(func.count()).select_from(uploads).where(uploads.c.updated_at < before)
    return int(conn.execute(query).scalar_one())


# -- the writers' side ----------------------------------------------------------------------------------------


def hold_for_reference(conn: Connection, digests: Sequence[str]) -> None:
    """A manifest about to reference these blobs keeps the collector off them until it commits (FOR KEY SHARE:
    uploads and links of the same blobs go on meanwhile). In digest order, as the collector locks."""
    if digests and _is_postgresql(conn):
        conn.execute(
            select(blobs.c.digest)
            .where(blobs.c.digest.in_(sorted(set(digests))))
            .order_by(blobs.c.digest)
            .with_for_update(read=True, key_share=True)
        )


def hold_stored_blob(conn: Connection, digest: str) -> bool:
    """Hold the blob's row until the transaction ends (an upload replacing or re-linking its stored copy);
    False when there is no row any more: a collection deleted it meanwhile, and the upload claims it anew."""
    query = select(blobs.c.digest).where(blobs.c.digest == digest)
    if _is_postgresql(conn):
        query = query.with_for_update(key_share=True)
    return conn.execute(query).first() is not None


# -- the schedule and the record -----------------------------------------------------------------------------


def claim_schedule(conn: Connection, name: str, worker: str, now: float, interval: float) -> bool:
    """Whether this caller runs the task now: it is due, and this caller moved it on by ``interval`` first. A
    task seen for the first time becomes due one interval later."""
    moved = conn.execute(
        update(schedules)
        .where(schedules.c.name == name, schedules.c.due_at <= now)
        .values(due_at=now + interval, claimed_by=worker, claimed_at=now)
    )
    if moved.rowcount:
        return True
    dialect_insert = pg_insert if _is_postgresql(conn) else sqlite_insert
    conn.execute(dialect_insert(schedules).values(name=name, due_at=now + interval).on_conflict_do_nothing())
    return False


def record_run(
    conn: Connection,
    *,
    started_at: float,
    finished_at: float,
    worker: str,
    dry_run: bool,
    counts: dict[str, int],
) -> None:
    conn.execute(
        insert(gc_runs).values(
            started_at=started_at, finished_at=finished_at, worker=worker, dry_run=int(dry_run), **counts
        )
    )


def runs(conn: Connection, limit: int = 20) -> list[dict[str, object]]:
    """The latest collections, newest first."""
    rows = conn.execute(select(gc_runs).order_by(gc_runs.c.id.desc()).limit(limit))
    return [dict(row._mapping) for row in rows]
