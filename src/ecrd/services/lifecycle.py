"""Lifecycle policies as a service: storing a repository's policy, previewing it, running it (on a schedule or on
demand), and ECR's pull-time update exclusions.

Preview and run share one plan: the pure evaluator (``ecrd.domain.lifecycle``) over the repository's top-level
images, read from the store as a stream, each decision then carrying the images that go with it. An image index
and its untagged children are one unit, and referrers (signatures, SBOMs) follow their subject; a child that
another, surviving index lists is never expired (the registry's deletion refuses it under its lock).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Connection

from ecrd.domain.lifecycle import (
    InvalidLifecyclePolicy,
    LifecycleDecision,
    LifecycleImage,
    evaluate_lifecycle_policy,
    parse_lifecycle_policy,
)
from ecrd.domain.progress import Progress, no_progress
from ecrd.domain.records import AuditEvent, Repository
from ecrd.errors import (
    ExclusionAlreadyExists,
    ExclusionNotFound,
    InvalidParameter,
    LifecyclePolicyNotFound,
    LifecyclePolicyPreviewInProgress,
    LifecyclePolicyPreviewNotFound,
    LimitExceeded,
)
from ecrd.metadata import audit as audit_queries
from ecrd.metadata import gc as schedule_queries
from ecrd.metadata import jobs as job_queries
from ecrd.metadata import lifecycle as q
from ecrd.metadata import repositories as repo_queries
from ecrd.metadata.lifecycle import ImageRow, StoredLifecyclePolicy, StoredPreview
from ecrd.metadata.lifecycle import PreviewResult as PreviewResult  # what a preview page holds
from ecrd.metadata.store import MetadataStore
from ecrd.services.access import Caller
from ecrd.services.registry import RegistryService

log = logging.getLogger("ecrd.lifecycle")

RUN_JOB = "lifecycle-run"
PREVIEW_JOB = "lifecycle-preview"
SCHEDULE = "lifecycle"
# A run holds its repository's lease this long at most: past it, the run is taken to have died (SIGKILL).
RUN_LEASE_SECONDS = 900.0
# "You can add up to 100 principals to the pull time update exclusion list" (ECR user guide).
MAX_EXCLUSIONS = 100
# Who the audit trail names for what a lifecycle policy did.
LIFECYCLE_PRINCIPAL = "lifecycle-policy"
STANDARD = "STANDARD"


class ImageArchiver(Protocol):
    """The archive storage class, as lifecycle transitions use it."""

    def archive(self, repository: Repository, digest: str, *, cause: str) -> object: ...


def pull_principal(caller: Caller) -> str:
    """The ARN a pull-time update exclusion names for ``caller``: the user, or the role behind a session."""
    return caller.aliases[0] if caller.aliases else caller.arn


@dataclass(frozen=True, slots=True)
class PlannedAction:
    """One image a policy acts on, with the rule behind it; ``follows`` names the image it goes with, if any."""

    digest: str
    tags: tuple[str, ...]
    pushed_at: float
    storage_class: str
    rule_priority: int
    action: str
    target_storage_class: str | None
    follows: str | None = None


@dataclass
class RunReport:
    """What a run did (or, dry, would do) in one repository."""

    repository: str
    actions: list[PlannedAction] = field(default_factory=list)
    skipped: int = 0
    busy: bool = False
    """Another run held the repository's lease: nothing was done."""

    def count(self, action: str) -> int:
        return sum(1 for planned in self.actions if planned.action == action)


@dataclass(frozen=True, slots=True)
class PreviewPage:
    preview: StoredPreview
    results: list[PreviewResult]
    summary: dict[tuple[str, str | None], int]


def checked_policy(text: str) -> str:
    try:
        parse_lifecycle_policy(text)
    except InvalidLifecyclePolicy as exc:
        raise InvalidParameter(str(exc)) from None
    return text


class LifecycleService:
    def __init__(
        self,
        store: MetadataStore,
        registry: RegistryService,
        *,
        account_id: str,
        clock: Callable[[], float] = time.time,
        archiver: ImageArchiver | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.account_id = account_id
        self.clock = clock
        self.archiver = archiver

    # -- policies ----------------------------------------------------------------------------------------------

    def put_policy(self, repository: Repository, text: str) -> str:
        checked_policy(text)
        with self.store.write() as conn:
            q.put_policy(conn, repository.id, text, self.clock())
        return text

    def get_policy(self, repository: Repository) -> StoredLifecyclePolicy:
        with self.store.read() as conn:
            found = q.get_policy(conn, repository.id)
        if found is None:
            raise self._no_policy(repository)
        return found

    def delete_policy(self, repository: Repository) -> StoredLifecyclePolicy:
        with self.store.write() as conn:
            found = q.get_policy(conn, repository.id)
            if found is None:
                raise self._no_policy(repository)
            q.delete_policy(conn, repository.id)
        return found

    def _no_policy(self, repository: Repository) -> LifecyclePolicyNotFound:
        return LifecyclePolicyNotFound(
            f"Lifecycle policy does not exist for the repository with name '{repository.name}' in the registry "
            f"with id '{self.account_id}'"
        )

    # -- the plan: preview and run alike -------------------------------------------------------------------------

    def plan(self, repository: Repository, text: str) -> list[PlannedAction]:
        """What the policy in ``text`` does to the repository now, images that follow their unit included."""
        policy = parse_lifecycle_policy(text)
        with self.store.snapshot() as conn:
            units = _Units.read(conn, repository.id)
            decisions = evaluate_lifecycle_policy(
                policy, units.top_level(q.image_rows(conn, repository.id)), now=self.clock()
            )
        return units.expand(decisions)

    # -- previews ------------------------------------------------------------------------------------------------

    def start_preview(self, repository: Repository, text: str | None) -> str:
        """Begin a preview of ``text`` (the stored policy when None), worked as a job; the text previewed."""
        if text is not None:
            checked_policy(text)
        with self.store.write() as conn:
            current = q.get_preview(conn, repository.id, for_update=True)
            if current is not None and current.status == "IN_PROGRESS":
                raise LifecyclePolicyPreviewInProgress(
                    "The previous lifecycle policy preview request has not completed for the repository with name "
                    f"'{repository.name}' in the registry with id '{self.account_id}'. Please try again later."
                )
            if text is None:
                stored = q.get_policy(conn, repository.id)
                if stored is None:
                    raise self._no_policy(repository)
                text = stored.text
            now = self.clock()
            q.start_preview(conn, repository.id, text, now)
            job_queries.enqueue(conn, PREVIEW_JOB, {"repository_id": repository.id, "started_at": now}, now)
        return text

    def run_preview_job(self, payload: dict[str, Any]) -> None:
        repository_id, started_at = int(payload["repository_id"]), float(payload["started_at"])
        with self.store.read() as conn:
            repository = repo_queries.get_by_id(conn, repository_id)
            preview = q.get_preview(conn, repository_id)
        if repository is None or preview is None or preview.started_at != started_at:
            return  # the repository was deleted, or a newer preview replaced this one
        try:
            results = [_preview_result(planned) for planned in self.plan(repository, preview.text)]
            status = "COMPLETE"
        except Exception:
            log.exception("the lifecycle policy preview of %s failed", repository.name)
            results, status = [], "FAILED"
        with self.store.write() as conn:
            q.finish_preview(conn, repository_id, started_at, status, results, self.clock())

    def get_preview(
        self,
        repository: Repository,
        *,
        tag_status: str = "ANY",
        digests: list[str] | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> PreviewPage:
        with self.store.snapshot() as conn:
            preview = q.get_preview(conn, repository.id)
            if preview is None:
                raise LifecyclePolicyPreviewNotFound(
                    f"Lifecycle policy preview does not exist for the repository with name '{repository.name}' "
                    f"in the registry with id '{self.account_id}'"
                )
            results = q.preview_results(
                conn, repository.id, tag_status=tag_status, digests=digests, after=after, limit=limit
            )
            return PreviewPage(preview, results, q.preview_summary(conn, repository.id))

    # -- runs ----------------------------------------------------------------------------------------------------

    def run(
        self, repository_name: str | None = None, *, dry_run: bool = False, progress: Progress = no_progress
    ) -> Iterator[RunReport]:
        """Run the policy of one repository, or of every repository that has one; one report each.
        ``progress`` hears of the repositories done ("repositories", of a known total)."""
        if repository_name is not None:
            progress("repositories", 0, 1)
            yield self.run_repository(self.registry.get_repository(repository_name), dry_run=dry_run)
            progress("repositories", 1, 1)
            return
        with self.store.read() as conn:
            repository_ids = q.repositories_with_policy(conn)
        progress("repositories", 0, len(repository_ids))
        for done, repository_id in enumerate(repository_ids, 1):
            with self.store.read() as conn:
                repository = repo_queries.get_by_id(conn, repository_id)
            if repository is not None:
                yield self.run_repository(repository, dry_run=dry_run)
            progress("repositories", done, len(repository_ids))

    def run_repository(self, repository: Repository, *, dry_run: bool = False) -> RunReport:
        report = RunReport(repository.name)
        worker = f"run-{uuid.uuid4()}"
        with self.store.write() as conn:
            stored = q.get_policy(conn, repository.id)
            if stored is None:
                raise self._no_policy(repository)
            if not dry_run and not q.claim_run(conn, repository.id, worker, self.clock(), RUN_LEASE_SECONDS):
                report.busy = True
                return report
        planned = self.plan(repository, stored.text)
        if dry_run:
            report.actions = planned
            return report
        try:
            self._act(repository, planned, worker.removeprefix("run-"), report)
        finally:
            with self.store.write() as conn:
                q.release_run(conn, repository.id, worker, self.clock())
        return report

    def _act(self, repository: Repository, planned: list[PlannedAction], run_id: str, report: RunReport) -> None:
        """Each unit in a transaction of its own: a run killed midway leaves every unit whole or untouched."""
        by_root: dict[str, list[PlannedAction]] = {}
        for action in planned:
            by_root.setdefault(action.follows or action.digest, []).append(action)
        for root, unit in by_root.items():
            head = unit[0]
            if head.action == "EXPIRE":
                done = self._expire(repository, root, unit, run_id)
            else:
                done = self._transition(repository, head, run_id)
            report.actions.extend(done)
            report.skipped += len(unit) - len(done)

    def _expire(self, repository: Repository, root: str, unit: list[PlannedAction], run_id: str) -> list[PlannedAction]:
        by_digest = {action.digest: action for action in unit}
        done: list[PlannedAction] = []

        def record(conn: Connection, deleted: list[str]) -> None:
            for digest in deleted:
                if digest in by_digest:
                    done.append(by_digest[digest])
                    self._record(conn, repository, by_digest[digest], run_id)

        self.registry.expire_image(repository, [(a.digest, a.tags) for a in unit], record)
        return done

    def _transition(self, repository: Repository, head: PlannedAction, run_id: str) -> list[PlannedAction]:
        if self.archiver is None:
            log.warning("lifecycle: %s@%s is due for the archive, which is not available", repository.name, head.digest)
            return []
        self.archiver.archive(repository, head.digest, cause=f"lifecycle rule {head.rule_priority}")
        with self.store.write() as conn:
            self._record(conn, repository, head, run_id)
        return [head]

    def _record(self, conn: Connection, repository: Repository, action: PlannedAction, run_id: str) -> None:
        now = self.clock()
        q.record_action(
            conn,
            time=now,
            run_id=run_id,
            repository=repository.name,
            digest=action.digest,
            image_tags=action.tags,
            rule_priority=action.rule_priority,
            action=action.action,
            target_storage_class=action.target_storage_class,
        )
        audit_queries.insert_event(
            conn,
            AuditEvent(
                now,
                run_id,
                LIFECYCLE_PRINCIPAL,
                f"lifecycle:{action.action}",
                repository.name,
                "allowed",
                200,
                None,
                "",
                repository.registry,
            ),
        )

    # -- scheduled runs ------------------------------------------------------------------------------------------

    def schedule_runs(self, worker: str, interval_seconds: float) -> int:
        """Queue a run of every repository with a policy, if this process is the one to do it now (the schedule's
        row decides across processes); how many were queued."""
        now = self.clock()
        with self.store.write() as conn:
            if not schedule_queries.claim_schedule(conn, SCHEDULE, worker, now, interval_seconds):
                return 0
            repository_ids = q.repositories_with_policy(conn)
            for repository_id in repository_ids:
                job_queries.enqueue(conn, RUN_JOB, {"repository_id": repository_id}, now)
        return len(repository_ids)

    def run_job(self, payload: dict[str, Any]) -> None:
        with self.store.read() as conn:
            repository = repo_queries.get_by_id(conn, int(payload["repository_id"]))
            stored = None if repository is None else q.get_policy(conn, repository.id)
        if repository is None or stored is None:
            return  # deleted since it was queued
        report = self.run_repository(repository)
        if report.actions:
            log.info(
                "lifecycle policy of %s: %d expired, %d archived",
                repository.name,
                report.count("EXPIRE"),
                report.count("TRANSITION"),
            )

    # -- pull-time update exclusions ------------------------------------------------------------------------------

    def register_exclusion(self, principal_arn: str) -> float:
        now = self.clock()
        with self.store.write() as conn:
            if q.count_exclusions(conn) >= MAX_EXCLUSIONS:
                raise LimitExceeded(
                    f"The pull time update exclusion list already holds the maximum of {MAX_EXCLUSIONS} principals"
                )
            if not q.add_exclusion(conn, principal_arn, now):
                raise ExclusionAlreadyExists(
                    f"The principal '{principal_arn}' is already excluded from pull time updates in the registry "
                    f"with id '{self.account_id}'"
                )
        return now

    def deregister_exclusion(self, principal_arn: str) -> None:
        with self.store.write() as conn:
            if not q.remove_exclusion(conn, principal_arn):
                raise ExclusionNotFound(
                    f"The principal '{principal_arn}' is not excluded from pull time updates in the registry with "
                    f"id '{self.account_id}'"
                )

    def list_exclusions(self, *, after: str | None, limit: int) -> list[str]:
        with self.store.read() as conn:
            return q.list_exclusions(conn, after=after, limit=limit)


def _preview_result(planned: PlannedAction) -> PreviewResult:
    return PreviewResult(
        planned.digest,
        planned.tags,
        planned.pushed_at,
        planned.action,
        planned.target_storage_class,
        planned.rule_priority,
        planned.storage_class,
    )


class _Units:
    """How a repository's images group into units: indexes with their children, subjects with their referrers.
    Holds only the (few) images that belong to another; top-level images stream past it to the evaluator."""

    def __init__(
        self, children: dict[str, list[str]], referrers: dict[str, list[str]], parents: dict[str, list[str]]
    ) -> None:
        self.children = children
        self.referrers = referrers
        self.parents = parents
        self.members: dict[str, ImageRow] = {}
        self.roots: dict[str, ImageRow] = {}

    @classmethod
    def read(cls, conn: Connection, repository_id: int) -> _Units:
        children: dict[str, list[str]] = {}
        parents: dict[str, list[str]] = {}
        for index, child in q.index_children(conn, repository_id):
            children.setdefault(index, []).append(child)
            parents.setdefault(child, []).append(index)
        referrers: dict[str, list[str]] = {}
        for referrer, subject in q.referrers_with_subject(conn, repository_id):
            referrers.setdefault(subject, []).append(referrer)
        return cls(children, referrers, parents)

    def top_level(self, rows: Iterator[ImageRow]) -> Iterator[LifecycleImage]:
        followers = {d for found in self.referrers.values() for d in found} | set(self.parents)
        for row in rows:
            if row.digest in followers:
                self.members[row.digest] = row
                continue
            self.roots[row.digest] = row
            # TODO(archive): the storage class and archive time come from the archive's columns once they exist.
            yield LifecycleImage(row.digest, row.tags, row.pushed_at, row.last_pulled_at, STANDARD, None)

    def expand(self, decisions: list[LifecycleDecision]) -> list[PlannedAction]:
        """Each decision, followed by the images of its unit that go with it."""
        acted = {decision.digest for decision in decisions}
        planned: list[PlannedAction] = []
        for decision in decisions:
            root = self.roots[decision.digest]
            planned.append(_planned(root, decision, None))
            for follower in self._followers(decision.digest, acted):
                planned.append(_planned(self.members[follower], decision, decision.digest))
        return planned

    def _followers(self, root: str, acted: set[str]) -> list[str]:
        """Depth first: an index's untagged children that no index outside ``acted`` lists, then everything's
        referrers. ``acted`` grows with each follower, so a child listed by two acted indexes goes with the first."""
        found: list[str] = []
        pending = [root]
        while pending:
            digest = pending.pop()
            for child in self.children.get(digest, ()):
                row = self.members.get(child)
                if row is None or child in acted or row.tags or not set(self.parents[child]) <= acted:
                    continue
                acted.add(child)
                found.append(child)
                pending.append(child)
            for referrer in self.referrers.get(digest, ()):
                if referrer in self.members and referrer not in acted:
                    acted.add(referrer)
                    found.append(referrer)
                    pending.append(referrer)
        return found


def _planned(row: ImageRow, decision: LifecycleDecision, follows: str | None) -> PlannedAction:
    return PlannedAction(
        row.digest,
        row.tags,
        row.pushed_at,
        STANDARD,
        decision.rule_priority,
        decision.action,
        decision.target_storage_class,
        follows,
    )
