"""Blob upload sessions, shared by the OCI door (POST/PATCH/PUT) and the ECR layer API.

The session (its size) lives in the metadata store and its bytes in the blob store, so any process can
continue an upload another began. Each process keeps the running sha256 of the uploads it appended to; when
a session moves between processes the hash is recomputed from the stored bytes at completion.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

from sqlalchemy import Connection

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
from ecrd.metadata.store import MetadataStore
from ecrd.services.keys import DataKeys
from ecrd.storage.driver import BlobDriver, UploadWriter
from ecrd.storage.encryption import (
    CorruptBlob,
    EncryptedUploadWriter,
    encrypted_size,
    ends_whole,
    plaintext_size,
    read_plaintext,
)
from ecrd.storage.filesystem import check_upload_id, new_upload_id


class _HasherCache:
    """upload id → (size hashed so far, running hash); bounded, and only ever a shortcut."""

    def __init__(self, capacity: int = 4096) -> None:
        self._items: OrderedDict[str, tuple[int, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._capacity = capacity

    def take(self, upload_id: str, size: int) -> Any | None:
        with self._lock:
            item = self._items.pop(upload_id, None)
        if item is not None and item[0] == size:
            return item[1]
        return None

    def put(self, upload_id: str, size: int, hasher: Any) -> None:
        with self._lock:
            self._items[upload_id] = (size, hasher)
            self._items.move_to_end(upload_id)
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)

    def forget(self, upload_id: str) -> None:
        with self._lock:
            self._items.pop(upload_id, None)


@dataclass
class Appender:
    """One request's worth of bytes appended to an upload; ``finish`` makes them part of it."""

    upload: Upload
    writer: UploadWriter
    hasher: Any | None
    written: int = 0

    def write(self, data: bytes) -> None:
        # Hash first, while the batch is still in the CPU's cache, then encrypt and write it.
        if self.hasher is not None:
            self.hasher.update(data)
        self.writer.write(data)
        self.written += len(data)


class UploadService:
    def __init__(self, store: MetadataStore, driver: BlobDriver, keys: DataKeys, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.driver = driver
        self.keys = keys
        self.clock = clock
        self._hashers = _HasherCache()

    def start_upload(self, repository: Repository) -> Upload:
        upload_id = new_upload_id()
        # Each upload gets its own data key, wrapped by the repository's key, before any byte arrives.
        wrapped = self.keys.wrap(repository, self.keys.new_data_key())
        self.driver.create_upload(upload_id)
        with self.store.write() as conn:
            upload = blob_queries.insert_upload(conn, upload_id, repository.id, self.clock(), wrapped)
        self._hashers.put(upload_id, 0, hashlib.sha256())
        return upload

    def get_upload(self, repository: Repository, upload_id: str) -> Upload:
        check_upload_id(upload_id)
        with self.store.read() as conn:
            upload = blob_queries.get_upload(conn, upload_id)
        if upload is None or upload.repository_id != repository.id:
            raise BlobUploadUnknown("blob upload unknown to registry", detail={"uuid": upload_id})
        return upload

    def begin_append(self, repository: Repository, upload_id: str, start: int | None) -> Appender:
        """Open the upload for appending; ``start`` (from Content-Range) must be where it ends now."""
        key = self.keys.unwrap(repository, self.get_upload(repository, upload_id).wrapped_key)
        fh = self.driver.open_upload_file(upload_id)
        try:
            # Read the session again under the file's lock: an earlier writer may have just moved it on.
            upload = self._settle(self.get_upload(repository, upload_id), fh, key)
            if start is not None and start != upload.size:
                # OCI distribution spec: a chunk out of order gets 416 with the Range received so far.
                raise RangeNotSatisfiable(
                    f"chunk starts at byte {start} but the upload has {upload.size} bytes",
                    size=upload.size,
                    last_valid_byte=upload.size - 1,
                )
            writer = EncryptedUploadWriter(fh, key, upload.size)
        except CorruptBlob:
            fh.close()
            self._discard(upload_id)
            raise BlobUploadUnknown("blob upload unknown to registry: its stored bytes are damaged; start the "
                                    "upload again", detail={"uuid": upload_id}) from None
        except BaseException:
            fh.close()
            raise
        return Appender(upload, writer, self._hashers.take(upload_id, upload.size))

    def _settle(self, upload: Upload, fh: BinaryIO, key: bytes) -> Upload:
        """The upload as its stored bytes hold it, after a process died appending to it.

        An append rewrites the file's last record and then records the new size. A crash between the two
        leaves a file that does not end where the session says. When the file ends with a whole last record,
        the chunk arrived and was made durable and only its acknowledgement was lost: the session moves on
        to it (the client learns the new size from the upload's status, or a 416). Otherwise the crash tore
        the record the upload ended with, and the bytes cannot be trusted: the session is discarded, and the
        client starts the upload again.
        """
        stored = fh.seek(0, os.SEEK_END)
        if stored == encrypted_size(upload.size) or (upload.size == 0 and stored == 0):
            return upload  # the usual case (a new upload's file is empty until its first chunk)
        size = plaintext_size(stored)
        if size is not None and size > upload.size and ends_whole(fh, key, size):
            with self.store.write() as conn:
                moved = blob_queries.advance_upload(conn, upload.id, upload.size, size, self.clock())
            if moved:
                self._hashers.forget(upload.id)
                return dataclasses.replace(upload, size=size, updated_at=self.clock())
        if upload.size == 0:
            return upload  # nothing was acknowledged: the next chunk starts the file over
        self._discard(upload.id)
        raise BlobUploadUnknown(
            "blob upload unknown to registry: its stored bytes were cut short by a server crash; start the "
            "upload again",
            detail={"uuid": upload.id},
        )

    def finish_append(self, appender: Appender) -> Upload:
        upload = appender.upload
        try:
            new_size = appender.writer.seal()
            # The session moves on while the file is still locked, so the next writer sees both agree.
            with self.store.write() as conn:
                moved = blob_queries.advance_upload(conn, upload.id, upload.size, new_size, self.clock())
        finally:
            appender.writer.close()
        if not moved:
            raise BlobUploadInvalid(
                "the upload was changed by another request while this chunk was being written; "
                "get its status and resume",
                detail={"uuid": upload.id},
            )
        if appender.hasher is not None:
            self._hashers.put(upload.id, new_size, appender.hasher)
        return dataclasses.replace(upload, size=new_size, updated_at=self.clock())

    def abort_append(self, appender: Appender) -> None:
        """Drop a chunk that did not arrive whole; the upload stays resumable from its last size."""
        self._hashers.forget(appender.upload.id)
        appender.writer.abort()

    def complete_upload(self, repository: Repository, upload_id: str, digest: str) -> int:
        """Verify the upload against ``digest`` and make it a blob linked into the repository."""
        wanted = Digest.parse(digest)
        upload = self.get_upload(repository, upload_id)
        key = self.keys.unwrap(repository, upload.wrapped_key)
        with self.driver.read_upload(upload_id) as fh:
            upload = self._settle(upload, fh, key)
        hasher = self._hashers.take(upload_id, upload.size) if wanted.algorithm == "sha256" else None
        computed = hasher.hexdigest() if hasher is not None else self._hash_stored(upload, key, wanted)
        if computed != wanted.encoded:
            self._discard(upload_id)
            raise DigestMismatch(
                f"provided digest {digest} does not match the uploaded content (sha: {wanted.algorithm}:{computed})",
                detail={"expected": digest, "computed": f"{wanted.algorithm}:{computed}"},
            )
        if upload.size == 0:
            # An upload's file stays empty until its first chunk; a blob file always starts with the header.
            EncryptedUploadWriter(self.driver.open_upload_file(upload_id), key, 0).commit()
        now = self.clock()
        with self.store.write() as conn:
            if blob_queries.claim_blob(conn, digest, upload.size, now):
                # Ours is the first copy: it becomes the blob, sealed with this upload's data key. Renaming
                # inside the transaction that claimed the row keeps a concurrent upload from swapping keys.
                self.driver.commit_upload(upload_id, digest)
                wrapped: bytes | None = upload.wrapped_key
            else:
                # The content is stored already, under its own data key: wrap that key for this repository.
                blob_queries.lock_blob(conn, digest)
                stored = self.driver.blob_size(digest) is not None
                wrapped = self._rewrap_existing(conn, repository, digest) if stored else None
                if wrapped is None:
                    # No repository can unwrap the stored copy (its keys are gone), or its file was lost
                    # (`ecrd fsck` reports it as damage): ours replaces it.
                    self.driver.commit_upload(upload_id, digest)
                    blob_queries.forget_blob_keys(conn, digest)
                    wrapped = upload.wrapped_key
            blob_queries.link_blob(conn, repository.id, digest, now, wrapped)
            blob_queries.delete_upload(conn, upload_id)
        self.driver.delete_upload(upload_id)
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
        if upload.size == 0:
            return str(hasher.hexdigest())
        with self.driver.read_upload(upload.id) as fh:
            try:
                for chunk in read_plaintext(fh, key, upload.size):
                    hasher.update(chunk)
            except CorruptBlob:
                raise BlobUploadInvalid("upload data is damaged; start the upload again",
                                        detail={"uuid": upload.id}) from None
        return str(hasher.hexdigest())

    def cancel_upload(self, repository: Repository, upload_id: str) -> None:
        self.get_upload(repository, upload_id)
        self._discard(upload_id)

    def _discard(self, upload_id: str) -> None:
        self._hashers.forget(upload_id)
        with self.store.write() as conn:
            blob_queries.delete_upload(conn, upload_id)
        self.driver.delete_upload(upload_id)

    def expire_uploads(self, max_age_seconds: float) -> int:
        """Remove sessions idle for longer than ``max_age_seconds``; return how many."""
        with self.store.read() as conn:
            stale = blob_queries.expired_uploads(conn, self.clock() - max_age_seconds)
        for upload_id in stale:
            self._discard(upload_id)
        return len(stale)
