"""The event outbox: what happened to images (pushed, deleted, scanned, imported) written as ECR's EventBridge
events in the transaction of the change itself, so an event exists exactly when its cause committed."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection

from ecrd.domain import events as shapes
from ecrd.domain.events import Origin, RegistryEvent
from ecrd.domain.manifests import Manifest
from ecrd.domain.pull_through import PullThroughRule
from ecrd.domain.records import Repository
from ecrd.domain.replication import Destination
from ecrd.metadata import accounts as account_queries
from ecrd.metadata import events as event_queries
from ecrd.metadata import images as image_queries
from ecrd.metadata.store import MetadataStore
from ecrd.services.scanning import FindingsChange


class EventOutbox:
    """Records events on the connection of the cause's transaction (the hooks the composition root connects to
    the registry, scanning and the pull-through cache) and lists them for ``ecrd events``."""

    def __init__(
        self,
        store: MetadataStore,
        *,
        account_id: str,
        region: str,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.origin = Origin(account_id, region)
        self.new_id = new_id
        self.clock = clock

    def record(
        self,
        conn: Connection,
        detail_type: str,
        detail: dict[str, Any],
        *,
        repository: str | None,
        now: float,
        origin: Origin | None = None,
    ) -> None:
        """Record an event of this registry (or of ``origin``, another registry of the deployment)."""
        event = shapes.build_event(
            origin or self.origin, detail_type, detail, event_id=self.new_id(), moment=now, repository=repository
        )
        event_queries.record_event(conn, event)

    # -- the causes ----------------------------------------------------------------------------------------

    def image_pushed(
        self, conn: Connection, repository: Repository, digest: str, tag: str | None, manifest: Manifest, now: float
    ) -> None:
        detail = shapes.image_action(
            "PUSH",
            repository.name,
            digest,
            tag=tag,
            manifest_media_type=manifest.media_type,
            artifact_media_type=manifest.config.media_type if manifest.config else None,
        )
        self.record(conn, shapes.IMAGE_ACTION, detail, repository=repository.name, now=now)

    def image_deleted(
        self, conn: Connection, repository: Repository, digest: str, tags: Sequence[str], now: float
    ) -> None:
        """One DELETE per tag the image lost (one without a tag for an untagged image)."""
        for tag in tags or (None,):
            detail = shapes.image_action("DELETE", repository.name, digest, tag=tag)
            self.record(conn, shapes.IMAGE_ACTION, detail, repository=repository.name, now=now)

    def scan_stored(
        self,
        conn: Connection,
        repository: Repository,
        digest: str,
        status: str,
        severity_counts: dict[str, int],
        now: float,
    ) -> None:
        detail = shapes.image_scan(
            repository.name,
            digest,
            status=status,
            tags=sorted(image_queries.tags_of(conn, repository.id, digest)),
            severity_counts=severity_counts,
        )
        self.record(conn, shapes.IMAGE_SCAN, detail, repository=repository.name, now=now)

    def findings_changed(self, conn: Connection, change: FindingsChange, now: float) -> None:
        """A re-match against new advisories changed an image's findings: an "ECR Image Scan" event with the new
        counts, as a scan's (continuous scanning re-scans without reading the image again)."""
        detail = shapes.image_scan(
            change.repository,
            change.digest,
            status="COMPLETE",
            tags=sorted(image_queries.tags_of(conn, change.repository_id, change.digest)),
            severity_counts=change.severity_counts,
        )
        self.record(conn, shapes.IMAGE_SCAN, detail, repository=change.repository, now=now)

    def image_imported(
        self,
        conn: Connection,
        rule: PullThroughRule,
        repository: Repository,
        tag: str | None,
        digest: str,
        now: float,
    ) -> None:
        detail = shapes.pull_through_cache_action(
            prefix=rule.ecr_repository_prefix,
            repository=repository.name,
            upstream_registry_url=rule.upstream_registry_url,
            tag=tag,
            digest=digest,
        )
        self.record(conn, shapes.PULL_THROUGH_CACHE_ACTION, detail, repository=repository.name, now=now)

    def image_replicated(
        self,
        conn: Connection,
        repository: Repository,
        digest: str,
        tag: str | None,
        destination: Destination,
        status: str,
        now: float,
    ) -> None:
        """ECR writes this event in the destination's registry, naming the source: so does ecrd when the
        destination is a registry of this deployment. A peer is another deployment, so there the source records
        the outcome, naming the destination in two fields of ecrd's own."""
        detail = shapes.replication_action(
            repository=repository.name,
            digest=digest,
            tag=tag,
            source_account=self.origin.account_id,
            source_region=self.origin.region,
            result="SUCCESS" if status == "COMPLETE" else "FAILURE",
        )
        origin = None
        if account_queries.get_account(conn, destination.registry_id) is not None:
            origin = Origin(destination.registry_id, destination.region)
        else:
            detail["destination-account"] = destination.registry_id
            detail["destination-region"] = destination.region
        self.record(conn, shapes.REPLICATION_ACTION, detail, repository=repository.name, now=now, origin=origin)

    # -- reading -------------------------------------------------------------------------------------------

    def recent(
        self, *, detail_type: str | None = None, repository: str | None = None, limit: int = 100
    ) -> list[RegistryEvent]:
        with self.store.read() as conn:
            return event_queries.recent_events(conn, detail_type=detail_type, repository=repository, limit=limit)
