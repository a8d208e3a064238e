"""Queries on the job queue: enqueue, claim (SKIP LOCKED on PostgreSQL), finish, retry."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, insert, or_, select, update

from ecrd.domain.records import ScanRecord, ScanSummary
from ecrd.metadata.jobs_tables import image_scans, jobs


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int


def enqueue(
    conn: Connection, kind: str, payload: dict[str, Any], now: float, *, run_after: float | None = None
) -> None:
    """Queue a job, ready at once or from ``run_after`` on."""
    conn.execute(
        insert(jobs).values(
            kind=kind,
            payload=json.dumps(payload),
            status="queued",
            attempts=0,
            run_after=now if run_after is None else run_after,
            created_at=now,
            updated_at=now,
        )
    )


def claim(conn: Connection, worker: str, now: float, lease_seconds: float) -> Job | None:
    """The oldest job that is ready, or whose worker's lease ran out (it died mid-job): claimed for ``worker``."""
    query = (
        select(jobs)
        .where(
            or_(
                (jobs.c.status == "queued") & (jobs.c.run_after <= now),
                (jobs.c.status == "running") & (jobs.c.claimed_at < now - lease_seconds),
            )
        )
        .order_by(jobs.c.id)
        .limit(1)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    row = conn.execute(query).first()
    if row is None:
        return None
    conn.execute(
        update(jobs)
        .where(jobs.c.id == row.id)
        .values(status="running", claimed_at=now, claimed_by=worker, attempts=row.attempts + 1, updated_at=now)
    )
    return Job(row.id, row.kind, json.loads(row.payload), row.attempts + 1)


def running_claims(conn: Connection, worker_prefix: str) -> list[tuple[int, str]]:
    """(id, worker) of the running jobs claimed by workers whose id starts with ``worker_prefix``."""
    rows = conn.execute(
        select(jobs.c.id, jobs.c.claimed_by).where(
            jobs.c.status == "running", jobs.c.claimed_by.startswith(worker_prefix, autoescape=True)
        )
    )
    return [(row.id, row.claimed_by) for row in rows]


def release(conn: Connection, job_id: int, worker: str, now: float) -> bool:
    """Put a running job back in the queue if ``worker`` still holds it (its worker is known to be dead)."""
    result = conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.status == "running", jobs.c.claimed_by == worker)
        .values(status="queued", run_after=now, claimed_at=None, claimed_by=None, updated_at=now)
    )
    return bool(result.rowcount)


def finish(conn: Connection, job_id: int, now: float) -> None:
    conn.execute(delete(jobs).where(jobs.c.id == job_id))


def fail(conn: Connection, job_id: int, error: str, now: float, *, retry_at: float | None) -> None:
    conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id)
        .values(
            status="queued" if retry_at is not None else "failed",
            run_after=retry_at or now,
            last_error=error[:2000],
            claimed_at=None,
            claimed_by=None,
            updated_at=now,
        )
    )


def queue_depths(conn: Connection) -> list[tuple[str, str, int, float]]:
    """(kind, status, count, oldest created_at) of the jobs not yet done: one grouped query on the ready index."""
    rows = conn.execute(
        select(jobs.c.kind, jobs.c.status, func.count(), func.min(jobs.c.created_at))
        .where(jobs.c.status.in_(["queued", "running"]))
        .group_by(jobs.c.kind, jobs.c.status)
    ).all()
    return [(str(kind), str(status), int(count), float(oldest)) for kind, status, count, oldest in rows]


# -- scans -----------------------------------------------------------------------------------------------


def get_scan(conn: Connection, repository_id: int, digest: str) -> ScanRecord | None:
    row = conn.execute(
        select(image_scans).where(image_scans.c.repository_id == repository_id, image_scans.c.digest == digest)
    ).first()
    if row is None:
        return None
    return _to_scan(row)


def _to_scan(row: Any) -> ScanRecord:
    return ScanRecord(
        row.status,
        row.description,
        row.started_at,
        row.completed_at,
        row.vulnerability_source_updated_at,
        json.loads(row.severity_counts or "{}"),
        json.loads(row.findings or "[]"),
        row.sbom_digest,
        json.loads(row.enhanced_findings or "[]"),
    )


_SUMMARY_COLUMNS = (
    image_scans.c.digest,
    image_scans.c.status,
    image_scans.c.description,
    image_scans.c.completed_at,
    image_scans.c.vulnerability_source_updated_at,
    image_scans.c.severity_counts,
)


def scan_summaries_of(conn: Connection, repository_id: int, digests: list[str]) -> dict[str, ScanSummary]:
    """The scan summaries of a batch of a repository's images (a listing's page), by digest, in one query that
    leaves the findings where they are: a page of scanned images would otherwise read and parse every finding
    of every image to show their counts."""
    if not digests:
        return {}
    query = select(*_SUMMARY_COLUMNS).where(
        image_scans.c.repository_id == repository_id, image_scans.c.digest.in_(digests)
    )
    return {
        row.digest: ScanSummary(
            row.status,
            row.description,
            row.completed_at,
            row.vulnerability_source_updated_at,
            json.loads(row.severity_counts or "{}"),
        )
        for row in conn.execute(query)
    }


def start_scan(conn: Connection, repository_id: int, digest: str, now: float) -> None:
    values = {
        "status": "IN_PROGRESS",
        "description": "The scan is in progress.",
        "started_at": now,
        "completed_at": None,
        "severity_counts": None,
        "findings": None,
    }
    updated = conn.execute(
        update(image_scans)
        .where(image_scans.c.repository_id == repository_id, image_scans.c.digest == digest)
        .values(**values)
    )
    if updated.rowcount == 0:
        conn.execute(insert(image_scans).values(repository_id=repository_id, digest=digest, **values))


def complete_scan(
    conn: Connection,
    repository_id: int,
    digest: str,
    *,
    status: str,
    description: str,
    now: float,
    source_updated_at: float | None,
    severity_counts: dict[str, int],
    findings: list[dict[str, Any]],
    sbom_digest: str | None,
    enhanced_findings: list[dict[str, Any]] | None = None,
) -> None:
    conn.execute(
        update(image_scans)
        .where(image_scans.c.repository_id == repository_id, image_scans.c.digest == digest)
        .values(
            status=status,
            description=description,
            completed_at=now,
            vulnerability_source_updated_at=source_updated_at,
            severity_counts=json.dumps(severity_counts),
            findings=json.dumps(findings),
            sbom_digest=sbom_digest,
            enhanced_findings=json.dumps(enhanced_findings or []),
        )
    )
