"""The encrypted blob store: plaintext readers and writers of blobs and uploads over any blob driver.

Given a data key it hands out plaintext writers for uploads (append, seal, abort), plaintext readers for blobs
(whole or a range), the commit of an upload into a blob, deletion, and the listings ``ecrd fsck`` compares with
the metadata. Its callers never see ciphertext, record offsets, object names or the format's header.

Objects: a blob is ``blobs/<algorithm>/<2 hex>/<hex>`` (``MAGIC`` then records). An upload is a chain of
immutable parts ``uploads/<id>/<n>``, where ``n`` (20 digits) is the upload's size when the part was begun:
part 0 starts with ``MAGIC``; a later part starts by sealing the previous part's last record again (now as a
middle record) and supersedes it. So an append never rewrites stored bytes: it puts one new object, whole or
not at all, and a crash can never damage what was acknowledged. A part is put *exclusively*: of two writers
that began at the same size, only one can store its part, and its chain stays unambiguous. The session's size
in the metadata store says how much of the chain counts (a part stored past it is a chunk whose
acknowledgement was lost). Committing an upload of one part is a move; more parts are first composed
into ``uploads/<id>/sealed`` (outside the metadata transaction; server-side on an object store) and that is
moved.

Parts are put without being made durable (decision 0018): a crash of the process keeps them, a power loss may
take a part away or leave it short or unreadable, and the client starts the upload again. The move into a
blob makes the bytes durable, before the transaction that records the blob commits.
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ecrd.domain.digests import Digest
from ecrd.errors import BlobUploadUnknown, CorruptBlob, EcrdError
from ecrd.storage.driver import BlobDriver, ObjectExists, ObjectInfo, ObjectNotFound, ObjectRange, ObjectWriter
from ecrd.storage.encryption import (
    MAGIC,
    NONCE,
    RECORD,
    SEGMENT,
    TAG,
    RecordSealer,
    encrypted_size,
    open_record,
    read_plaintext,
    records_plaintext,
    records_size,
)

BLOBS = "blobs/"
UPLOADS = "uploads/"
SEALED = "sealed"
_PART_DIGITS = 20
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class UploadDamaged(Exception):
    """The upload's stored parts do not reach the size its session records (a part was lost, or the upload
    was begun by a version that stored uploads differently): it cannot be continued."""


class UploadConflict(Exception):
    """Another writer stored its chunk at this upload's size first; this chunk was not stored."""


def check_upload_id(upload_id: str) -> str:
    if _UUID.fullmatch(upload_id) is None:
        raise BlobUploadUnknown("blob upload unknown to registry", detail={"uuid": upload_id[:64]})
    return upload_id


def new_upload_id() -> str:
    return str(uuid.uuid4())


def blob_name(digest: str) -> str:
    parsed = Digest.parse(digest)
    return f"{BLOBS}{parsed.algorithm}/{parsed.encoded[:2]}/{parsed.encoded}"


def _upload_prefix(upload_id: str) -> str:
    return f"{UPLOADS}{check_upload_id(upload_id)}/"


def _part_name(upload_id: str, start: int) -> str:
    return f"{_upload_prefix(upload_id)}{start:0{_PART_DIGITS}d}"


@dataclass(frozen=True, slots=True)
class StoredBlob:
    """A blob object as a listing sees it."""

    digest: str
    stored_size: int
    changed_at: float

    def holds(self, size: int) -> bool:
        """Whether the object is as long as ``size`` bytes of plaintext encrypt to (an empty blob stored by
        older versions as an empty object is whole too)."""
        return self.stored_size == encrypted_size(size) or (size == 0 and self.stored_size == 0)

    def expected_size(self, size: int) -> int:
        return encrypted_size(size)


@dataclass(frozen=True, slots=True)
class StoredUpload:
    """The objects of one upload as a listing sees them."""

    upload_id: str
    stored_size: int
    changed_at: float


@dataclass(frozen=True, slots=True)
class _Part:
    name: str
    start: int
    """The upload's size when the part was begun (its name)."""
    first_record: int
    end: int
    """The upload's size with this part."""
    size: int
    """The stored object's size."""

    @property
    def header(self) -> int:
        return len(MAGIC) if self.start == 0 else 0

    @property
    def last_record(self) -> int:
        return (self.end - 1) // SEGMENT

    def record_offset(self, index: int) -> int:
        return self.header + (index - self.first_record) * RECORD

    def kept(self, *, last: bool) -> ObjectRange:
        """The part's bytes that a staged blob keeps: the header and its records, but its last record when a
        later part seals that again."""
        return ObjectRange(self.name, 0, self.size if last else self.record_offset(self.last_record))


def _first_record(start: int) -> int:
    # A later part begins with the record holding the upload's last byte, sealed again.
    return 0 if start == 0 else (start - 1) // SEGMENT


def _part(info: ObjectInfo, start: int) -> _Part:
    first = _first_record(start)
    header = len(MAGIC) if start == 0 else 0
    plain = records_plaintext(info.size - header) if info.size >= header else None
    end = first * SEGMENT + plain if plain is not None else -1
    if end <= start:
        raise UploadDamaged(f"part {info.name} holds {info.size} bytes: not whole records past byte {start}")
    return _Part(info.name, start, first, end, info.size)


class BlobReader:
    """The plaintext of one stored blob, read in chunks (the pull path) or as a file (the scanner)."""

    def __init__(self, driver: BlobDriver, digest: str, key: bytes, size: int) -> None:
        self._driver = driver
        self._name = blob_name(digest)
        self._key = key
        self.digest = digest
        self.size = size

    def chunks(
        self, start: int = 0, end: int | None = None, *, segments_per_chunk: int = 1, reuse: bool = False
    ) -> Generator[bytearray | memoryview, None, None]:
        """Plaintext bytes ``start``..``end`` (inclusive), decrypting only the segments they touch.

        With ``reuse`` a chunk is valid only until the next one is asked for (see ``read_plaintext``). The
        stored object is opened at the first chunk and closed when the iterator ends or is closed."""
        if self.size == 0:
            return
        end = self.size - 1 if end is None else end
        first = start // SEGMENT
        # Through the end of the record holding ``end``; from the top, the header is read and checked too.
        stop = len(MAGIC) + records_size(min(self.size, (end // SEGMENT + 1) * SEGMENT))
        offset = 0 if first == 0 else len(MAGIC) + first * RECORD
        length = stop - offset
        try:
            stream = self._driver.get(self._name, offset, length)
        except ObjectNotFound:
            raise CorruptBlob(f"the stored bytes of {self.digest} are gone") from None
        except ValueError:
            raise CorruptBlob(f"the stored bytes of {self.digest} are cut short") from None
        try:
            if first == 0:
                header = bytearray(len(MAGIC))
                if stream.readinto(header) != len(MAGIC) or header != MAGIC:
                    raise CorruptBlob(f"{self.digest} is not an encrypted blob")
            yield from read_plaintext(
                stream, self._key, self.size, start, end, records_per_chunk=segments_per_chunk, reuse=reuse
            )
        finally:
            stream.close()

    def open(self) -> BinaryIO:
        """A readable file object of the whole plaintext."""
        return io.BufferedReader(_ChunkFile(self.chunks()), buffer_size=SEGMENT)  # type: ignore[return-value]


class _ChunkFile(io.RawIOBase):
    def __init__(self, chunks: Iterator[bytearray | memoryview]) -> None:
        super().__init__()
        self._chunks = chunks
        self._buffer = memoryview(b"")  # what is left of the current chunk (slicing a view copies nothing)

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._buffer = memoryview(chunk)
        view = memoryview(target).cast("B")
        count = min(len(view), len(self._buffer))
        view[:count] = self._buffer[:count]
        self._buffer = self._buffer[count:]
        return count

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
        super().close()


class UploadAppender:
    """Appends plaintext to an upload of ``size`` bytes: one new part, stored by ``seal`` or not at all."""

    def __init__(self, driver: BlobDriver, upload_id: str, key: bytes, size: int, last: _Part | None) -> None:
        self._driver = driver
        self._name = _part_name(upload_id, size)
        self._start = size
        self.size = size
        self._writer: ObjectWriter | None = None
        pending = b""
        if last is not None:
            index = last.last_record
            length = NONCE + size - index * SEGMENT + TAG
            try:
                stream = driver.get(last.name, last.record_offset(index), length)
            except (ObjectNotFound, ValueError):
                raise UploadDamaged(f"part {last.name} is gone or cut short") from None
            try:
                record = bytearray(length)
                view = memoryview(record)
                filled = 0
                while filled < length and (count := stream.readinto(view[filled:])):
                    filled += count
            finally:
                stream.close()
            pending = open_record(AESGCM(key), bytes(record[:filled]), index, last=True)
        self._sealer = RecordSealer(key, _first_record(size), self._sink, pending)

    def _sink(self, data: memoryview) -> None:
        if self._writer is None:
            self._writer = self._driver.put(self._name, exclusive=True, durable=False)
            if self._start == 0:
                self._writer.write(MAGIC)
        self._writer.write(data)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._sealer.write(data)
        self.size += len(data)

    def seal(self) -> int:
        """Store the part (visible when this returns, durable once committed into a blob); the upload's new
        size. Nothing written, nothing stored."""
        if self.size == self._start:
            self.abort()
            return self.size
        self._sealer.finish()
        assert self._writer is not None
        try:
            self._writer.commit()
        except ObjectExists:
            raise UploadConflict(self._name) from None
        except (FileExistsError, NotADirectoryError):
            # The upload's name holds a single object of the previous storage layout.
            raise UploadDamaged(self._name) from None
        return self.size

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()


class EncryptedBlobStore:
    def __init__(self, driver: BlobDriver) -> None:
        self.driver = driver

    # -- blobs --------------------------------------------------------------------------------------------

    def blob_stored(self, digest: str) -> bool:
        return self.driver.stat(blob_name(digest)) is not None

    def open_blob(self, digest: str, key: bytes, size: int) -> BlobReader:
        return BlobReader(self.driver, digest, key, size)

    def delete_blob(self, digest: str) -> None:
        self.driver.delete(blob_name(digest))

    def list_blobs(self) -> Iterator[StoredBlob]:
        """Every stored blob; objects whose names are not a blob's are skipped."""
        for info in self.driver.list(BLOBS):
            parts = info.name.split("/")
            if len(parts) != 4:
                continue
            digest = f"{parts[1]}:{parts[3]}"
            try:
                if blob_name(digest) != info.name:
                    continue
            except EcrdError:
                continue
            yield StoredBlob(digest, info.size, info.modified_at)

    # -- uploads ------------------------------------------------------------------------------------------

    def _chain(self, upload_id: str, recorded: int) -> list[_Part]:
        """The parts of the upload from its start, through ``recorded`` bytes and any part stored past it."""
        objects = {}
        for info in self.driver.list(_upload_prefix(upload_id)):
            number = info.name.rsplit("/", 1)[1]
            if len(number) == _PART_DIGITS and number.isdigit():
                objects[int(number)] = info
        chain: list[_Part] = []
        at = 0
        while at in objects and len(chain) < len(objects):
            chain.append(_part(objects[at], at))
            at = chain[-1].end
        if recorded and not any(part.end == recorded for part in chain):
            raise UploadDamaged(f"the stored parts of upload {upload_id} do not reach byte {recorded}")
        return chain

    def upload_extent(self, upload_id: str, recorded: int) -> int:
        """Where the stored upload ends: ``recorded``, or past it when a chunk was stored but its
        acknowledgement lost. ``UploadDamaged`` when the parts do not reach ``recorded``."""
        chain = self._chain(upload_id, recorded)
        return chain[-1].end if chain else 0

    def _through(self, upload_id: str, size: int) -> list[_Part]:
        return [part for part in self._chain(upload_id, size) if part.end <= size]

    def append(self, upload_id: str, key: bytes, size: int) -> UploadAppender:
        """A writer appending to the upload's first ``size`` bytes."""
        chain = self._through(upload_id, size)
        return UploadAppender(self.driver, upload_id, key, size, chain[-1] if chain else None)

    def read_upload(self, upload_id: str, key: bytes, size: int) -> Iterator[bytearray | memoryview]:
        """The plaintext of the upload's first ``size`` bytes."""
        chain = self._through(upload_id, size)
        for number, part in enumerate(chain):
            final = number == len(chain) - 1
            # A part's last record is superseded by the next part, which seals it again.
            end = size - 1 if final else part.last_record * SEGMENT - 1
            if end < part.first_record * SEGMENT:
                continue
            try:
                stream = self.driver.get(part.name, part.header)
            except ObjectNotFound:
                raise UploadDamaged(f"part {part.name} is gone") from None
            try:
                yield from read_plaintext(
                    stream, key, size if final else part.end, part.first_record * SEGMENT, end, records_per_chunk=4
                )
            finally:
                stream.close()

    def stage_upload(self, upload_id: str, size: int) -> str:
        """Make the upload's first ``size`` bytes one object in the blob format, ready for ``commit_upload``;
        its name. Concatenating parts copies ciphertext only (no key needed)."""
        chain = self._through(upload_id, size)
        if len(chain) == 1:
            return chain[0].name
        staged = f"{_upload_prefix(upload_id)}{SEALED}"
        # Part 0 starts with the header, and part boundaries fall on record boundaries: the staged object is
        # the parts' kept bytes end to end, which an object store copies without them passing through here.
        self.driver.compose(staged, [part.kept(last=n == len(chain) - 1) for n, part in enumerate(chain)])
        return staged

    def commit_upload(self, staged: str, digest: str) -> None:
        """Move a staged upload into place as blob ``digest``: atomic and durable when it returns."""
        self.driver.move(staged, blob_name(digest))

    def delete_upload(self, upload_id: str) -> None:
        # Without the trailing "/": an upload stored as one object by an older version goes too.
        for info in self.driver.list(_upload_prefix(upload_id).removesuffix("/")):
            self.driver.delete(info.name)

    def list_uploads(self) -> Iterator[StoredUpload]:
        """Every upload with stored objects; objects whose names are not an upload's are skipped."""
        current: StoredUpload | None = None
        for info in self.driver.list(UPLOADS):
            upload_id = info.name.split("/")[1]
            if _UUID.fullmatch(upload_id) is None:
                continue
            if current is not None and current.upload_id == upload_id:
                current = StoredUpload(
                    upload_id, current.stored_size + info.size, max(current.changed_at, info.modified_at)
                )
                continue
            if current is not None:
                yield current
            current = StoredUpload(upload_id, info.size, info.modified_at)
        if current is not None:
            yield current

    def sweep_incomplete_writes(self, older_than: float) -> int:
        """Discard what puts begun before the moment ``older_than`` (epoch seconds) and never finished left in
        the driver (temporary files, unfinished multipart uploads); how many."""
        return self.driver.sweep_incomplete(older_than)

    def upload_reaches(self, upload_id: str, size: int) -> bool:
        """Whether the upload's stored parts hold its first ``size`` bytes."""
        try:
            self._chain(upload_id, size)
        except UploadDamaged:
            return False
        return True
