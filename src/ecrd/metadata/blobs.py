"""Queries on blobs, the links that let a repository read them, and upload sessions."""

from __future__ import annotations

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from ecrd.domain.records import Upload
from ecrd.metadata.tables import blobs, repository_blobs, uploads


def linked_blob_size(conn: Connection, repository_id: int, digest: str) -> int | None:
    """The blob's size when ``repository_id`` links it; None otherwise (knowing a digest is not enough)."""
    return conn.execute(
        select(blobs.c.size)
        .join(repository_blobs, repository_blobs.c.digest == blobs.c.digest)
        .where(repository_blobs.c.repository_id == repository_id, repository_blobs.c.digest == digest)
    ).scalar_one_or_none()


def linked_digests(conn: Connection, repository_id: int, digests: list[str]) -> dict[str, int]:
    if not digests:
        return {}
    rows = conn.execute(
        select(blobs.c.digest, blobs.c.size)
        .join(repository_blobs, repository_blobs.c.digest == blobs.c.digest)
        .where(repository_blobs.c.repository_id == repository_id, repository_blobs.c.digest.in_(digests))
    )
    return {row.digest: row.size for row in rows}


def blob_size(conn: Connection, digest: str) -> int | None:
    return conn.execute(select(blobs.c.size).where(blobs.c.digest == digest)).scalar_one_or_none()


def record_blob(conn: Connection, digest: str, size: int, now: float) -> None:
    if blob_size(conn, digest) is None:
        try:
            with conn.begin_nested():
                conn.execute(insert(blobs).values(digest=digest, size=size, created_at=now))
        except IntegrityError:
            pass  # another writer recorded the same content first


def link_blob(conn: Connection, repository_id: int, digest: str, now: float) -> None:
    if linked_blob_size(conn, repository_id, digest) is None:
        try:
            with conn.begin_nested():
                conn.execute(
                    insert(repository_blobs).values(repository_id=repository_id, digest=digest, created_at=now)
                )
        except IntegrityError:
            pass  # linked concurrently: the link exists, which is what we wanted


def unlink_blob(conn: Connection, repository_id: int, digest: str) -> bool:
    result = conn.execute(
        delete(repository_blobs).where(
            repository_blobs.c.repository_id == repository_id, repository_blobs.c.digest == digest
        )
    )
    return bool(result.rowcount)


# -- upload sessions --------------------------------------------------------------------------------------


def insert_upload(conn: Connection, upload_id: str, repository_id: int, now: float) -> Upload:
    conn.execute(
        insert(uploads).values(id=upload_id, repository_id=repository_id, size=0, created_at=now, updated_at=now)
    )
    return Upload(upload_id, repository_id, 0, now, now)


def get_upload(conn: Connection, upload_id: str) -> Upload | None:
    row = conn.execute(select(uploads).where(uploads.c.id == upload_id)).first()
    if row is None:
        return None
    m = row._mapping
    return Upload(m["id"], m["repository_id"], m["size"], m["created_at"], m["updated_at"])


def advance_upload(conn: Connection, upload_id: str, expected_size: int, new_size: int, now: float) -> bool:
    """Compare-and-set the upload's size: False when another request moved it meanwhile."""
    result = conn.execute(
        update(uploads)
        .where(uploads.c.id == upload_id, uploads.c.size == expected_size)
        .values(size=new_size, updated_at=now)
    )
    return bool(result.rowcount)


def delete_upload(conn: Connection, upload_id: str) -> None:
    conn.execute(delete(uploads).where(uploads.c.id == upload_id))


def expired_uploads(conn: Connection, before: float, limit: int = 100) -> list[str]:
    return list(conn.execute(select(uploads.c.id).where(uploads.c.updated_at < before).limit(limit)).scalars())
