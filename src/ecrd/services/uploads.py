"""Blob upload sessions, shared by the OCI door (POST/PATCH/PUT) and the ECR layer API.

The session (its size) lives in the metadata store and its bytes in the blob store, so any process can
continue an upload another began. Only the completed blob must survive a power loss (decision 0018): opening a
session and appending to it commit without waiting for the disk, and the completion makes the blob's bytes,
its name and its rows durable before it answers. Each process keeps the running sha256 of the uploads it
appended to; when a session moves between processes the hash is recomputed from the stored bytes at completion.
The metadata store's compare-and-set on the session's size is the one arbiter between writers of one upload.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from ecrd.domain.caches import BoundedCache
from ecrd.domain.digests import Digest
from ecrd.domain.records import Repository, Upload
from ecrd.errors import (
    BlobUploadInvalid,
    BlobUploadUnknown,
    CorruptData,
    DigestMismatch,
    KmsError,
    RangeNotSatisfiable,
)
from ecrd.metadata import blobs as blob_queries
from ecrd.metadata import gc as gc_queries
from ecrd.metadata.store import MetadataStore
from ecrd.services.keys import DataKeys
from ecrd.storage.blob_store import (
    EncryptedBlobStore,
    UploadAppender,
    UploadConflict,
    UploadDamaged,
    check_upload_id,
    new_upload_id,
)

# How often a session is read again when another process moves it on while this one settles it.
_SETTLE_ATTEMPTS = 3


@dataclass
class Appender:
    """One request's worth of bytes appended to an upload; ``finish`` makes them part of it."""

    upload: Upload
    writer: UploadAppender
    hasher: Any | None
    written: int = 0

    def write(self, data: bytes) -> None:
        # Hash first, while the batch is still in the CPU's cache, then encrypt and write it.
        if self.hasher is not None:
            self.hasher.update(data)
        self.writer.write(data)
        self.written += len(data)

    def write_all(self, pieces: list[bytes]) -> None:
        """Write the pieces of a body as they arrived: joining them first would copy every byte once more."""
        for piece in pieces:
            self.write(piece)


class UploadService:
    def __init__(
        self, store: MetadataStore, blobs: EncryptedBlobStore, keys: DataKeys, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.keys = keys
        self.clock = clock
        # upload id → (size hashed so far, running hash): only ever a shortcut, trusted when the size agrees.
        self._hashers: BoundedCache[str, tuple[int, Any]] = BoundedCache()

    def _take_hasher(self, upload_id: str, size: int) -> Any | None:
        found = self._hashers.pop(upload_id)
        return found[1] if found is not None and found[0] == size else None

    def start_upload(self, repository: Repository) -> Upload:
        upload_id = new_upload_id()
        # Each upload gets its own data key, wrapped by the repository's key, before any byte arrives. Nothing
        # is stored until the first chunk.
        wrapped = self.keys.wrap(repository, self.keys.new_data_key())
        # Lost in a power loss, the session is unknown to the client's next request, which starts again.
        with self.store.write(flush=False) as conn:
            upload = blob_queries.insert_upload(conn, upload_id, repository.id, self.clock(), wrapped)
        self._hashers.put(upload_id, (0, hashlib.sha256()))
        return upload

    def get_upload(self, repository: Repository, upload_id: str) -> Upload:
        check_upload_id(upload_id)
        upload = blob_queries.read_upload(self.store, upload_id)
        if upload is None or upload.repository_id != repository.id:
            raise BlobUploadUnknown("blob upload unknown to registry", detail={"uuid": upload_id})
        return upload

    def begin_append(self, repository: Repository, upload_id: str, start: int | None) -> Appender:
        """Open the upload for appending; ``start`` (from Content-Range) must be where it ends now."""
        upload = self.get_upload(repository, upload_id)
        key = self.keys.unwrap(repository, upload.wrapped_key)
        try:
            upload = self._settle(repository, upload)
            if start is not None and start != upload.size:
                # OCI distribution spec: a chunk out of order gets 416 with the Range received so far.
                raise RangeNotSatisfiable(
                    f"chunk starts at byte {start} but the upload has {upload.size} bytes",
                    size=upload.size,
                    last_valid_byte=upload.size - 1,
                )
            writer = self.blobs.append(upload_id, key, upload.size)
        except (UploadDamaged, CorruptData):
            raise self._damaged(upload_id) from None
        return Appender(upload, writer, self._take_hasher(upload_id, upload.size))

    def _damaged(self, upload_id: str) -> BlobUploadUnknown:
        self._discard(upload_id)
        return BlobUploadUnknown(
            "blob upload unknown to registry: its stored bytes are damaged; start the upload again",
            detail={"uuid": upload_id},
        )

    def _settle(self, repository: Repository, upload: Upload) -> Upload:
        """The upload as the blob store holds it, after a process died between storing a chunk and recording it.

        A chunk is stored whole or not at all, and only then is the session's size moved on. A chunk stored
        past the recorded size arrived whole and only its acknowledgement was lost: the session moves on to it
        (the client learns the new size from the upload's status, or a 416). After a power loss a part may be
        short (``UploadDamaged``) or unreadable (its records do not authenticate: ``CorruptData`` when it is
        read): the upload is then discarded, never completed from it.
        """
        for _ in range(_SETTLE_ATTEMPTS):
            extent = self.blobs.upload_extent(upload.id, upload.size)
            if extent == upload.size:
                return upload
            with self.store.write(flush=False) as conn:
                moved = blob_queries.advance_upload(conn, upload.id, upload.size, extent, self.clock())
            self._hashers.pop(upload.id)
            if moved:
                return dataclasses.replace(upload, size=extent, updated_at=self.clock())
            upload = self.get_upload(repository, upload.id)  # another process moved it meanwhile
        return upload

    def finish_append(self, appender: Appender) -> Upload:
        upload = appender.upload
        try:
            new_size = appender.writer.seal()
        except UploadConflict:
            raise BlobUploadInvalid(
                "another request stored a chunk at this offset while this one was being written; "
                "get the upload's status and resume",
                detail={"uuid": upload.id},
            ) from None
        except UploadDamaged:
            raise self._damaged(upload.id) from None
        if new_size == upload.size:
            return upload
        # Neither the part nor this commit waits for the disk: see the module's docstring.
        with self.store.write(flush=False) as conn:
            moved = blob_queries.advance_upload(conn, upload.id, upload.size, new_size, self.clock())
            current = None if moved else blob_queries.get_upload(conn, upload.id)
        if not moved:
            # Only this request could store the part at this size, so a session that moved past it moved through
            # it: another request found the stored chunk and counted it first.
            if current is None:
                raise BlobUploadUnknown(
                    "blob upload unknown to registry: it was cancelled meanwhile", detail={"uuid": upload.id}
                )
            return current
        if appender.hasher is not None:
            self._hashers.put(upload.id, (new_size, appender.hasher))
        return dataclasses.replace(upload, size=new_size, updated_at=self.clock())

    def abort_append(self, appender: Appender) -> None:
        """Drop a chunk that did not arrive whole; the upload stays resumable from its last size."""
        self._hashers.pop(appender.upload.id)
        appender.writer.abort()

    def complete_upload(self, repository: Repository, upload_id: str, digest: str) -> int:
        """Verify the upload against ``digest`` and make it a blob linked into the repository."""
        wanted = Digest.parse(digest)
        upload = self.get_upload(repository, upload_id)
        key = self.keys.unwrap(repository, upload.wrapped_key)
        try:
            upload = self._settle(repository, upload)
            hasher = self._take_hasher(upload_id, upload.size) if wanted.algorithm == "sha256" else None
            computed = hasher.hexdigest() if hasher is not None else self._hash_stored(upload, key, wanted)
            if computed != wanted.encoded:
                self._discard(upload_id)
                raise DigestMismatch(
                    f"provided digest {digest} does not match the uploaded content "
                    f"(sha: {wanted.algorithm}:{computed})",
                    detail={"expected": digest, "computed": f"{wanted.algorithm}:{computed}"},
                )
            # Outside the transaction: concatenating the parts of a chunked upload copies its bytes once.
            staged = self.blobs.stage_upload(upload_id, upload.size)
        except (UploadDamaged, CorruptData):
            raise self._damaged(upload_id) from None
        now = self.clock()
        with self.store.write() as conn:
            claimed = blob_queries.claim_blob(conn, digest, upload.size, now)
            if not claimed and not gc_queries.hold_stored_blob(conn, digest):
                # A garbage collection deleted the blob after the claim found it: the content is ours to store.
                claimed = blob_queries.claim_blob(conn, digest, upload.size, now)
            if claimed:
                # Ours is the first copy: it becomes the blob, sealed with this upload's data key. Moving it
                # inside the transaction that claimed the row keeps a concurrent upload from swapping keys.
                self.blobs.commit_upload(staged, digest)
                wrapped: bytes | None = upload.wrapped_key
            else:
                # The content is stored already, under its own data key (its row held above): wrap that key
                # for this repository.
                stored = self.blobs.blob_stored(digest)
                wrapped = self._rewrap_existing(conn, repository, digest) if stored else None
                if wrapped is None:
                    # No repository can unwrap the stored copy (its keys are gone), or its bytes were lost
                    # (`ecrd fsck` reports it as damage): ours replaces it.
                    self.blobs.commit_upload(staged, digest)
                    blob_queries.forget_blob_keys(conn, digest)
                    wrapped = upload.wrapped_key
            blob_queries.link_held_blob(conn, repository.id, digest, now, wrapped)
            blob_queries.delete_upload(conn, upload_id)
        self.blobs.delete_upload(upload_id)
        return upload.size

    def _rewrap_existing(self, conn: Connection, repository: Repository, digest: str) -> bytes | None:
        for holder, wrapped in blob_queries.blob_key_holders(conn, digest):
            if holder.id == repository.id:
                return wrapped
            try:
                return self.keys.wrap(repository, self.keys.unwrap(holder, wrapped))
            except (KmsError, CorruptData):
                continue
        return None

    def _hash_stored(self, upload: Upload, key: bytes, wanted: Digest) -> str:
        hasher = wanted.hasher()
        for chunk in self.blobs.read_upload(upload.id, key, upload.size):
            hasher.update(chunk)
        return str(hasher.hexdigest())

    def cancel_upload(self, repository: Repository, upload_id: str) -> None:
        self.get_upload(repository, upload_id)
        self._discard(upload_id)

    def _discard(self, upload_id: str) -> None:
        self._hashers.pop(upload_id)
        with self.store.write() as conn:
            blob_queries.delete_upload(conn, upload_id)
        self.blobs.delete_upload(upload_id)

    def expire_uploads(self, max_age_seconds: float) -> int:
        """Remove sessions idle for longer than ``max_age_seconds``; return how many."""
        with self.store.read() as conn:
            stale = blob_queries.expired_uploads(conn, self.clock() - max_age_seconds)
        for upload_id in stale:
            self._discard(upload_id)
        return len(stale)
