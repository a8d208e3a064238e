"""Blob encryption at rest: AES-256-GCM in independent segments, so writes stream and ranges decrypt locally.

Layout of an encrypted file: ``MAGIC`` then records, each ``nonce (12) ‖ ciphertext ‖ tag (16)`` holding
``SEGMENT`` bytes of plaintext (the last record may hold fewer). A record's associated data is its index and
whether it is the last one, so records cannot be reordered, dropped or the file truncated at a record
boundary without detection. Every record has a fresh random nonce: a partial last record is rewritten when an
upload resumes, and a nonce must never encrypt two different plaintexts under one key.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterator
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ecrd.storage.writeback import WRITEBACK_BYTES, start_writeback

MAGIC = b"ECRDENC1"
SEGMENT = 1024 * 1024
NONCE = 12
TAG = 16
RECORD = NONCE + SEGMENT + TAG


class CorruptBlob(Exception):
    """Stored bytes that do not decrypt: tampered with, truncated, or the wrong key."""


def _aad(index: int, last: bool) -> bytes:
    return struct.pack(">QB", index, 1 if last else 0)


def encrypted_size(plaintext_size: int) -> int:
    full, tail = divmod(plaintext_size, SEGMENT)
    return len(MAGIC) + full * RECORD + (NONCE + tail + TAG if tail else 0)


def plaintext_size(stored_size: int) -> int | None:
    """The plaintext size a file of ``stored_size`` bytes holds when it ends with a whole record; None when no
    plaintext encrypts to that size (the file was cut mid-record)."""
    if stored_size < len(MAGIC):
        return None
    full, rest = divmod(stored_size - len(MAGIC), RECORD)
    size = full * SEGMENT + (rest - NONCE - TAG if rest else 0)
    return size if rest == 0 or rest > NONCE + TAG else None


def ends_whole(fh: BinaryIO, key: bytes, size: int) -> bool:
    """True when the file's record holding plaintext byte ``size - 1`` authenticates as the last record."""
    if size == 0:
        fh.seek(0)
        return fh.read(len(MAGIC)) == MAGIC
    last_index = (size - 1) // SEGMENT
    fh.seek(_record_offset(last_index))
    try:
        _open_record(AESGCM(key), fh.read(NONCE + size - last_index * SEGMENT + TAG), last_index, last=True)
    except CorruptBlob:
        return False
    return True


def _record_offset(index: int) -> int:
    return len(MAGIC) + index * RECORD


class EncryptedUploadWriter:
    """Appends plaintext to an encrypted upload file that holds ``offset`` bytes of plaintext.

    The last record (sealed as "last") is decrypted and rewritten with what follows it, so the file always
    ends with a complete, authenticated record. ``abort`` puts the original last record back, so a chunk
    that did not arrive whole leaves the upload exactly as it was.
    """

    def __init__(self, fh: BinaryIO, key: bytes, offset: int) -> None:
        self._fh = fh
        self._aead = AESGCM(key)
        self._size = offset
        self._pending = bytearray()
        self._writeback_from = 0  # where the range not yet handed to the kernel's writeback starts
        if offset == 0:
            self._index = 0
            self._restore = (0, b"")
            fh.seek(0)
            fh.truncate(0)
            fh.write(MAGIC)
            return
        last_index = (offset - 1) // SEGMENT
        position = _record_offset(last_index)
        fh.seek(position)
        record = fh.read(NONCE + offset - last_index * SEGMENT + TAG)
        self._pending += _open_record(self._aead, record, last_index, last=True)
        self._index = last_index
        self._restore = (position, record)
        fh.seek(position)
        fh.truncate()
        self._writeback_from = position

    def write(self, data: bytes) -> None:
        """Encrypt whole segments straight from ``data`` (no copies); keep 1..SEGMENT bytes pending, because
        whatever ends the file is sealed as the last record by ``seal``."""
        if not data:
            return
        self._size += len(data)
        view = memoryview(data)
        if self._pending:
            take = min(SEGMENT - len(self._pending), len(view))
            self._pending += view[:take]
            view = view[take:]
            if not view:
                return
            self._write_record(self._pending, last=False)
            self._pending = bytearray()
        full = (len(view) - 1) // SEGMENT
        for index in range(full):
            self._write_record(view[index * SEGMENT : (index + 1) * SEGMENT], last=False)
        self._pending = bytearray(view[full * SEGMENT :])
        self._write_behind()

    def _write_behind(self) -> None:
        position = self._fh.tell()
        if position - self._writeback_from >= WRITEBACK_BYTES:
            self._fh.flush()
            start_writeback(self._fh.fileno(), self._writeback_from, position - self._writeback_from)
            self._writeback_from = position

    def seal(self) -> int:
        """Write the last record and make everything durable; the file stays open (and locked)."""
        if self._pending:
            self._write_record(self._pending, last=True)
            self._pending = bytearray()
        self._fh.flush()
        os.fsync(self._fh.fileno())
        return self._size

    def close(self) -> None:
        self._fh.close()

    def commit(self) -> int:
        size = self.seal()
        self.close()
        return size

    def abort(self) -> None:
        try:
            position, record = self._restore
            self._fh.seek(position)
            self._fh.truncate()
            self._fh.write(record if position else MAGIC)
            self._fh.flush()
        finally:
            self._fh.close()

    def _write_record(self, plaintext: bytes | bytearray | memoryview, *, last: bool) -> None:
        nonce = os.urandom(NONCE)
        self._fh.write(nonce)
        self._fh.write(self._aead.encrypt(nonce, plaintext, _aad(self._index, last)))  # type: ignore[arg-type]
        self._index += 1


def _open_record(aead: AESGCM, record: bytes, index: int, *, last: bool) -> bytes:
    if len(record) < NONCE + TAG:
        raise CorruptBlob(f"record {index} is truncated")
    try:
        return aead.decrypt(record[:NONCE], record[NONCE:], _aad(index, last))
    except InvalidTag:
        raise CorruptBlob(f"record {index} does not authenticate") from None


def read_plaintext(fh: BinaryIO, key: bytes, size: int, start: int = 0, end: int | None = None, *,
                   records_per_chunk: int = 1, reuse: bool = False) -> Iterator[bytearray | memoryview]:
    """Plaintext bytes ``start``..``end`` (inclusive) of an encrypted file of ``size`` plaintext bytes,
    decrypting only the segments the range touches, ``records_per_chunk`` segments per chunk yielded.

    Records are read into one reused buffer and decrypted from a view of it straight into the chunk: the only
    copy is the decryption itself. With ``reuse`` chunks of full size share one output buffer, so no memory
    is allocated (and faulted in) per chunk — and **a chunk is valid only until the next one is asked for**:
    the consumer sends or hashes it before that (an ASGI server's send() is done with its body when it
    returns)."""
    fh.seek(0)
    if fh.read(len(MAGIC)) != MAGIC:
        raise CorruptBlob("not an encrypted blob")
    if size == 0:
        return
    end = size - 1 if end is None else end
    aead = AESGCM(key)
    last_index = (size - 1) // SEGMENT
    first, final = start // SEGMENT, end // SEGMENT
    record = memoryview(bytearray(RECORD))
    fh.seek(_record_offset(first))
    index = first
    reused = bytearray(min(records_per_chunk, final - first + 1) * SEGMENT if reuse else 0)
    while index <= final:
        count = min(records_per_chunk, final - index + 1)
        chunk_start = index * SEGMENT
        length = min(count * SEGMENT, size - chunk_start)
        chunk = reused if reuse and length == len(reused) else bytearray(length)
        out = memoryview(chunk)
        for offset in range(0, len(chunk), SEGMENT):
            plain = min(SEGMENT, len(chunk) - offset)
            if fh.readinto(record[:NONCE + plain + TAG]) != NONCE + plain + TAG:  # type: ignore[attr-defined]
                raise CorruptBlob(f"record {index} is truncated")
            try:
                aead.decrypt_into(bytes(record[:NONCE]), record[NONCE:NONCE + plain + TAG],
                                  _aad(index, index == last_index), out[offset:offset + plain])
            except InvalidTag:
                raise CorruptBlob(f"record {index} does not authenticate") from None
            index += 1
        lo = max(start - chunk_start, 0)
        hi = min(end + 1 - chunk_start, len(chunk))
        yield chunk if lo == 0 and hi == len(chunk) else out[lo:hi]


class PlaintextReader(io.RawIOBase):
    """A readable file object over an encrypted blob: what code that wants a stream (the scanner) reads."""

    def __init__(self, fh: BinaryIO, key: bytes, size: int) -> None:
        super().__init__()
        self._fh = fh
        self._segments = read_plaintext(fh, key, size)
        self._buffer = memoryview(b"")  # what is left of the current segment (slicing a view copies nothing)

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            chunk = next(self._segments, None)
            if chunk is None:
                return 0
            self._buffer = memoryview(chunk)
        view = memoryview(target).cast("B")
        count = min(len(view), len(self._buffer))
        view[:count] = self._buffer[:count]
        self._buffer = self._buffer[count:]
        return count

    def close(self) -> None:
        self._fh.close()
        super().close()


def open_plaintext(fh: BinaryIO, key: bytes, size: int) -> BinaryIO:
    return io.BufferedReader(PlaintextReader(fh, key, size), buffer_size=SEGMENT)  # type: ignore[return-value]
