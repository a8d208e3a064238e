"""What the registry holds and owes right now: stored blobs and bytes, and the job queue's depth and age.

Read for the metrics at scrape time; a snapshot is kept for a few seconds so that several scrapers (or a
scraper retrying) cost the metadata store one pair of grouped queries, not one per scrape.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ecrd.metadata import blobs as blob_queries
from ecrd.metadata import jobs as job_queries
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
                self._snapshot, self._taken_at = self._read(), now
            return self._snapshot

    def _read(self) -> UsageSnapshot:
        with self.store.read() as conn:
            storage = blob_queries.storage_by_location(conn)
            jobs = job_queries.queue_depths(conn)
        now = self.clock()
        return UsageSnapshot(
            tuple(StoredBlobs(location, count, size) for location, count, size in storage),
            tuple(QueuedJobs(kind, status, count, max(0.0, now - oldest)) for kind, status, count, oldest in jobs),
        )
