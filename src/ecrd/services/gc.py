"""Online garbage collection: blobs no manifest references, idle upload sessions and objects no row names leave
the blob stores and the metadata while pushes and pulls go on (decision 0013).

A blob is collected in two transactions over keyset batches of the blobs table. The first locks the rows,
decides again under the locks that no manifest references them and that they were neither stored nor linked
within the grace period, and deletes every repository's link: from its commit on no manifest can reference
them (a push needs the link). The second locks the rows again, keeps those still unlinked, deletes their
objects from every store and then the rows, and commits. A crash between the object's deletion and the commit
leaves a row that nothing links and nothing can read, which the next collection deletes; it never leaves a
link without its object.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from itertools import islice
from typing import TypeVar

from ecrd.domain.progress import Progress, no_progress
from ecrd.domain.records import AuditEvent
from ecrd.metadata import gc as gc_queries
from ecrd.metadata.store import MetadataStore
from ecrd.services.audit import AuditTrail
from ecrd.services.uploads import UploadService
from ecrd.storage.blob_store import EncryptedBlobStore, StoredBlob

log = logging.getLogger("ecrd.gc")

SCHEDULE = "garbage-collection"
AUDIT_ACTION = "ecrd:CollectGarbage"
DEFAULT_BATCH = 500
# Unfinished puts (temporary files, multipart uploads) younger than this are left alone, whatever the grace.
INCOMPLETE_WRITE_AGE_SECONDS = 6 * 3600.0
# expire_uploads removes at most this many sessions a call; a collection calls it until fewer come back.
_UPLOAD_EXPIRY_PAGE = 100
_MAX_UPLOAD_EXPIRY_PAGES = 10_000

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class CollectionReport:
    """What one collection freed (or, dry, would free). ``bytes`` counts the blobs' content; ``orphans`` are
    objects no row names (a crash's leftovers), blobs and upload parts alike."""

    dry_run: bool
    blobs: int = 0
    bytes: int = 0
    uploads: int = 0
    orphans: int = 0
    orphan_bytes: int = 0
    seconds: float = 0.0

    def as_json(self) -> dict[str, object]:
        out = asdict(self)
        out["seconds"] = round(self.seconds, 3)
        return out


@dataclass
class _Tally:
    blobs: int = 0
    bytes: int = 0
    uploads: int = 0
    orphans: int = 0
    orphan_bytes: int = 0

    def counts(self) -> dict[str, int]:
        return asdict(self)


def _batches(items: Iterable[_T], size: int) -> Iterator[list[_T]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


class GarbageCollector:
    """``collect()`` runs one collection; ``collect_if_due()`` runs one when this process claims the schedule."""

    def __init__(
        self,
        store: MetadataStore,
        stores: Sequence[EncryptedBlobStore],
        uploads: UploadService,
        *,
        grace_seconds: float,
        upload_expiry_seconds: float,
        audit: AuditTrail | None = None,
        clock: Callable[[], float] = time.time,
        batch_size: int = DEFAULT_BATCH,
        pause: Callable[[str], None] | None = None,
    ) -> None:
        """``stores``: the hot store first, then any other store a blob may live in (the archive); a blob is
        deleted from all of them. ``pause`` is called at the named points where races with writers are decided:
        "chosen" and "unlinked" between a collection's transactions, "deleting" and "deleted" inside the one that
        deletes, before and after the objects go (the race and crash tests hold a collection there)."""
        self.store = store
        self.stores = tuple(stores)
        self.uploads = uploads
        self.grace_seconds = grace_seconds
        self.upload_expiry_seconds = upload_expiry_seconds
        self.audit = audit
        self.clock = clock
        self.batch_size = batch_size
        self.pause = pause or (lambda _point: None)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    def collect_if_due(self, interval_seconds: float) -> CollectionReport | None:
        """Run a collection if one is due and this process is the one to run it (one of a cluster claims it)."""
        with self.store.write() as conn:
            claimed = gc_queries.claim_schedule(conn, SCHEDULE, self.worker, self.clock(), interval_seconds)
        return self.collect() if claimed else None

    def collect(self, *, dry_run: bool = False, progress: Progress = no_progress) -> CollectionReport:
        """One collection; ``progress`` hears of the phases: "idle uploads", "blobs" (those examined),
        "orphan objects" (those listed)."""
        started, began = self.clock(), time.monotonic()
        tally = _Tally()
        progress("idle uploads", 0, None)
        tally.uploads = self._expire_uploads(dry_run)
        progress("idle uploads", tally.uploads, tally.uploads)
        self._collect_blobs(tally, dry_run, progress)
        self._collect_orphans(tally, dry_run, progress)
        if not dry_run:
            self._sweep_incomplete_writes()
        report = CollectionReport(dry_run=dry_run, seconds=time.monotonic() - began, **tally.counts())
        self._record(report, started)
        return report

    # -- upload sessions --------------------------------------------------------------------------------

    def _expire_uploads(self, dry_run: bool) -> int:
        if dry_run:
            with self.store.read() as conn:
                return gc_queries.count_expired_uploads(conn, self.clock() - self.upload_expiry_seconds)
        expired = 0
        for _ in range(_MAX_UPLOAD_EXPIRY_PAGES):
            count = self.uploads.expire_uploads(self.upload_expiry_seconds)
            expired += count
            if count < _UPLOAD_EXPIRY_PAGE:
                break
        return expired

    # -- unreferenced blobs -----------------------------------------------------------------------------

    def _collect_blobs(self, tally: _Tally, dry_run: bool, progress: Progress) -> None:
        cutoff = self.clock() - self.grace_seconds
        after = ""
        examined = 0
        progress("blobs", examined, None)
        while True:
            with self.store.read() as conn:
                page = gc_queries.blob_page(conn, after, self.batch_size)
                chosen = gc_queries.collectable(conn, page[0], page[-1], cutoff) if page else []
            if not page:
                return
            after = page[-1]
            examined += len(page)
            progress("blobs", examined, None)
            if not chosen:
                continue
            if dry_run:
                tally.blobs += len(chosen)
                tally.bytes += sum(size for _digest, size in chosen)
                continue
            self.pause("chosen")
            with self.store.write() as conn:
                taken = gc_queries.take_collectable(conn, [digest for digest, _size in chosen], cutoff)
                gc_queries.unlink_everywhere(conn, [digest for digest, _size in taken])
            if not taken:
                continue
            self.pause("unlinked")
            with self.store.write() as conn:
                doomed = gc_queries.take_unlinked(conn, [digest for digest, _size in taken])
                self.pause("deleting")
                for digest, _size in doomed:
                    # Under the row's lock: an upload of the same content waits, then stores its own copy.
                    for blob_store in self.stores:
                        blob_store.delete_blob(digest)
                self.pause("deleted")
                gc_queries.delete_rows(conn, [digest for digest, _size in doomed])
            tally.blobs += len(doomed)
            tally.bytes += sum(size for _digest, size in doomed)

    # -- objects without rows ---------------------------------------------------------------------------

    def _collect_orphans(self, tally: _Tally, dry_run: bool, progress: Progress) -> None:
        cutoff = self.clock() - self.grace_seconds
        listed = 0
        progress("orphan objects", listed, None)
        for blob_store in self.stores:
            old = (blob for blob in blob_store.list_blobs() if blob.changed_at < cutoff)
            for batch in _batches(old, self.batch_size):
                listed += len(batch)
                progress("orphan objects", listed, None)
                with self.store.read() as conn:
                    named = gc_queries.recorded(conn, [blob.digest for blob in batch])
                orphans = [blob for blob in batch if blob.digest not in named]
                if orphans and not dry_run:
                    orphans = self._delete_orphans(blob_store, orphans)
                tally.orphans += len(orphans)
                tally.orphan_bytes += sum(blob.stored_size for blob in orphans)
        self._collect_orphan_uploads(tally, dry_run, cutoff)

    def _collect_orphan_uploads(self, tally: _Tally, dry_run: bool, cutoff: float) -> None:
        hot = self.stores[0]
        old_uploads = (upload for upload in hot.list_uploads() if upload.changed_at < cutoff)
        for uploads in _batches(old_uploads, self.batch_size):
            with self.store.read() as conn:
                live = gc_queries.upload_sessions(conn, [upload.upload_id for upload in uploads])
            # A session's row is made before its first part and deleted before its parts: parts without a
            # row belong to a session that has ended.
            leftovers = [upload for upload in uploads if upload.upload_id not in live]
            if not dry_run:
                for upload in leftovers:
                    hot.delete_upload(upload.upload_id)
            tally.orphans += len(leftovers)
            tally.orphan_bytes += sum(upload.stored_size for upload in leftovers)

    def _delete_orphans(self, blob_store: EncryptedBlobStore, orphans: list[StoredBlob]) -> list[StoredBlob]:
        """Delete the objects that still have no row, each while a placeholder row keeps any upload of the same
        content from committing it meanwhile; the placeholders go before the commit."""
        deleted = []
        with self.store.write() as conn:
            now = self.clock()
            for blob in orphans:
                if gc_queries.claim_absent(conn, blob.digest, now):
                    blob_store.delete_blob(blob.digest)
                    deleted.append(blob)
            gc_queries.delete_rows(conn, [blob.digest for blob in deleted])
        return deleted

    def _sweep_incomplete_writes(self) -> int:
        # An unfinished put may be an upload still arriving (a large layer over a slow link; a multipart upload
        # counts its age from its start): those hours old, never less, are taken for abandoned.
        older_than = self.clock() - max(self.grace_seconds, INCOMPLETE_WRITE_AGE_SECONDS)
        return sum(blob_store.sweep_incomplete_writes(older_than) for blob_store in self.stores)

    # -- the record -------------------------------------------------------------------------------------

    def _record(self, report: CollectionReport, started: float) -> None:
        finished = self.clock()
        counts = {
            "blobs": report.blobs,
            "bytes": report.bytes,
            "uploads": report.uploads,
            "orphans": report.orphans,
            "orphan_bytes": report.orphan_bytes,
        }
        with self.store.write() as conn:
            gc_queries.record_run(
                conn,
                started_at=started,
                finished_at=finished,
                worker=self.worker,
                dry_run=report.dry_run,
                counts=counts,
            )
        if self.audit is not None and not report.dry_run:
            self.audit.record(
                AuditEvent(
                    time=finished,
                    request_id=str(uuid.uuid4()),
                    principal="ecrd",
                    action=AUDIT_ACTION,
                    repository=None,
                    outcome="allowed",
                    status=200,
                    error_code=None,
                    source_ip="",
                )
            )
        log.info(
            "garbage collection%s: %d blobs (%d bytes), %d upload sessions, %d orphan objects (%d bytes) in %.1f s",
            " (dry run)" if report.dry_run else "",
            report.blobs,
            report.bytes,
            report.uploads,
            report.orphans,
            report.orphan_bytes,
            report.seconds,
        )

    def history(self, limit: int = 20) -> list[dict[str, object]]:
        with self.store.read() as conn:
            return gc_queries.runs(conn, limit)
