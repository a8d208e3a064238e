"""The archive storage class: images moved to the archive (listed, never pulled) and restored from it, and their
blobs moved between the hot blob store and the archive location.

A blob is in one place, named by its row's ``location``. It belongs in the archive when every image that
references it, in any repository, is ARCHIVED; otherwise it stays (or comes back) hot. A move copies the
stored object as it is (ciphertext: no key is needed), then flips the row under its lock after checking the
copy is there, then deletes the old copy under the same lock after reading the row again. So a referenced blob
always exists where its row says, and a process killed between any two steps leaves at most a spare copy,
which the next settling of the image (the job, or the same call again) deletes.

Restoring is a job: the image is ACTIVATING (still refused to pulls) until its blobs are hot again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from ecrd.domain.manifests import Manifest
from ecrd.domain.records import Repository
from ecrd.errors import ImageStorageClassUpdateNotSupported, ManifestUnknown, RepositoryNotFound
from ecrd.metadata import archive as q
from ecrd.metadata import jobs as job_queries
from ecrd.metadata import repositories as repo_queries
from ecrd.metadata.store import MetadataStore
from ecrd.storage.blob_store import BlobReader, EncryptedBlobStore, blob_name
from ecrd.storage.driver import BlobDriver
from ecrd.storage.transfer import copy_object

log = logging.getLogger("ecrd.archive")

SETTLE_JOB = "archive-settle"
# An archive settles its blobs in the call itself; the job queued with it runs only if that call died first.
SETTLE_RETRY_SECONDS = 600.0

STANDARD = "STANDARD"
ARCHIVE = "ARCHIVE"


class ArchiveAwareBlobStore(EncryptedBlobStore):
    """The hot blob store, which also finds a blob whose bytes are in the archive: a read goes wherever the
    blob is, and an upload of content the archive holds links the stored copy instead of replacing it."""

    def __init__(self, driver: BlobDriver, archive: EncryptedBlobStore) -> None:
        super().__init__(driver)
        self.archive = archive

    def blob_stored(self, digest: str) -> bool:
        return super().blob_stored(digest) or self.archive.blob_stored(digest)

    def open_blob(self, digest: str, key: bytes, size: int) -> BlobReader:
        if super().blob_stored(digest):
            return super().open_blob(digest, key, size)
        return self.archive.open_blob(digest, key, size)


@dataclass(frozen=True, slots=True)
class Settled:
    blobs: int = 0
    bytes: int = 0


class ArchiveService:
    def __init__(
        self,
        store: MetadataStore,
        hot: EncryptedBlobStore,
        archive: EncryptedBlobStore,
        *,
        account_id: str,
        clock: Callable[[], float] = time.time,
        pause: Callable[[str], None] | None = None,
    ) -> None:
        """``pause`` is called between the steps of a blob's move ("copied", "flipped") and before an image
        becomes ACTIVE ("restored"): the crash tests stop a move there."""
        self.store = store
        self.hot = hot
        self.archive_store = archive
        self.account_id = account_id
        self.clock = clock
        self.pause = pause or (lambda _point: None)

    # -- UpdateImageStorageClass ------------------------------------------------------------------------

    def update_storage_class(self, repository: Repository, digest: str, target: str) -> str:
        """Move the image to ``target`` (STANDARD or ARCHIVE); its status after the call."""
        if target == ARCHIVE:
            self.archive(repository, digest, cause="UpdateImageStorageClass")
            return q.ARCHIVED
        return self.restore(repository, digest, cause="UpdateImageStorageClass")

    def _lock_repository(self, conn: Connection, repository: Repository) -> Repository:
        current = repo_queries.get_by_id(conn, repository.id, for_update=True)
        if current is None or current.manifest_key != repository.manifest_key:
            raise RepositoryNotFound(
                f"The repository with name '{repository.name}' does not exist in the registry with id "
                f"'{self.account_id}'"
            )
        return current

    def _image(self, conn: Connection, repository: Repository, digest: str) -> q.ImageState:
        state = q.image_state(conn, repository.id, digest)
        if state is None:
            raise ManifestUnknown(
                f"The image with imageId {{imageDigest:'{digest}', imageTag:'null'}} does not exist within the "
                f"repository with name '{repository.name}' in the registry with id '{self.account_id}'"
            )
        return state

    def archive(self, repository: Repository, digest: str, *, cause: str) -> int:
        """Archive the image with its unit (an index's children, the referrers of each): from the commit on
        they are refused to pulls; then their blobs that no other image needs hot move to the archive.
        Archiving an archived image finishes any move a killed call left. Returns the bytes moved."""
        now = self.clock()
        with self.store.write() as conn:
            repository = self._lock_repository(conn, repository)
            state = self._image(conn, repository, digest)
            if state.status == q.ACTIVATING:
                raise ImageStorageClassUpdateNotSupported(
                    f"The image {digest} is being restored from the archive; archive it again once it is ACTIVE"
                )
            self._refuse_follower(conn, repository, state)
            members = q.unit(conn, repository.id, digest)
            if state.status == q.ACTIVE:
                q.set_status(conn, repository.id, members, old=q.ACTIVE, new=q.ARCHIVED, now=now)
            job_queries.enqueue(
                conn,
                SETTLE_JOB,
                {"repository_id": repository.id, "digests": members},
                now,
                run_after=now + SETTLE_RETRY_SECONDS,
            )
        settled = self.settle(members, repository_id=repository.id)
        log.info(
            "archived %s@%s (%s): %d images, %d blobs moved to the archive, %d bytes",
            repository.name,
            digest,
            cause,
            len(members),
            settled.blobs,
            settled.bytes,
        )
        return settled.bytes

    def _refuse_follower(self, conn: Connection, repository: Repository, state: q.ImageState) -> None:
        """An index's child and a referrer change storage class with their index or subject, not alone."""
        parents = q.active_parents(conn, repository.id, state.digest)
        if parents:
            raise ImageStorageClassUpdateNotSupported(
                f"The image {state.digest} is referenced by the manifest list {parents[0]}, which is not archived; "
                "archive the manifest list instead"
            )
        if state.subject_digest is not None and q.subject_exists(conn, repository.id, state.subject_digest):
            raise ImageStorageClassUpdateNotSupported(
                f"The image {state.digest} is a referrer of {state.subject_digest}: its storage class follows "
                "its subject's"
            )

    def restore(self, repository: Repository, digest: str, *, cause: str) -> str:
        """Begin restoring an archived image with its unit: ACTIVATING now, ACTIVE once the job has brought
        its blobs back. Restoring an ACTIVATING or ACTIVE image changes nothing. Returns the status."""
        now = self.clock()
        with self.store.write() as conn:
            repository = self._lock_repository(conn, repository)
            state = self._image(conn, repository, digest)
            if state.status != q.ARCHIVED:
                return state.status
            self._refuse_follower(conn, repository, state)
            members = q.unit(conn, repository.id, digest)
            q.set_status(conn, repository.id, members, old=q.ARCHIVED, new=q.ACTIVATING, now=now)
            job_queries.enqueue(conn, SETTLE_JOB, {"repository_id": repository.id, "digests": members}, now)
        log.info("restoring %s@%s (%s): %d images", repository.name, digest, cause, len(members))
        return q.ACTIVATING

    # -- the job ----------------------------------------------------------------------------------------

    def run_job(self, payload: dict[str, Any]) -> None:
        """Settle the images' blobs, then make those ACTIVATING ACTIVE: safe to run again at any point."""
        repository_id, members = int(payload["repository_id"]), [str(d) for d in payload["digests"]]
        settled = self.settle(members, repository_id=repository_id)
        self.pause("restored")
        with self.store.write() as conn:
            waiting = [d for d, status in q.statuses(conn, repository_id, members).items() if status == q.ACTIVATING]
            if not waiting:
                return
            blobs = q.blob_places(conn, repository_id, waiting)
            if any(place.location != q.HOT for place in blobs):
                raise RuntimeError("blobs of a restored image are still in the archive; the job will retry")
            q.set_status(conn, repository_id, waiting, old=q.ACTIVATING, new=q.ACTIVE, now=self.clock())
        log.info(
            "restored %d images of repository #%d: %d bytes back from the archive",
            len(waiting),
            repository_id,
            settled.bytes,
        )

    def on_manifest_created(
        self, conn: Connection, repository: Repository, digest: str, manifest: Manifest, now: float
    ) -> None:
        """The registry's hook on every new manifest: a new image whose blobs the archive holds (an image of
        the same layers was archived) brings them back hot, in a job."""
        if q.archived_blobs(conn, manifest.blob_digests()):
            job_queries.enqueue(conn, SETTLE_JOB, {"repository_id": repository.id, "digests": [digest]}, now)

    # -- moving blobs -----------------------------------------------------------------------------------

    def settle(self, images: Sequence[str], *, repository_id: int) -> Settled:
        """Move each blob the images reference to where it belongs (see the module's docstring)."""
        with self.store.read() as conn:
            places = q.blob_places(conn, repository_id, images)
        moved = Settled()
        for place in places:
            copied = self._move(place) if place.location != place.wanted else 0
            if copied:
                moved = Settled(moved.blobs + 1, moved.bytes + copied)
            self._drop_spare(place.digest)
        return moved

    def _stores(self, location: str) -> tuple[EncryptedBlobStore, EncryptedBlobStore]:
        """(where a blob in ``location`` is, the other place)."""
        return (self.hot, self.archive_store) if location == q.HOT else (self.archive_store, self.hot)

    def _move(self, place: q.BlobPlace) -> int:
        source, target = self._stores(place.location)
        name = blob_name(place.digest)
        # Copied again even when a killed move left a copy: that copy may be of an older stored copy.
        size = copy_object(_driver(source), name, _driver(target))
        self.pause("copied")
        with self.store.write() as conn:
            now = q.lock_blob_place(conn, place.digest)
            if now is None or now.location != place.location or now.wanted == place.location:
                return 0  # collected, moved by another settling, or needed where it is again
            if not _stored_here(target, place.digest):
                return 0
            q.set_location(conn, place.digest, now.wanted)
        self.pause("flipped")
        return size

    def _drop_spare(self, digest: str) -> None:
        """Delete the copy of the blob that is not where its row says (a finished or killed move's)."""
        with self.store.write() as conn:
            place = q.lock_blob_place(conn, digest)
            if place is None:
                return
            here, spare = self._stores(place.location)
            if _stored_here(here, digest) and _stored_here(spare, digest):
                spare.delete_blob(digest)


def _driver(blobs: EncryptedBlobStore) -> BlobDriver:
    return blobs.driver


def _stored_here(blobs: EncryptedBlobStore, digest: str) -> bool:
    """Whether this very store holds the blob (not another it would also look in)."""
    return blobs.driver.stat(blob_name(digest)) is not None
