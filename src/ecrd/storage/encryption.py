"""The encrypted record format: AES-256-GCM in independent 1 MiB segments, so writes stream and ranges decrypt.

A stored blob is ``MAGIC`` then records, each ``nonce (12) ‖ ciphertext ‖ tag (16)`` holding ``SEGMENT`` bytes
of plaintext (the last record may hold fewer). A record's associated data is its index and whether it is the
last one, so records cannot be reordered, dropped or the blob truncated at a record boundary without detection.
Every record has a fresh random nonce: a resumed upload seals its last record again, and a nonce must never
encrypt two different plaintexts under one key. Only ``blob_store`` uses this module.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ecrd.errors import CorruptBlob
from ecrd.storage.driver import ReadStream

MAGIC = b"ECRDENC1"
SEGMENT = 1024 * 1024
NONCE = 12
TAG = 16
RECORD = NONCE + SEGMENT + TAG


def _aad(index: int, last: bool) -> bytes:
    return struct.pack(">QB", index, 1 if last else 0)


def records_size(plaintext_size: int) -> int:
    """Bytes of the records holding ``plaintext_size`` bytes of plaintext (no header)."""
    full, tail = divmod(plaintext_size, SEGMENT)
    return full * RECORD + (NONCE + tail + TAG if tail else 0)


def encrypted_size(plaintext_size: int) -> int:
    return len(MAGIC) + records_size(plaintext_size)


def records_plaintext(stored: int) -> int | None:
    """The plaintext ``stored`` bytes of whole records hold; None when no plaintext encrypts to that size."""
    full, rest = divmod(stored, RECORD)
    if rest and rest <= NONCE + TAG:
        return None
    return full * SEGMENT + (rest - NONCE - TAG if rest else 0)


def open_record(aead: AESGCM, record: bytes, index: int, *, last: bool) -> bytes:
    if len(record) < NONCE + TAG:
        raise CorruptBlob(f"record {index} is truncated")
    try:
        return aead.decrypt(record[:NONCE], record[NONCE:], _aad(index, last))
    except InvalidTag:
        raise CorruptBlob(f"record {index} does not authenticate") from None


class RecordSealer:
    """Encrypts a plaintext stream into records numbered from ``index``, handing them to ``sink``.

    It keeps 1..SEGMENT bytes pending, because whatever ends the stream is sealed as the last record by
    ``finish``; ``pending`` starts with the plaintext of a last record being sealed again (a resumed upload).

    Each record is sealed into one reused buffer and handed to ``sink`` whole, as a view that is valid only
    until ``sink`` returns: one write per record, and no memory allocated (and faulted in) per record.
    """

    def __init__(
        self, key: bytes, index: int, sink: Callable[[memoryview], object], pending: bytes | bytearray = b""
    ) -> None:
        self._aead = AESGCM(key)
        self._index = index
        self._sink = sink
        # Pending plaintext fills a buffer of up to one segment, so a stream arriving in pieces of any size is
        # copied once on its way to the cipher. Both buffers start small: a small layer never zeroes 2 MiB.
        self._pending = _room(memoryview(bytearray()), len(pending))
        self._pending_size = len(pending)
        self._pending[: len(pending)] = pending
        self._record = memoryview(bytearray())

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Encrypt whole segments straight from ``data``; only what is left of a segment is copied."""
        if not data:
            return
        view = memoryview(data).cast("B")
        if self._pending_size:
            take = min(SEGMENT - self._pending_size, len(view))
            self._pending = _room(self._pending, self._pending_size + take, keep=self._pending_size)
            self._pending[self._pending_size : self._pending_size + take] = view[:take]
            self._pending_size += take
            view = view[take:]
            if not view:
                return
            self._seal(self._pending[:SEGMENT], last=False)
            self._pending_size = 0
        full = (len(view) - 1) // SEGMENT
        for index in range(full):
            self._seal(view[index * SEGMENT : (index + 1) * SEGMENT], last=False)
        rest = view[full * SEGMENT :]
        self._pending = _room(self._pending, len(rest))
        self._pending[: len(rest)] = rest
        self._pending_size = len(rest)

    def finish(self) -> None:
        if self._pending_size:
            self._seal(self._pending[: self._pending_size], last=True)
            self._pending_size = 0

    def _seal(self, plaintext: memoryview, *, last: bool) -> None:
        self._record = _room(self._record, NONCE + len(plaintext) + TAG)
        record = self._record[: NONCE + len(plaintext) + TAG]
        nonce = os.urandom(NONCE)
        record[:NONCE] = nonce
        self._aead.encrypt_into(nonce, plaintext, _aad(self._index, last), record[NONCE:])
        self._sink(record)
        self._index += 1


# Below this a buffer is sized to what it must hold; above it, to the largest it can need.
_SMALL_BUFFER = 64 * 1024


def _room(buffer: memoryview, needed: int, *, keep: int = 0) -> memoryview:
    """``buffer``, or a larger one holding its first ``keep`` bytes, with room for ``needed`` bytes."""
    if needed <= len(buffer):
        return buffer
    larger = memoryview(bytearray(needed if needed <= _SMALL_BUFFER else max(needed, RECORD)))
    larger[:keep] = buffer[:keep]
    return larger


def read_plaintext(
    stream: ReadStream,
    key: bytes,
    size: int,
    start: int = 0,
    end: int | None = None,
    *,
    records_per_chunk: int = 1,
    reuse: bool = False,
) -> Iterator[bytearray | memoryview]:
    """Plaintext bytes ``start``..``end`` (inclusive) of records holding ``size`` plaintext bytes, from a
    ``stream`` that begins at the record holding ``start``; ``records_per_chunk`` segments per chunk yielded.

    Records are read into one reused buffer and decrypted from a view of it straight into the chunk: the only
    copy is the decryption itself. With ``reuse`` chunks of full size share one output buffer, so no memory
    is allocated (and faulted in) per chunk — and **a chunk is valid only until the next one is asked for**:
    the consumer sends or hashes it before that (an ASGI server's send() is done with its body when it
    returns)."""
    if size == 0:
        return
    end = size - 1 if end is None else end
    aead = AESGCM(key)
    last_index = (size - 1) // SEGMENT
    first, final = start // SEGMENT, end // SEGMENT
    record = memoryview(bytearray(RECORD))
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
            if _read_exactly(stream, record[: NONCE + plain + TAG]) != NONCE + plain + TAG:
                raise CorruptBlob(f"record {index} is truncated")
            try:
                aead.decrypt_into(
                    bytes(record[:NONCE]),
                    record[NONCE : NONCE + plain + TAG],
                    _aad(index, index == last_index),
                    out[offset : offset + plain],
                )
            except InvalidTag:
                raise CorruptBlob(f"record {index} does not authenticate") from None
            index += 1
        lo = max(start - chunk_start, 0)
        hi = min(end + 1 - chunk_start, len(chunk))
        yield chunk if lo == 0 and hi == len(chunk) else out[lo:hi]


def _read_exactly(stream: ReadStream, target: memoryview) -> int:
    """Fill ``target``; short only at the stream's end (a network stream may return less per call)."""
    filled = 0
    while filled < len(target):
        count = stream.readinto(target[filled:])
        if not count:
            break
        filled += count
    return filled
