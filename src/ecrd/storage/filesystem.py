"""The filesystem blob driver: blobs at blobs/<alg>/<2 hex>/<hex>, uploads at uploads/<uuid>.

Every name that reaches a path is validated first (digest grammar, UUID), so nothing a client sends can
point outside the data directory. Writes are fsynced, then renamed into place, then the directory fsynced:
a blob is complete and verified, or absent.
"""

from __future__ import annotations

import fcntl
import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ecrd.domain.digests import Digest
from ecrd.errors import BlobUploadInvalid, BlobUploadUnknown, EcrdError
from ecrd.storage.driver import StoredFile

# How long a chunk waits for an earlier request on the same upload to finish with the file.
UPLOAD_LOCK_WAIT_SECONDS = 30.0


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def check_upload_id(upload_id: str) -> str:
    if _UUID.fullmatch(upload_id) is None:
        raise BlobUploadUnknown("blob upload unknown to registry", detail={"uuid": upload_id[:64]})
    return upload_id


def new_upload_id() -> str:
    return str(uuid.uuid4())


class FilesystemDriver:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._blobs = self.root / "blobs"
        self._uploads = self.root / "uploads"
        self._blobs.mkdir(parents=True, exist_ok=True)
        self._uploads.mkdir(parents=True, exist_ok=True)

    def _blob_file(self, digest: str) -> Path:
        parsed = Digest.parse(digest)
        return self._blobs / parsed.algorithm / parsed.encoded[:2] / parsed.encoded

    def _upload_file(self, upload_id: str) -> Path:
        return self._uploads / check_upload_id(upload_id)

    # -- uploads ------------------------------------------------------------------------------------------

    def create_upload(self, upload_id: str) -> None:
        self._upload_file(upload_id).touch(exist_ok=False)

    def open_upload_file(self, upload_id: str, *, wait_seconds: float = UPLOAD_LOCK_WAIT_SECONDS) -> BinaryIO:
        """The upload's file, locked for this writer alone (across processes) until it is closed.

        A client that lost its connection mid-chunk may resume before the server has finished with the broken
        request; the resume waits for it rather than writing over a record that is being rewritten.
        """
        try:
            fh = self._upload_file(upload_id).open("r+b")
        except FileNotFoundError:
            raise BlobUploadUnknown("blob upload unknown to registry") from None
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fh
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    fh.close()
                    raise BlobUploadInvalid(
                        "another request is still writing to this upload; get its status and retry",
                        detail={"uuid": upload_id},
                    ) from None
                time.sleep(0.02)

    def read_upload(self, upload_id: str) -> BinaryIO:
        try:
            return self._upload_file(upload_id).open("rb")
        except FileNotFoundError:
            raise BlobUploadUnknown("blob upload unknown to registry") from None

    def delete_upload(self, upload_id: str) -> None:
        self._upload_file(upload_id).unlink(missing_ok=True)

    def commit_upload(self, upload_id: str, digest: str) -> None:
        source = self._upload_file(upload_id)
        target = self._blob_file(digest)
        # The upload's bytes were fsynced when its last chunk was sealed; the rename and the directory
        # remain to be made durable.
        target.parent.mkdir(parents=True, exist_ok=True)
        # The caller holds the blob's row lock: no other writer renames onto this path meanwhile.
        os.replace(source, target)
        _fsync_dir(target.parent)

    # -- blobs --------------------------------------------------------------------------------------------

    def blob_size(self, digest: str) -> int | None:
        try:
            return self._blob_file(digest).stat().st_size
        except FileNotFoundError:
            return None

    def open_blob(self, digest: str) -> BinaryIO:
        return self._blob_file(digest).open("rb")

    def blob_path(self, digest: str) -> Path | None:
        return self._blob_file(digest)

    def delete_blob(self, digest: str) -> None:
        self._blob_file(digest).unlink(missing_ok=True)

    # -- listings (ecrd fsck) -------------------------------------------------------------------------------

    def list_blobs(self) -> Iterator[StoredFile]:
        for algorithm_dir in sorted(self._blobs.iterdir()):
            if not algorithm_dir.is_dir():
                continue
            for prefix_dir in sorted(algorithm_dir.iterdir()):
                if not prefix_dir.is_dir():
                    continue
                for path in sorted(prefix_dir.iterdir()):
                    digest = f"{algorithm_dir.name}:{path.name}"
                    try:
                        if Digest.parse(digest).encoded[:2] != prefix_dir.name:
                            continue
                    except EcrdError:
                        continue
                    found = _stored_file(digest, path)
                    if found is not None:
                        yield found

    def list_uploads(self) -> Iterator[StoredFile]:
        for path in sorted(self._uploads.iterdir()):
            if _UUID.fullmatch(path.name) is None:
                continue
            found = _stored_file(path.name, path)
            if found is not None:
                yield found


def _stored_file(name: str, path: Path) -> StoredFile | None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return None  # removed while the listing ran
    if not path.is_file():
        return None
    # A rename changes ctime, not mtime: a blob committed just now from an upload written long ago is new.
    return StoredFile(name, info.st_size, max(info.st_mtime, info.st_ctime))
