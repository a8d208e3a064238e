"""What the registry holds and owes right now: stored blobs and bytes, and the job queue's depth and age (and,
for ``ecrd status``, counts of repositories, images, users and keys).

Read for the metrics at scrape time; a snapshot is kept for a few seconds so that several scrapers (or a
scraper retrying) cost the metadata store one pair of grouped queries, not one per scrape.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ecrd.metadata import accounts as account_queries
from ecrd.metadata import blobs as blob_queries
from ecrd.metadata import iam as iam_queries
from ecrd.metadata import jobs as job_queries
from ecrd.metadata import repositories as repository_queries
from ecrd.metadata.store import MetadataStore

# How long a snapshot answers scrapes: Prometheus scrapes every 15-60 s, so one query per scrape at most.
SNAPSHOT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class StoredBlobs:
    location: str  # "hot" (the blob store) or "archive"
    blobs: int
    bytes: int


@dataclass(frozen=True, slots=True)
class QueuedJobs:
    kind: str
    status: str  # "queued" or "running"
    count: int
    oldest_age_seconds: float


@dataclass(frozen=True, slots=True)
class UsageSnapshot:
    storage: tuple[StoredBlobs, ...]
    jobs: tuple[QueuedJobs, ...]


class RegistryUsage:
    def __init__(self, store: MetadataStore, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self._lock = threading.Lock()
        self._snapshot: UsageSnapshot | None = None
        self._taken_at = 0.0

    def snapshot(self) -> UsageSnapshot:
        """The usage as of at most ``SNAPSHOT_SECONDS`` ago."""
        with self._lock:
            now = time.monotonic()
            if self._snapshot is None or now - self._taken_at >= SNAPSHOT_SECONDS:
                self._snapshot, self._taken_at = self.read(), now
            return self._snapshot

    def read(self) -> UsageSnapshot:
        """The usage as of now (no snapshot)."""
        with self.store.read() as conn:
            storage = blob_queries.storage_by_location(conn)
            jobs = job_queries.queue_depths(conn)
        now = self.clock()
        return UsageSnapshot(
            tuple(StoredBlobs(location, count, size) for location, count, size in storage),
            tuple(QueuedJobs(kind, status, count, max(0.0, now - oldest)) for kind, status, count, oldest in jobs),
        )


@dataclass(frozen=True, slots=True)
class RegistryStatus:
    """What ``ecrd status`` reports: the usage above, read now, plus counts of what the deployment holds in all
    its accounts."""

    account_ids: tuple[str, ...]
    repositories: int
    images: int
    users: int
    access_keys: int
    usage: UsageSnapshot


def registry_status(store: MetadataStore, *, clock: Callable[[], float] = time.time) -> RegistryStatus:
    """A fresh reading (not the metrics' cached snapshot): an operator asking wants the state as of now."""
    usage = RegistryUsage(store, clock=clock).read()
    with store.read() as conn:
        account_ids = tuple(account.account_id for account in account_queries.list_accounts(conn))
        repositories, images = repository_queries.count_repositories_and_images(conn)
        users = iam_queries.count_users(conn)
        access_keys = iam_queries.count_long_term_keys(conn)
    return RegistryStatus(account_ids, repositories, images, users, access_keys, usage)
