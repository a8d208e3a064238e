"""Queries of continuous scanning: the stored inventories of scanned images, the next batch of them to re-match
against new advisories, and the atomic replacement of one image's findings.

Callers hold the transaction; every function takes the connection.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, and_, bindparam, insert, or_, select, update

from ecrd.metadata.jobs_tables import image_inventories, image_scans
from ecrd.metadata.repositories import registry_setting_values
from ecrd.metadata.tables import manifests

_CHUNK: Final = 500
# The registry setting that holds PutRegistryScanningConfiguration's scanType and rules, as JSON.
SCANNING_CONFIGURATION_KEY: Final = "scanning_configuration"


@dataclass(frozen=True, slots=True)
class StoredInventory:
    """One image to re-match: its inventory and the findings its last scan or re-match stored."""

    repository_id: int
    digest: str
    inventory: dict[str, Any]
    completed_at: float
    enhanced_findings: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class ReplacedFindings:
    """The new findings of one image, written only if its scan is still the one they were matched from."""

    repository_id: int
    digest: str
    seen_completed_at: float
    completed_at: float
    source_updated_at: float | None
    severity_counts: dict[str, int]
    findings: list[dict[str, Any]]
    enhanced_findings: list[dict[str, Any]]


def continuous_scanning_configured(conn: Connection) -> bool:
    """Whether any registry scans ENHANCED with a CONTINUOUS_SCAN rule: only then has an import images to
    re-match."""
    return any(continuous(text) for text in registry_setting_values(conn, SCANNING_CONFIGURATION_KEY).values())


def continuous(configuration_text: str) -> bool:
    """Whether a stored scanning configuration scans ENHANCED with a CONTINUOUS_SCAN rule."""
    configuration = json.loads(configuration_text) if configuration_text else {}
    return configuration.get("scanType") == "ENHANCED" and any(
        rule.get("scanFrequency") == "CONTINUOUS_SCAN" for rule in configuration.get("rules", [])
    )


def store_inventory(conn: Connection, repository_id: int, digest: str, inventory: str, generation: int) -> None:
    """Keep (or replace) the inventory a scan read from the image."""
    key = (image_inventories.c.repository_id == repository_id) & (image_inventories.c.digest == digest)
    values = {"inventory": inventory, "matched_generation": generation}
    if conn.execute(update(image_inventories).where(key).values(**values)).rowcount == 0:
        conn.execute(insert(image_inventories).values(repository_id=repository_id, digest=digest, **values))


def batch_to_rematch(
    conn: Connection,
    repository_ids: Collection[int],
    generation: int,
    after: tuple[int, str] | None,
    limit: int,
) -> list[StoredInventory]:
    """The next ``limit`` images of ``repository_ids`` after ``after`` (repository id, digest) whose completed
    scan was matched at an older advisory generation than ``generation`` — in key order, one query. Images
    deleted since their scan (no manifest) and scans not complete (a new scan will answer) are left out."""
    if not repository_ids:
        return []
    query = (
        select(
            image_inventories.c.repository_id,
            image_inventories.c.digest,
            image_inventories.c.inventory,
            image_scans.c.completed_at,
            image_scans.c.enhanced_findings,
        )
        .join(
            image_scans,
            and_(
                image_scans.c.repository_id == image_inventories.c.repository_id,
                image_scans.c.digest == image_inventories.c.digest,
            ),
        )
        .join(
            manifests,
            and_(
                manifests.c.repository_id == image_inventories.c.repository_id,
                manifests.c.digest == image_inventories.c.digest,
            ),
        )
        .where(
            image_inventories.c.repository_id.in_(sorted(repository_ids)),
            image_inventories.c.matched_generation < generation,
            image_scans.c.status == "COMPLETE",
            image_scans.c.completed_at.is_not(None),
        )
        .order_by(image_inventories.c.repository_id, image_inventories.c.digest)
        .limit(limit)
    )
    if after is not None:
        query = query.where(
            or_(
                image_inventories.c.repository_id > after[0],
                and_(image_inventories.c.repository_id == after[0], image_inventories.c.digest > after[1]),
            )
        )
    return [
        StoredInventory(
            row.repository_id,
            row.digest,
            json.loads(row.inventory),
            row.completed_at,
            json.loads(row.enhanced_findings or "[]"),
        )
        for row in conn.execute(query)
    ]


def mark_matched(conn: Connection, keys: Sequence[tuple[int, str]], generation: int) -> None:
    """Record that these images' inventories were matched at ``generation`` (one statement per chunk)."""
    by_repository: dict[int, list[str]] = {}
    for repository_id, digest in keys:
        by_repository.setdefault(repository_id, []).append(digest)
    for repository_id, digests in by_repository.items():
        for start in range(0, len(digests), _CHUNK):
            conn.execute(
                update(image_inventories)
                .where(
                    image_inventories.c.repository_id == repository_id,
                    image_inventories.c.digest.in_(digests[start : start + _CHUNK]),
                )
                .values(matched_generation=generation)
            )


def replace_findings(conn: Connection, replaced: Sequence[ReplacedFindings]) -> set[tuple[int, str]]:
    """Write each image's new findings, each only where the stored scan is still the one re-matched (same
    completion time): a scan that finished meanwhile wins. Returns the (repository id, digest) of the images
    written."""
    written: set[tuple[int, str]] = set()
    statement = (
        update(image_scans)
        .where(
            image_scans.c.repository_id == bindparam("b_repository_id"),
            image_scans.c.digest == bindparam("b_digest"),
            image_scans.c.status == "COMPLETE",
            image_scans.c.completed_at == bindparam("b_seen"),
        )
        .values(
            completed_at=bindparam("b_completed_at"),
            vulnerability_source_updated_at=bindparam("b_source"),
            severity_counts=bindparam("b_counts"),
            findings=bindparam("b_findings"),
            enhanced_findings=bindparam("b_enhanced"),
        )
    )
    # One statement per image: executemany does not report which rows matched, and a lost race must be known.
    for item in replaced:
        result = conn.execute(
            statement,
            {
                "b_repository_id": item.repository_id,
                "b_digest": item.digest,
                "b_seen": item.seen_completed_at,
                "b_completed_at": item.completed_at,
                "b_source": item.source_updated_at,
                "b_counts": json.dumps(item.severity_counts),
                "b_findings": json.dumps(item.findings),
                "b_enhanced": json.dumps(item.enhanced_findings),
            },
        )
        if result.rowcount:
            written.add((item.repository_id, item.digest))
    return written
