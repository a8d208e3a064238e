"""Queries of lifecycle policies: the stored policies and their run leases, previews and their result pages, the
record of each action, the pull-time update exclusions, and the image rows a policy is evaluated over."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ecrd.metadata.lifecycle_tables import (
    lifecycle_actions,
    lifecycle_policies,
    lifecycle_preview_results,
    lifecycle_previews,
    pull_time_exclusions,
)
from ecrd.metadata.tables import manifest_references, manifests, tags


@dataclass(frozen=True, slots=True)
class StoredLifecyclePolicy:
    repository_id: int
    text: str
    last_evaluated_at: float | None


@dataclass(frozen=True, slots=True)
class StoredPreview:
    text: str
    status: str
    started_at: float


@dataclass(frozen=True, slots=True)
class PreviewResult:
    digest: str
    tags: tuple[str, ...]
    pushed_at: float
    action: str
    target_storage_class: str | None
    rule_priority: int
    storage_class: str


@dataclass(frozen=True, slots=True)
class ImageRow:
    """What lifecycle evaluation needs of one manifest: never its payload."""

    digest: str
    tags: tuple[str, ...]
    subject_digest: str | None
    pushed_at: float
    last_pulled_at: float | None


# -- policies --------------------------------------------------------------------------------------------------


def get_policy(conn: Connection, repository_id: int) -> StoredLifecyclePolicy | None:
    row = conn.execute(select(lifecycle_policies).where(lifecycle_policies.c.repository_id == repository_id)).first()
    return None if row is None else StoredLifecyclePolicy(row.repository_id, row.policy_text, row.last_evaluated_at)


def put_policy(conn: Connection, repository_id: int, text: str, now: float) -> None:
    changed = conn.execute(
        update(lifecycle_policies)
        .where(lifecycle_policies.c.repository_id == repository_id)
        .values(policy_text=text, updated_at=now)
    )
    if not changed.rowcount:
        conn.execute(insert(lifecycle_policies).values(repository_id=repository_id, policy_text=text, updated_at=now))


def delete_policy(conn: Connection, repository_id: int) -> None:
    conn.execute(delete(lifecycle_policies).where(lifecycle_policies.c.repository_id == repository_id))


def repositories_with_policy(conn: Connection) -> list[int]:
    return list(
        conn.execute(select(lifecycle_policies.c.repository_id).order_by(lifecycle_policies.c.repository_id)).scalars()
    )


def claim_run(conn: Connection, repository_id: int, worker: str, now: float, lease_seconds: float) -> bool:
    """Take the repository's run lease: free, or left by a run that died more than ``lease_seconds`` ago."""
    c = lifecycle_policies.c
    claimed = conn.execute(
        update(lifecycle_policies)
        .where(
            c.repository_id == repository_id,
            or_(c.run_claimed_by.is_(None), c.run_claimed_at < now - lease_seconds),
        )
        .values(run_claimed_by=worker, run_claimed_at=now)
    )
    return bool(claimed.rowcount)


def release_run(conn: Connection, repository_id: int, worker: str, evaluated_at: float | None) -> None:
    """Give the lease back; ``evaluated_at`` (when the run acted for real) becomes ``lastEvaluatedAt``."""
    values: dict[str, object] = {"run_claimed_by": None, "run_claimed_at": None}
    if evaluated_at is not None:
        values["last_evaluated_at"] = evaluated_at
    c = lifecycle_policies.c
    conn.execute(
        update(lifecycle_policies).where(c.repository_id == repository_id, c.run_claimed_by == worker).values(**values)
    )


# -- the images a policy is evaluated over ---------------------------------------------------------------------


def image_rows(conn: Connection, repository_id: int, batch: int = 1000) -> Iterator[ImageRow]:
    """Every manifest of the repository with its tags, in digest order: read in keyset pages of ``batch`` (two
    indexed queries each), so memory holds one page. Server-side cursors are avoided: PostgreSQL plans them for
    the first rows and ran this listing ten times slower."""
    after: str | None = None
    while True:
        query = (
            select(manifests.c.digest, manifests.c.subject_digest, manifests.c.pushed_at, manifests.c.last_pulled_at)
            .where(manifests.c.repository_id == repository_id)
            .order_by(manifests.c.digest)
            .limit(batch)
        )
        if after is not None:
            query = query.where(manifests.c.digest > after)
        page = conn.execute(query).all()
        if not page:
            return
        names: dict[str, list[str]] = {}
        for tag in conn.execute(
            select(tags.c.manifest_digest, tags.c.name).where(
                tags.c.repository_id == repository_id,
                tags.c.manifest_digest >= page[0].digest,
                tags.c.manifest_digest <= page[-1].digest,
            )
        ):
            names.setdefault(tag.manifest_digest, []).append(tag.name)
        for row in page:
            found = names.get(row.digest)
            yield ImageRow(
                row.digest, tuple(sorted(found)) if found else (), row.subject_digest, row.pushed_at, row.last_pulled_at
            )
        after = page[-1].digest


def index_children(conn: Connection, repository_id: int) -> list[tuple[str, str]]:
    """(index, child manifest) pairs of the repository."""
    c = manifest_references.c
    rows = conn.execute(
        select(c.manifest_digest, c.target_digest).where(c.repository_id == repository_id, c.kind == "manifest")
    )
    return [(row.manifest_digest, row.target_digest) for row in rows]


def referrers_with_subject(conn: Connection, repository_id: int) -> list[tuple[str, str]]:
    """(referrer, subject) pairs of the repository whose subject is stored in it."""
    subject = manifests.alias("subject")
    rows = conn.execute(
        select(manifests.c.digest, manifests.c.subject_digest).where(
            manifests.c.repository_id == repository_id,
            manifests.c.subject_digest.is_not(None),
            select(subject.c.digest)
            .where(subject.c.repository_id == repository_id, subject.c.digest == manifests.c.subject_digest)
            .exists(),
        )
    )
    return [(row.digest, row.subject_digest) for row in rows]


# -- previews ----------------------------------------------------------------------------------------------------


def get_preview(conn: Connection, repository_id: int, *, for_update: bool = False) -> StoredPreview | None:
    query = select(lifecycle_previews).where(lifecycle_previews.c.repository_id == repository_id)
    if for_update and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    return None if row is None else StoredPreview(row.policy_text, row.status, row.started_at)


def start_preview(conn: Connection, repository_id: int, text: str, now: float) -> None:
    """A new preview replaces the repository's last one and its results."""
    conn.execute(delete(lifecycle_preview_results).where(lifecycle_preview_results.c.repository_id == repository_id))
    conn.execute(delete(lifecycle_previews).where(lifecycle_previews.c.repository_id == repository_id))
    conn.execute(
        insert(lifecycle_previews).values(
            repository_id=repository_id, policy_text=text, status="IN_PROGRESS", started_at=now
        )
    )


def finish_preview(
    conn: Connection, repository_id: int, started_at: float, status: str, results: Sequence[PreviewResult], now: float
) -> bool:
    """Store a preview's results, if the preview started at ``started_at`` is still the repository's."""
    c = lifecycle_previews.c
    finished = conn.execute(
        update(lifecycle_previews)
        .where(c.repository_id == repository_id, c.started_at == started_at, c.status == "IN_PROGRESS")
        .values(status=status, finished_at=now)
    )
    if not finished.rowcount:
        return False
    if results:
        conn.execute(
            insert(lifecycle_preview_results),
            [
                {
                    "repository_id": repository_id,
                    "digest": r.digest,
                    "image_tags": json.dumps(list(r.tags)),
                    "tagged": bool(r.tags),
                    "pushed_at": r.pushed_at,
                    "action": r.action,
                    "target_storage_class": r.target_storage_class,
                    "rule_priority": r.rule_priority,
                    "storage_class": r.storage_class,
                }
                for r in results
            ],
        )
    return True


def preview_results(
    conn: Connection,
    repository_id: int,
    *,
    tag_status: str,
    digests: Sequence[str] | None,
    after: str | None,
    limit: int | None,
) -> list[PreviewResult]:
    """A keyset page of a preview's results by digest: with the tag status, of ``digests`` when given."""
    c = lifecycle_preview_results.c
    query = select(lifecycle_preview_results).where(c.repository_id == repository_id).order_by(c.digest)
    if tag_status == "TAGGED":
        query = query.where(c.tagged.is_(True))
    elif tag_status == "UNTAGGED":
        query = query.where(c.tagged.is_(False))
    if digests is not None:
        query = query.where(c.digest.in_(list(digests)))
    if after is not None:
        query = query.where(c.digest > after)
    if limit is not None:
        query = query.limit(limit)
    return [
        PreviewResult(
            row.digest,
            tuple(json.loads(row.image_tags)),
            row.pushed_at,
            row.action,
            row.target_storage_class,
            row.rule_priority,
            row.storage_class,
        )
        for row in conn.execute(query)
    ]


def preview_summary(conn: Connection, repository_id: int) -> dict[tuple[str, str | None], int]:
    """How many images the preview acts on, by (action, target storage class)."""
    c = lifecycle_preview_results.c
    rows = conn.execute(
        select(c.action, c.target_storage_class, func.count())
        .where(c.repository_id == repository_id)
        .group_by(c.action, c.target_storage_class)
    )
    return {(row[0], row[1]): int(row[2]) for row in rows}


# -- the record of actions ---------------------------------------------------------------------------------------


def record_action(
    conn: Connection,
    *,
    time: float,
    run_id: str,
    repository: str,
    digest: str,
    image_tags: Sequence[str],
    rule_priority: int,
    action: str,
    target_storage_class: str | None,
) -> None:
    conn.execute(
        insert(lifecycle_actions).values(
            time=time,
            run_id=run_id,
            repository=repository,
            digest=digest,
            image_tags=json.dumps(list(image_tags)),
            rule_priority=rule_priority,
            action=action,
            target_storage_class=target_storage_class,
        )
    )


def actions_of_run(conn: Connection, run_id: str) -> list[dict[str, object]]:
    rows = conn.execute(
        select(lifecycle_actions).where(lifecycle_actions.c.run_id == run_id).order_by(lifecycle_actions.c.id)
    )
    return [dict(row._mapping) for row in rows]


# -- pull-time update exclusions ----------------------------------------------------------------------------------


def add_exclusion(conn: Connection, principal_arn: str, now: float) -> bool:
    """False when the principal is excluded already (by this request or a concurrent one)."""
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    inserted = conn.execute(
        dialect_insert(pull_time_exclusions)
        .values(principal_arn=principal_arn, created_at=now)
        .on_conflict_do_nothing()
        .returning(pull_time_exclusions.c.principal_arn)
    ).first()
    return inserted is not None


def remove_exclusion(conn: Connection, principal_arn: str) -> bool:
    return bool(conn.execute(delete(pull_time_exclusions).where(_is(principal_arn))).rowcount)


def count_exclusions(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(pull_time_exclusions)).scalar_one())


def list_exclusions(conn: Connection, *, after: str | None, limit: int) -> list[str]:
    query = select(pull_time_exclusions.c.principal_arn).order_by(pull_time_exclusions.c.principal_arn).limit(limit)
    if after is not None:
        query = query.where(pull_time_exclusions.c.principal_arn > after)
    return list(conn.execute(query).scalars())


def is_excluded(conn: Connection, principal_arn: str) -> bool:
    return conn.execute(select(pull_time_exclusions.c.principal_arn).where(_is(principal_arn))).first() is not None


def _is(principal_arn: str) -> ColumnElement[bool]:
    return pull_time_exclusions.c.principal_arn == principal_arn
