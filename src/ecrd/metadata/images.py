"""Queries on manifests, tags and what manifests reference."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, and_, delete, exists, func, insert, select, update
from sqlalchemy.engine import Row

from ecrd.domain.records import StoredManifest
from ecrd.metadata.tables import manifest_references, manifests, tags


def _to_manifest(row: Row[tuple[object, ...]]) -> StoredManifest:
    m = row._mapping
    return StoredManifest(
        repository_id=m["repository_id"],
        digest=m["digest"],
        media_type=m["media_type"],
        artifact_type=m["artifact_type"],
        subject_digest=m["subject_digest"],
        payload=bytes(m["payload"]),
        size=m["size"],
        image_size=m["image_size"],
        pushed_at=m["pushed_at"],
        last_pulled_at=m["last_pulled_at"],
    )


def get_manifest(conn: Connection, repository_id: int, digest: str) -> StoredManifest | None:
    row = conn.execute(
        select(manifests).where(manifests.c.repository_id == repository_id, manifests.c.digest == digest)
    ).first()
    return _to_manifest(row) if row else None


def get_manifest_by_tag(conn: Connection, repository_id: int, tag: str) -> StoredManifest | None:
    row = conn.execute(
        select(manifests)
        .join(
            tags,
            and_(tags.c.repository_id == manifests.c.repository_id, tags.c.manifest_digest == manifests.c.digest),
        )
        .where(tags.c.repository_id == repository_id, tags.c.name == tag)
    ).first()
    return _to_manifest(row) if row else None


def manifest_exists(conn: Connection, repository_id: int, digest: str) -> bool:
    return bool(
        conn.execute(
            select(exists().where(manifests.c.repository_id == repository_id, manifests.c.digest == digest))
        ).scalar()
    )


def existing_manifests(conn: Connection, repository_id: int, digests: Iterable[str]) -> set[str]:
    wanted = list(set(digests))
    if not wanted:
        return set()
    return set(
        conn.execute(
            select(manifests.c.digest).where(manifests.c.repository_id == repository_id, manifests.c.digest.in_(wanted))
        ).scalars()
    )


def insert_manifest(
    conn: Connection,
    record: StoredManifest,
    references: Iterable[tuple[str, str]],
) -> None:
    conn.execute(
        insert(manifests).values(
            repository_id=record.repository_id,
            digest=record.digest,
            media_type=record.media_type,
            artifact_type=record.artifact_type,
            subject_digest=record.subject_digest,
            payload=record.payload,
            size=record.size,
            image_size=record.image_size,
            pushed_at=record.pushed_at,
            last_pulled_at=None,
        )
    )
    rows = [
        {"repository_id": record.repository_id, "manifest_digest": record.digest, "target_digest": t, "kind": k}
        for t, k in dict(references).items()
    ]
    if rows:
        conn.execute(insert(manifest_references), rows)


def touch_pull_time(conn: Connection, repository_id: int, digest: str, now: float) -> None:
    conn.execute(
        update(manifests)
        .where(manifests.c.repository_id == repository_id, manifests.c.digest == digest)
        .values(last_pulled_at=now)
    )


def delete_manifest(conn: Connection, repository_id: int, digest: str) -> None:
    conn.execute(delete(tags).where(tags.c.repository_id == repository_id, tags.c.manifest_digest == digest))
    conn.execute(
        delete(manifest_references).where(
            manifest_references.c.repository_id == repository_id, manifest_references.c.manifest_digest == digest
        )
    )
    conn.execute(delete(manifests).where(manifests.c.repository_id == repository_id, manifests.c.digest == digest))


def parents_of(conn: Connection, repository_id: int, digest: str) -> list[str]:
    """Manifests (indexes) in the repository that list ``digest`` as a child."""
    return list(
        conn.execute(
            select(manifest_references.c.manifest_digest).where(
                manifest_references.c.repository_id == repository_id,
                manifest_references.c.target_digest == digest,
                manifest_references.c.kind == "manifest",
            )
        ).scalars()
    )


def referrers(conn: Connection, repository_id: int, subject: str) -> list[StoredManifest]:
    rows = conn.execute(
        select(manifests)
        .where(manifests.c.repository_id == repository_id, manifests.c.subject_digest == subject)
        .order_by(manifests.c.digest)
    )
    return [_to_manifest(row) for row in rows]


def blob_is_referenced(conn: Connection, repository_id: int, digest: str) -> bool:
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


# -- tags -------------------------------------------------------------------------------------------------


def get_tag_digest(conn: Connection, repository_id: int, tag: str) -> str | None:
    return conn.execute(
        select(tags.c.manifest_digest).where(tags.c.repository_id == repository_id, tags.c.name == tag)
    ).scalar_one_or_none()


def set_tag(conn: Connection, repository_id: int, tag: str, digest: str, now: float) -> None:
    """Point ``tag`` at ``digest``; the caller holds the repository's write lock, so this cannot race."""
    updated = conn.execute(
        update(tags)
        .where(tags.c.repository_id == repository_id, tags.c.name == tag)
        .values(manifest_digest=digest, updated_at=now)
    )
    if updated.rowcount == 0:
        conn.execute(insert(tags).values(repository_id=repository_id, name=tag, manifest_digest=digest, updated_at=now))


def delete_tag(conn: Connection, repository_id: int, tag: str) -> bool:
    result = conn.execute(delete(tags).where(tags.c.repository_id == repository_id, tags.c.name == tag))
    return bool(result.rowcount)


def list_tags(conn: Connection, repository_id: int, *, after: str | None, limit: int | None) -> list[str]:
    query = select(tags.c.name).where(tags.c.repository_id == repository_id).order_by(tags.c.name)
    if after is not None:
        query = query.where(tags.c.name > after)
    if limit is not None:
        query = query.limit(limit)
    return list(conn.execute(query).scalars())


def tags_of(conn: Connection, repository_id: int, digest: str) -> list[str]:
    return list(
        conn.execute(
            select(tags.c.name)
            .where(tags.c.repository_id == repository_id, tags.c.manifest_digest == digest)
            .order_by(tags.c.name)
        ).scalars()
    )


def tag_count(conn: Connection, repository_id: int, digest: str) -> int:
    return int(
        conn.execute(
            select(func.count())
            .select_from(tags)
            .where(tags.c.repository_id == repository_id, tags.c.manifest_digest == digest)
        ).scalar_one()
    )


def list_manifests(
    conn: Connection, repository_id: int, *, after: str | None = None, limit: int | None = None
) -> list[StoredManifest]:
    query = select(manifests).where(manifests.c.repository_id == repository_id).order_by(manifests.c.digest)
    if after is not None:
        query = query.where(manifests.c.digest > after)
    if limit is not None:
        query = query.limit(limit)
    return [_to_manifest(row) for row in conn.execute(query)]


def tags_by_digest(conn: Connection, repository_id: int) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for row in conn.execute(
        select(tags.c.manifest_digest, tags.c.name).where(tags.c.repository_id == repository_id).order_by(tags.c.name)
    ):
        out.setdefault(row.manifest_digest, []).append(row.name)
    return out
