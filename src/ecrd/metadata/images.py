"""Queries on manifests, tags and what manifests reference."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.engine import Row

from ecrd.domain import media_types as mt
from ecrd.domain.records import StoredManifest
from ecrd.metadata.store import MetadataStore
from ecrd.metadata.tables import manifest_references, manifests, tags

# StoredManifest's fields, in its order: every manifest query selects these (a Row or a driver's plain tuple).
_RECORD = (
    manifests.c.repository_id,
    manifests.c.digest,
    manifests.c.media_type,
    manifests.c.artifact_type,
    manifests.c.subject_digest,
    manifests.c.payload,
    manifests.c.size,
    manifests.c.image_size,
    manifests.c.pushed_at,
    manifests.c.last_pulled_at,
    manifests.c.image_status,
    manifests.c.last_archived_at,
    manifests.c.last_activated_at,
)
# The same without the payload, for listings (which never show it): a page reads no sealed manifests.
_LISTED = tuple(literal(b"") if column is manifests.c.payload else column for column in _RECORD)


def _to_manifest(row: Row[tuple[object, ...]] | tuple[Any, ...]) -> StoredManifest:
    (
        repository_id,
        digest,
        media_type,
        artifact_type,
        subject_digest,
        payload,
        size,
        image_size,
        pushed_at,
        last_pulled_at,
        image_status,
        last_archived_at,
        last_activated_at,
    ) = tuple(row)
    return StoredManifest(
        repository_id,
        digest,
        media_type,
        artifact_type,
        subject_digest,
        bytes(payload),
        size,
        image_size,
        pushed_at,
        last_pulled_at,
        image_status,
        last_archived_at,
        last_activated_at,
    )


# Reads on every pull are built once and run by MetadataStore.fetch (the read_* functions); the same statements
# serve the Connection functions inside transactions.
_MANIFEST = select(*_RECORD).where(
    manifests.c.repository_id == bindparam("repository_id"), manifests.c.digest == bindparam("digest")
)
_TAGGED_AS = and_(tags.c.repository_id == manifests.c.repository_id, tags.c.manifest_digest == manifests.c.digest)
_MANIFEST_BY_TAG = (
    select(*_RECORD)
    .join(tags, and_(tags.c.repository_id == manifests.c.repository_id, tags.c.manifest_digest == manifests.c.digest))
    .where(tags.c.repository_id == bindparam("repository_id"), tags.c.name == bindparam("tag"))
)
_TAGS = (
    select(tags.c.name)
    .where(tags.c.repository_id == bindparam("repository_id"), tags.c.name > bindparam("after"))
    .order_by(tags.c.name)
)
_TAGS_LIMITED = _TAGS.limit(bindparam("limit"))
_TAGS_OF_IMAGE = (
    select(tags.c.name)
    .where(tags.c.repository_id == bindparam("repository_id"), tags.c.manifest_digest == bindparam("digest"))
    .order_by(tags.c.name)
)


def _only_manifest(rows: Sequence[Row[tuple[object, ...]] | tuple[Any, ...]]) -> StoredManifest | None:
    # Both statements select by a unique key: one row or none.
    return _to_manifest(rows[0]) if rows else None


def get_manifest(conn: Connection, repository_id: int, digest: str) -> StoredManifest | None:
    return _only_manifest(conn.execute(_MANIFEST, {"repository_id": repository_id, "digest": digest}).all())


def read_manifest(store: MetadataStore, repository_id: int, digest: str) -> StoredManifest | None:
    return _only_manifest(store.fetch(_MANIFEST, {"repository_id": repository_id, "digest": digest}))


def get_manifest_by_tag(conn: Connection, repository_id: int, tag: str) -> StoredManifest | None:
    return _only_manifest(conn.execute(_MANIFEST_BY_TAG, {"repository_id": repository_id, "tag": tag}).all())


def read_manifest_by_tag(store: MetadataStore, repository_id: int, tag: str) -> StoredManifest | None:
    return _only_manifest(store.fetch(_MANIFEST_BY_TAG, {"repository_id": repository_id, "tag": tag}))


def manifests_by_digests(
    conn: Connection, repository_id: int, digests: Iterable[str], *, payloads: bool
) -> dict[str, StoredManifest]:
    """The stored images among ``digests`` (a batch of image ids), by digest: one query. Without ``payloads``
    their payloads are left out (a listing shows none)."""
    wanted = list(set(digests))
    if not wanted:
        return {}
    query = select(*(_RECORD if payloads else _LISTED)).where(
        manifests.c.repository_id == repository_id, manifests.c.digest.in_(wanted)
    )
    return {manifest.digest: manifest for manifest in map(_to_manifest, conn.execute(query))}


def manifests_by_tags(
    conn: Connection, repository_id: int, names: Iterable[str], *, payloads: bool
) -> dict[str, StoredManifest]:
    """The images the tags among ``names`` point at, by tag: one query."""
    wanted = list(set(names))
    if not wanted:
        return {}
    query = (
        select(tags.c.name, *(_RECORD if payloads else _LISTED))
        .join(
            tags, and_(tags.c.repository_id == manifests.c.repository_id, tags.c.manifest_digest == manifests.c.digest)
        )
        .where(tags.c.repository_id == repository_id, tags.c.name.in_(wanted))
        # In tag order: without statistics SQLite otherwise reads every tag of the repository from the covering
        # (repository, digest, name) index rather than seek each tag in the primary key.
        .order_by(tags.c.name)
    )
    return {row[0]: _to_manifest(tuple(row)[1:]) for row in conn.execute(query)}


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
    *,
    registry_attached: bool = False,
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
            registry_attached=registry_attached,
        )
    )
    rows = [
        {"repository_id": record.repository_id, "manifest_digest": record.digest, "target_digest": t, "kind": k}
        for t, k in dict(references).items()
    ]
    if rows:
        conn.execute(insert(manifest_references), rows)


def touch_pull_times(conn: Connection, repository_id: int, digests: Iterable[str], now: float) -> None:
    """Record a pull of every image of ``digests`` (a batch), in one statement."""
    wanted = list(set(digests))
    if wanted:
        conn.execute(
            update(manifests)
            .where(manifests.c.repository_id == repository_id, manifests.c.digest.in_(wanted))
            .values(last_pulled_at=now)
        )


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


def _digests(conn: Connection, column: Any, *conditions: Any) -> list[str]:
    return list(conn.execute(select(column).where(*conditions)).scalars())


def parents_of(conn: Connection, repository_id: int, digest: str) -> list[str]:
    """Manifests (indexes) in the repository that list ``digest`` as a child."""
    references = manifest_references.c
    return _digests(
        conn,
        references.manifest_digest,
        references.repository_id == repository_id,
        references.target_digest == digest,
        references.kind == "manifest",
    )


def referrers(
    conn: Connection,
    repository_id: int,
    subject: str,
    *,
    artifact_types: Iterable[str] | None = None,
    after: str | None = None,
    limit: int | None = None,
) -> list[StoredManifest]:
    """The manifests whose subject is ``subject``, by digest: those after ``after``, at most ``limit``."""
    query = (
        select(*_RECORD)
        .where(manifests.c.repository_id == repository_id, manifests.c.subject_digest == subject)
        .order_by(manifests.c.digest)
    )
    if artifact_types is not None:
        query = query.where(manifests.c.artifact_type.in_(list(artifact_types)))
    if after is not None:
        query = query.where(manifests.c.digest > after)
    if limit is not None:
        query = query.limit(limit)
    return [_to_manifest(row) for row in conn.execute(query)]


def attached_referrers(conn: Connection, repository_id: int, subject: str) -> list[str]:
    """The referrers of ``subject`` that go with it: those the registry attached itself (a scan's SBOM, its own
    signature) and signatures, whoever pushed them."""
    return _digests(
        conn,
        manifests.c.digest,
        manifests.c.repository_id == repository_id,
        manifests.c.subject_digest == subject,
        or_(manifests.c.registry_attached.is_(True), manifests.c.artifact_type.in_(sorted(mt.SIGNATURES))),
    )


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


def read_tags(store: MetadataStore, repository_id: int, *, after: str | None, limit: int | None) -> list[str]:
    # Every tag sorts after "" (tags are never empty).
    params = {"repository_id": repository_id, "after": after or "", "limit": limit}
    return [name for (name,) in store.fetch(_TAGS if limit is None else _TAGS_LIMITED, params)]


def tags_of(conn: Connection, repository_id: int, digest: str) -> list[str]:
    return list(conn.execute(_TAGS_OF_IMAGE, {"repository_id": repository_id, "digest": digest}).scalars())


def read_tags_of(store: MetadataStore, repository_id: int, digest: str) -> list[str]:
    return [name for (name,) in store.fetch(_TAGS_OF_IMAGE, {"repository_id": repository_id, "digest": digest})]


def tag_count(conn: Connection, repository_id: int, digest: str) -> int:
    return int(
        conn.execute(
            select(func.count())
            .select_from(tags)
            .where(tags.c.repository_id == repository_id, tags.c.manifest_digest == digest)
        ).scalar_one()
    )


# -- listings: keyset pages (WHERE key > position ORDER BY key LIMIT n), see ecrd.domain.pages ---------------


def _probe(query: Select[Any]) -> Any:
    """EXISTS (query), probed once per row the page reads. OFFSET 0 keeps PostgreSQL from turning it into a join
    of every row of the repository (hashed, then the whole rest sorted for one page): read in index order, a page
    stops at its limit."""
    return query.offset(0).exists()


def _tag_status(query: Select[Any], tag_status: str) -> Select[Any]:
    has_tag = _probe(
        select(literal(1)).where(
            tags.c.repository_id == manifests.c.repository_id, tags.c.manifest_digest == manifests.c.digest
        )
    )
    if tag_status == "TAGGED":
        return query.where(has_tag)
    if tag_status == "UNTAGGED":
        return query.where(~has_tag)
    return query


def _image_status(query: Select[Any], image_status: str) -> Select[Any]:
    return query if image_status == "ANY" else query.where(manifests.c.image_status == image_status)


def list_manifests(
    conn: Connection,
    repository_id: int,
    *,
    tag_status: str = "ANY",
    image_status: str = "ANY",
    after: str | None = None,
    limit: int | None = None,
) -> list[StoredManifest]:
    """Images by digest (without their payloads): those after ``after`` with the tag and image status, at most
    ``limit``."""
    query = _tag_status(
        select(*_LISTED).where(manifests.c.repository_id == repository_id).order_by(manifests.c.digest), tag_status
    )
    query = _image_status(query, image_status)
    if after is not None:
        query = query.where(manifests.c.digest > after)
    if limit is not None:
        query = query.limit(limit)
    return [_to_manifest(row) for row in conn.execute(query)]


def tags_by_digest(conn: Connection, repository_id: int, digests: Iterable[str]) -> dict[str, list[str]]:
    """The tags of each of ``digests`` (a page's images), by name: one query."""
    out: dict[str, list[str]] = {}
    wanted = list(set(digests))
    if not wanted:
        return out
    for row in conn.execute(
        select(tags.c.manifest_digest, tags.c.name)
        .where(tags.c.repository_id == repository_id, tags.c.manifest_digest.in_(wanted))
        .order_by(tags.c.manifest_digest, tags.c.name)
    ):
        out.setdefault(row.manifest_digest, []).append(row.name)
    return out


def list_image_ids(
    conn: Connection,
    repository_id: int,
    *,
    tag_status: str,
    image_status: str = "ANY",
    after: tuple[str, str] | None,
    limit: int,
) -> list[tuple[str, str | None]]:
    """ListImages' items: (digest, tag) for each tag of each image and (digest, None) for an untagged image, in
    (digest, tag) order, after the position ``after`` (a tag of "" stands for an untagged image's row)."""
    if tag_status == "TAGGED":
        return _tagged_image_ids(conn, repository_id, image_status=image_status, after=after, limit=limit)
    if tag_status == "UNTAGGED":
        # One row per untagged image: the images in digest order, each probed for a tag (see _probe).
        untagged = list_manifests(
            conn,
            repository_id,
            tag_status="UNTAGGED",
            image_status=image_status,
            after=None if after is None else after[0],
            limit=limit,
        )
        return [(manifest.digest, None) for manifest in untagged]
    query = (
        select(manifests.c.digest, tags.c.name)
        .select_from(manifests.outerjoin(tags, _TAGGED_AS))
        .where(manifests.c.repository_id == repository_id)
        .order_by(manifests.c.digest, tags.c.name)
        .limit(limit)
    )
    if image_status != "ANY":
        query = query.where(manifests.c.image_status == image_status)
    if after is not None:
        digest, tag = after
        # Tags are never empty, so every tag of the position's image sorts after "" (its untagged row does not).
        # The range on the digest alone comes first: it lets the planner seek the index to the position (an OR
        # of the two keys alone made SQLite read every image before the position, for every page).
        query = query.where(
            manifests.c.digest >= digest,
            or_(manifests.c.digest > digest, and_(manifests.c.digest == digest, tags.c.name > tag)),
        )
    return [(row.digest, row.name) for row in conn.execute(query)]


def _tagged_image_ids(
    conn: Connection, repository_id: int, *, image_status: str, after: tuple[str, str] | None, limit: int
) -> list[tuple[str, str | None]]:
    """Tagged items only, read in the order of the tags' index (repository, digest, name), which the page
    follows: the position is one range on that index (a row value), and a page stops at its limit (a join
    made both back ends sort every tag after the position, for every page)."""
    query = (
        select(tags.c.manifest_digest, tags.c.name)
        .where(tags.c.repository_id == repository_id)
        .order_by(tags.c.manifest_digest, tags.c.name)
        .limit(limit)
    )
    if image_status != "ANY":
        query = query.where(
            _probe(
                select(literal(1)).where(
                    manifests.c.repository_id == tags.c.repository_id,
                    manifests.c.digest == tags.c.manifest_digest,
                    manifests.c.image_status == image_status,
                )
            )
        )
    if after is not None:
        query = query.where(tuple_(tags.c.manifest_digest, tags.c.name) > tuple_(literal(after[0]), literal(after[1])))
    return [(digest, name) for digest, name in conn.execute(query)]
