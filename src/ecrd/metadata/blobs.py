"""Queries on blobs, the links that let a repository read them, and upload sessions."""

from __future__ import annotations

from sqlalchemy import Connection, Executable, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from ecrd.domain.records import Repository, Upload
from ecrd.metadata.repositories import get_by_id
from ecrd.metadata.store import MetadataStore
from ecrd.metadata.tables import blobs, repository_blobs, uploads


def linked_digests(conn: Connection, repository_id: int, digests: list[str]) -> dict[str, int]:
    if not digests:
        return {}
    rows = conn.execute(
        select(blobs.c.digest, blobs.c.size)
        .join(repository_blobs, repository_blobs.c.digest == blobs.c.digest)
        .where(repository_blobs.c.repository_id == repository_id, repository_blobs.c.digest.in_(digests))
    )
    return {row.digest: row.size for row in rows}


def storage_by_location(conn: Connection) -> list[tuple[str, int, int]]:
    """(location, blobs, bytes) of the stored blobs, each counted once however many repositories link it."""
    rows = conn.execute(
        select(blobs.c.location, func.count(), func.coalesce(func.sum(blobs.c.size), 0)).group_by(blobs.c.location)
    ).all()
    return [(str(location), int(count), int(size)) for location, count, size in rows]


def blob_size(conn: Connection, digest: str) -> int | None:
    return conn.execute(select(blobs.c.size).where(blobs.c.digest == digest)).scalar_one_or_none()


# RETURNING tells whether a row was inserted; rowcount is not reliable for ON CONFLICT DO NOTHING. Built once
# per dialect, as are the statements of upload sessions below: building one costs more than running it.
_CLAIM_BLOB = {
    dialect: dialect_insert(blobs).on_conflict_do_nothing().returning(blobs.c.digest)
    for dialect, dialect_insert in (("sqlite", sqlite_insert), ("postgresql", pg_insert))
}


def claim_blob(conn: Connection, digest: str, size: int, now: float) -> bool:
    """Record a new blob; False when it is recorded already. On PostgreSQL a concurrent claimer waits on
    the row until this transaction ends (then sees it), so exactly one writer stores the content."""
    inserted = conn.execute(_CLAIM_BLOB[conn.dialect.name], {"digest": digest, "size": size, "created_at": now}).first()
    return inserted is not None


def lock_blob(conn: Connection, digest: str) -> None:
    """Hold the blob's row until the transaction ends, so one writer at a time replaces its stored copy
    (PostgreSQL; SQLite's write transaction is exclusive already). FOR NO KEY UPDATE: links being inserted
    meanwhile (their foreign key takes KEY SHARE) are not blocked."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(blobs.c.digest).where(blobs.c.digest == digest).with_for_update(key_share=True))


def link_blob(conn: Connection, repository_id: int, digest: str, now: float, wrapped_key: bytes | None) -> None:
    """Let the repository read the blob, with the blob's data key wrapped for it (replacing an old wrapping)."""
    updated = conn.execute(
        update(repository_blobs)
        .where(repository_blobs.c.repository_id == repository_id, repository_blobs.c.digest == digest)
        .values(wrapped_key=wrapped_key)
    )
    if updated.rowcount == 0:
        try:
            with conn.begin_nested():
                conn.execute(
                    insert(repository_blobs).values(
                        repository_id=repository_id, digest=digest, created_at=now, wrapped_key=wrapped_key
                    )
                )
        except IntegrityError:
            pass  # linked concurrently: the link exists, which is what we wanted


def _upsert_link(dialect: str) -> Executable:
    dialect_insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = dialect_insert(repository_blobs)
    return statement.on_conflict_do_update(
        index_elements=[repository_blobs.c.repository_id, repository_blobs.c.digest],
        set_={"wrapped_key": statement.excluded.wrapped_key},
    )


# Built once per dialect: building a statement costs more than running this one.
_UPSERT_LINK = {dialect: _upsert_link(dialect) for dialect in ("sqlite", "postgresql")}


def link_held_blob(conn: Connection, repository_id: int, digest: str, now: float, wrapped_key: bytes | None) -> None:
    """``link_blob`` for a blob whose row this transaction has claimed or holds, so it cannot vanish: one
    upsert, no savepoint (a pushed layer's completion spends most of its SQL time otherwise on these)."""
    conn.execute(
        _UPSERT_LINK[conn.dialect.name],
        {"repository_id": repository_id, "digest": digest, "created_at": now, "wrapped_key": wrapped_key},
    )


_LINKED_BLOB = (
    select(blobs.c.size, repository_blobs.c.wrapped_key)
    .join(repository_blobs, repository_blobs.c.digest == blobs.c.digest)
    .where(
        repository_blobs.c.repository_id == bindparam("repository_id"), repository_blobs.c.digest == bindparam("digest")
    )
)


def linked_blob(conn: Connection, repository_id: int, digest: str) -> tuple[int, bytes | None] | None:
    """(size, wrapped data key) of a blob the repository links, or None."""
    row = conn.execute(_LINKED_BLOB, {"repository_id": repository_id, "digest": digest}).first()
    return (row.size, row.wrapped_key) if row else None


def read_linked_blob(store: MetadataStore, repository_id: int, digest: str) -> tuple[int, bytes | None] | None:
    """linked_blob outside a transaction, for the reads of every pull (MetadataStore.fetch)."""
    rows = store.fetch(_LINKED_BLOB, {"repository_id": repository_id, "digest": digest})
    return (rows[0][0], None if rows[0][1] is None else bytes(rows[0][1])) if rows else None


def blob_key_holders(conn: Connection, digest: str) -> list[tuple[Repository, bytes]]:
    """Every repository holding a wrapping of the blob's data key."""
    rows = conn.execute(
        select(repository_blobs.c.repository_id, repository_blobs.c.wrapped_key).where(
            repository_blobs.c.digest == digest, repository_blobs.c.wrapped_key.is_not(None)
        )
    ).all()
    out = []
    for row in rows:
        repository = get_by_id(conn, row.repository_id)
        if repository is not None:
            out.append((repository, row.wrapped_key))
    return out


def forget_blob_keys(conn: Connection, digest: str) -> None:
    """The stored copy was replaced: wrappings of the old data key no longer open anything."""
    conn.execute(delete(repository_blobs).where(repository_blobs.c.digest == digest))


def unlink_blob(conn: Connection, repository_id: int, digest: str) -> bool:
    result = conn.execute(
        delete(repository_blobs).where(
            repository_blobs.c.repository_id == repository_id, repository_blobs.c.digest == digest
        )
    )
    return bool(result.rowcount)


# -- upload sessions --------------------------------------------------------------------------------------


_INSERT_UPLOAD = insert(uploads)


def insert_upload(conn: Connection, upload_id: str, repository_id: int, now: float, wrapped_key: bytes) -> Upload:
    conn.execute(
        _INSERT_UPLOAD,
        {
            "id": upload_id,
            "repository_id": repository_id,
            "size": 0,
            "created_at": now,
            "updated_at": now,
            "wrapped_key": wrapped_key,
        },
    )
    return Upload(upload_id, repository_id, 0, now, now, wrapped_key)


def get_upload(conn: Connection, upload_id: str) -> Upload | None:
    row = conn.execute(select(uploads).where(uploads.c.id == upload_id)).first()
    if row is None:
        return None
    m = row._mapping
    return Upload(m["id"], m["repository_id"], m["size"], m["created_at"], m["updated_at"], m["wrapped_key"])


_UPLOAD = select(
    uploads.c.id,
    uploads.c.repository_id,
    uploads.c.size,
    uploads.c.created_at,
    uploads.c.updated_at,
    uploads.c.wrapped_key,
).where(uploads.c.id == bindparam("upload_id"))


def read_upload(store: MetadataStore, upload_id: str) -> Upload | None:
    """get_upload outside a transaction (MetadataStore.fetch), for every PATCH and PUT of an upload."""
    rows = store.fetch(_UPLOAD, {"upload_id": upload_id})
    if not rows:
        return None
    upload_id, repository_id, size, created_at, updated_at, wrapped_key = rows[0]
    return Upload(upload_id, repository_id, size, created_at, updated_at, bytes(wrapped_key))


_ADVANCE_UPLOAD = (
    update(uploads)
    .where(uploads.c.id == bindparam("upload_id"), uploads.c.size == bindparam("expected_size"))
    .values(size=bindparam("new_size"), updated_at=bindparam("now"))
)
_DELETE_UPLOAD = delete(uploads).where(uploads.c.id == bindparam("upload_id"))


def advance_upload(conn: Connection, upload_id: str, expected_size: int, new_size: int, now: float) -> bool:
    """Compare-and-set the upload's size: False when another request moved it meanwhile."""
    result = conn.execute(
        _ADVANCE_UPLOAD,
        {"upload_id": upload_id, "expected_size": expected_size, "new_size": new_size, "now": now},
    )
    return bool(result.rowcount)


def delete_upload(conn: Connection, upload_id: str) -> None:
    conn.execute(_DELETE_UPLOAD, {"upload_id": upload_id})


def expired_uploads(conn: Connection, before: float, limit: int = 100) -> list[str]:
    return list(conn.execute(select(uploads.c.id).where(uploads.c.updated_at < before).limit(limit)).scalars())
