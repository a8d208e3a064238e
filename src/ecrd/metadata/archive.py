"""Queries of the archive storage class: images' status, the unit an image moves with, and where each blob is."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Exists, and_, exists, select, update

from ecrd.metadata.tables import blobs, manifest_references, manifests, tags

ACTIVE = "ACTIVE"
ARCHIVED = "ARCHIVED"
ACTIVATING = "ACTIVATING"
HOT = "hot"
ARCHIVE = "archive"


@dataclass(frozen=True, slots=True)
class ImageState:
    digest: str
    status: str
    subject_digest: str | None


@dataclass(frozen=True, slots=True)
class BlobPlace:
    """A blob of an image being moved: where it is, and where it belongs."""

    digest: str
    location: str
    wanted: str


def image_state(conn: Connection, repository_id: int, digest: str) -> ImageState | None:
    row = conn.execute(
        select(manifests.c.image_status, manifests.c.subject_digest).where(
            manifests.c.repository_id == repository_id, manifests.c.digest == digest
        )
    ).first()
    return None if row is None else ImageState(digest, row.image_status, row.subject_digest)


def _parents(conn: Connection, repository_id: int, digest: str) -> list[tuple[str, str]]:
    """(digest, status) of the indexes of the repository that list ``digest``."""
    rows = conn.execute(
        select(manifests.c.digest, manifests.c.image_status)
        .join(
            manifest_references,
            and_(
                manifest_references.c.repository_id == manifests.c.repository_id,
                manifest_references.c.manifest_digest == manifests.c.digest,
            ),
        )
        .where(
            manifest_references.c.repository_id == repository_id,
            manifest_references.c.target_digest == digest,
            manifest_references.c.kind == "manifest",
        )
    )
    return [(row.digest, row.image_status) for row in rows]


def active_parents(conn: Connection, repository_id: int, digest: str) -> list[str]:
    return [parent for parent, status in _parents(conn, repository_id, digest) if status != ARCHIVED]


def subject_exists(conn: Connection, repository_id: int, subject: str) -> bool:
    return bool(
        conn.execute(
            select(exists().where(manifests.c.repository_id == repository_id, manifests.c.digest == subject))
        ).scalar()
    )


def _children(conn: Connection, repository_id: int, digest: str) -> list[str]:
    references = manifest_references.c
    return list(
        conn.execute(
            select(references.target_digest).where(
                references.repository_id == repository_id,
                references.manifest_digest == digest,
                references.kind == "manifest",
            )
        ).scalars()
    )


def _referrers(conn: Connection, repository_id: int, subject: str) -> list[str]:
    return list(
        conn.execute(
            select(manifests.c.digest).where(
                manifests.c.repository_id == repository_id, manifests.c.subject_digest == subject
            )
        ).scalars()
    )


def _tagged(conn: Connection, repository_id: int, digest: str) -> bool:
    return bool(
        conn.execute(
            select(exists().where(tags.c.repository_id == repository_id, tags.c.manifest_digest == digest))
        ).scalar()
    )


def unit(conn: Connection, repository_id: int, root: str) -> list[str]:
    """The images that change storage class with ``root``, ``root`` first: an index's children that are
    untagged and listed by no index outside the unit, and the referrers of every member (as a lifecycle
    policy treats them)."""
    members = [root]
    seen = {root}
    pending = [root]
    while pending:
        digest = pending.pop()
        followers = [
            child
            for child in _children(conn, repository_id, digest)
            if not _tagged(conn, repository_id, child)
            and {parent for parent, _status in _parents(conn, repository_id, child)} <= seen | {digest}
        ]
        followers += _referrers(conn, repository_id, digest)
        for follower in followers:
            if follower not in seen:
                seen.add(follower)
                members.append(follower)
                pending.append(follower)
    return members


def set_status(
    conn: Connection, repository_id: int, digests: Sequence[str], *, old: str, new: str, now: float
) -> list[str]:
    """Move those of ``digests`` whose status is ``old`` to ``new``, stamping the move's time; which moved."""
    moving = list(
        conn.execute(
            select(manifests.c.digest).where(
                manifests.c.repository_id == repository_id,
                manifests.c.digest.in_(list(digests)),
                manifests.c.image_status == old,
            )
        ).scalars()
    )
    if not moving:
        return []
    stamp = {"last_archived_at": now} if new == ARCHIVED else {"last_activated_at": now} if new == ACTIVE else {}
    conn.execute(
        update(manifests)
        .where(manifests.c.repository_id == repository_id, manifests.c.digest.in_(moving))
        .values(image_status=new, **stamp)
    )
    return moving


def statuses(conn: Connection, repository_id: int, digests: Sequence[str]) -> dict[str, str]:
    rows = conn.execute(
        select(manifests.c.digest, manifests.c.image_status).where(
            manifests.c.repository_id == repository_id, manifests.c.digest.in_(list(digests))
        )
    )
    return {row.digest: row.image_status for row in rows}


def _wanted_hot(digest_column: Any) -> Exists:
    """Whether an image that is not archived, in any repository, references the blob: then it stays hot."""
    return exists().where(
        manifest_references.c.target_digest == digest_column,
        manifest_references.c.kind == "blob",
        manifests.c.repository_id == manifest_references.c.repository_id,
        manifests.c.digest == manifest_references.c.manifest_digest,
        manifests.c.image_status != ARCHIVED,
    )


def blob_places(conn: Connection, repository_id: int, images: Sequence[str]) -> list[BlobPlace]:
    """The blobs the images reference, by digest, with where each is and where it belongs."""
    referenced = (
        select(manifest_references.c.target_digest)
        .where(
            manifest_references.c.repository_id == repository_id,
            manifest_references.c.manifest_digest.in_(list(images)),
            manifest_references.c.kind == "blob",
        )
        .scalar_subquery()
    )
    wanted_hot = _wanted_hot(blobs.c.digest)
    rows = conn.execute(
        select(blobs.c.digest, blobs.c.location, wanted_hot.label("hot"))
        .where(blobs.c.digest.in_(referenced))
        .order_by(blobs.c.digest)
    )
    return [BlobPlace(row.digest, row.location, HOT if row.hot else ARCHIVE) for row in rows]


def lock_blob_place(conn: Connection, digest: str) -> BlobPlace | None:
    """The blob's row, locked until the transaction ends (FOR UPDATE on PostgreSQL: manifest writers referencing
    it, uploads and the garbage collector wait), with where it is and belongs, decided under that lock."""
    locking = select(blobs.c.digest).where(blobs.c.digest == digest)
    if conn.dialect.name == "postgresql":
        locking = locking.with_for_update()
    if conn.execute(locking).first() is None:
        return None
    row = conn.execute(
        select(blobs.c.location, _wanted_hot(blobs.c.digest).label("hot")).where(blobs.c.digest == digest)
    ).one()
    return BlobPlace(digest, row.location, HOT if row.hot else ARCHIVE)


def set_location(conn: Connection, digest: str, location: str) -> None:
    conn.execute(update(blobs).where(blobs.c.digest == digest).values(location=location))


def archived_blobs(conn: Connection, digests: Sequence[str]) -> list[str]:
    """Those of ``digests`` whose bytes are in the archive."""
    if not digests:
        return []
    return list(
        conn.execute(
            select(blobs.c.digest).where(blobs.c.digest.in_(list(digests)), blobs.c.location == ARCHIVE)
        ).scalars()
    )


def blob_location(conn: Connection, digest: str) -> str | None:
    return conn.execute(select(blobs.c.location).where(blobs.c.digest == digest)).scalar_one_or_none()


def digests_in_archive(conn: Connection) -> set[str]:
    """Every blob whose bytes are in the archive (``ecrd fsck`` looks for them there)."""
    return set(conn.execute(select(blobs.c.digest).where(blobs.c.location == ARCHIVE)).scalars())
