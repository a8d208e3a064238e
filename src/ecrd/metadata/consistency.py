"""Queries for ``ecrd fsck``: whole-table views of blobs, links, references, tags and uploads, and the guarded
deletes its repairs make (each re-checks, under the locks the registry's writers take, what the check saw)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, and_, delete, exists, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ecrd.metadata.tables import (
    blobs,
    manifest_references,
    manifests,
    repositories,
    repository_blobs,
    tags,
    uploads,
)


@dataclass(frozen=True, slots=True)
class LinkRow:
    repository_id: int
    digest: str
    has_key: bool


@dataclass(frozen=True, slots=True)
class ReferenceRow:
    repository_id: int
    manifest_digest: str
    target_digest: str
    kind: str


@dataclass(frozen=True, slots=True)
class TagRow:
    repository_id: int
    name: str
    manifest_digest: str


@dataclass(frozen=True, slots=True)
class UploadRow:
    id: str
    repository_id: int
    size: int
    updated_at: float


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The metadata side of the check, read in one transaction."""

    repository_names: dict[int, str]
    blobs: dict[str, int]
    links: list[LinkRow]
    manifests: set[tuple[int, str]]
    references: list[ReferenceRow]
    tags: list[TagRow]
    uploads: list[UploadRow]


def snapshot(conn: Connection) -> Snapshot:
    return Snapshot(
        repository_names={row.id: row.name for row in conn.execute(select(repositories.c.id, repositories.c.name))},
        blobs={row.digest: row.size for row in conn.execute(select(blobs.c.digest, blobs.c.size))},
        links=[
            LinkRow(row.repository_id, row.digest, row.wrapped_key is not None)
            for row in conn.execute(
                select(repository_blobs.c.repository_id, repository_blobs.c.digest, repository_blobs.c.wrapped_key)
            )
        ],
        manifests={
            (row.repository_id, row.digest)
            for row in conn.execute(select(manifests.c.repository_id, manifests.c.digest))
        },
        references=[
            ReferenceRow(row.repository_id, row.manifest_digest, row.target_digest, row.kind)
            for row in conn.execute(select(manifest_references))
        ],
        tags=[
            TagRow(row.repository_id, row.name, row.manifest_digest)
            for row in conn.execute(select(tags.c.repository_id, tags.c.name, tags.c.manifest_digest))
        ],
        uploads=[
            UploadRow(row.id, row.repository_id, row.size, row.updated_at)
            for row in conn.execute(select(uploads.c.id, uploads.c.repository_id, uploads.c.size, uploads.c.updated_at))
        ],
    )


def upload_exists(conn: Connection, upload_id: str) -> bool:
    return bool(conn.execute(select(exists().where(uploads.c.id == upload_id))).scalar())


def upload_updated_at(conn: Connection, upload_id: str) -> float | None:
    return conn.execute(select(uploads.c.updated_at).where(uploads.c.id == upload_id)).scalar_one_or_none()


def lock_repositories(conn: Connection, repository_ids: list[int]) -> None:
    """Take the repositories' row locks, as a manifest push does (PostgreSQL; SQLite's write transaction is
    exclusive already), so no push references a blob while a repair removes it."""
    if conn.dialect.name == "postgresql" and repository_ids:
        conn.execute(
            select(repositories.c.id)
            .where(repositories.c.id.in_(sorted(repository_ids)))
            .order_by(repositories.c.id)
            .with_for_update()
        )


def blob_is_referenced_anywhere(conn: Connection, digest: str) -> bool:
    return bool(
        conn.execute(
            select(exists().where(manifest_references.c.target_digest == digest, manifest_references.c.kind == "blob"))
        ).scalar()
    )


def link_is_referenced(conn: Connection, repository_id: int, digest: str) -> bool:
    return bool(
        conn.execute(
            select(
                exists().where(
                    manifest_references.c.repository_id == repository_id,
                    manifest_references.c.target_digest == digest,
                    manifest_references.c.kind == "blob",
                )
            )
        ).scalar()
    )


def linking_repositories(conn: Connection, digest: str) -> list[int]:
    return list(
        conn.execute(select(repository_blobs.c.repository_id).where(repository_blobs.c.digest == digest)).scalars()
    )


def lock_blob_row(conn: Connection, digest: str) -> int | None:
    """The blob's recorded size, with its row locked (PostgreSQL); None when it has no row."""
    query = select(blobs.c.size).where(blobs.c.digest == digest)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return conn.execute(query).scalar_one_or_none()


def hold_absent_blob(conn: Connection, digest: str) -> bool:
    """True when the blob has no row, and no upload can record one until this transaction ends.

    A committing upload renames its file into place inside the transaction that inserts the row, so a file
    without a row may be one being committed right now. Inserting the row ourselves waits for such a
    transaction (PostgreSQL's unique index; SQLite's write lock excludes it anyway) and then holds the digest;
    the row is removed again before commit, so the transaction changes nothing but what the caller deletes.
    """
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    inserted = conn.execute(
        dialect_insert(blobs)
        .values(digest=digest, size=-1, created_at=0.0)
        .on_conflict_do_nothing()
        .returning(blobs.c.digest)
    ).first()
    return inserted is not None


def release_absent_blob(conn: Connection, digest: str) -> None:
    conn.execute(delete(blobs).where(blobs.c.digest == digest, blobs.c.size == -1))


def delete_blob_and_links(conn: Connection, digest: str) -> None:
    conn.execute(delete(repository_blobs).where(repository_blobs.c.digest == digest))
    conn.execute(delete(blobs).where(blobs.c.digest == digest))


def delete_link(conn: Connection, repository_id: int, digest: str) -> bool:
    result = conn.execute(
        delete(repository_blobs).where(
            repository_blobs.c.repository_id == repository_id, repository_blobs.c.digest == digest
        )
    )
    return bool(result.rowcount)


def delete_dangling_tag(conn: Connection, repository_id: int, name: str, manifest_digest: str) -> bool:
    """Delete the tag if it still points at ``manifest_digest`` and that manifest is still missing."""
    result = conn.execute(
        delete(tags).where(
            tags.c.repository_id == repository_id,
            tags.c.name == name,
            tags.c.manifest_digest == manifest_digest,
            ~exists().where(and_(manifests.c.repository_id == repository_id, manifests.c.digest == manifest_digest)),
        )
    )
    return bool(result.rowcount)


def delete_upload_row(conn: Connection, upload_id: str) -> bool:
    return bool(conn.execute(delete(uploads).where(uploads.c.id == upload_id)).rowcount)
