"""The blob driver contract: what any blob store (filesystem now, S3 later) must do, and nothing more."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One object of the blob store as a listing sees it (what ``ecrd fsck`` compares with the metadata)."""

    name: str
    """The blob's digest, or the upload's id."""
    size: int
    changed_at: float
    """When the object last changed, a commit's rename included (epoch seconds)."""


class UploadWriter(Protocol):
    """Appends to an upload in progress. Bytes become part of the upload only when ``commit`` returns."""

    def write(self, data: bytes) -> None: ...

    def seal(self) -> int:
        """Make the written bytes durable (the file stays locked); return the upload's new size."""
        ...

    def close(self) -> None:
        """Release the file (and its lock)."""
        ...

    def abort(self) -> None:
        """Forget what was written since the writer opened."""
        ...


class BlobDriver(Protocol):
    def create_upload(self, upload_id: str) -> None: ...

    def open_upload_file(self, upload_id: str) -> BinaryIO:
        """The upload's bytes, open for reading and writing and locked to this writer until closed."""
        ...

    def read_upload(self, upload_id: str) -> BinaryIO: ...

    def delete_upload(self, upload_id: str) -> None: ...

    def commit_upload(self, upload_id: str, digest: str) -> None:
        """Move a verified upload into place as blob ``digest``; atomic and durable when it returns."""
        ...

    def blob_size(self, digest: str) -> int | None: ...

    def open_blob(self, digest: str) -> BinaryIO: ...

    def blob_path(self, digest: str) -> Path | None:
        """A local path the server may send with zero-copy, or None for remote drivers."""
        ...

    def delete_blob(self, digest: str) -> None: ...

    def list_blobs(self) -> Iterator[StoredFile]:
        """Every stored blob (name: its digest); objects whose names are not digests are skipped."""
        ...

    def list_uploads(self) -> Iterator[StoredFile]:
        """Every upload in progress (name: its id); objects whose names are not upload ids are skipped."""
        ...
