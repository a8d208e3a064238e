"""The record format alone: sizes invert, records stream in and decrypt by range, several at a time into one
reused buffer. (Blobs and uploads over a driver: tests/integration/storage/.)"""

from __future__ import annotations

import io
import os

import pytest

from ecrd.errors import CorruptBlob
from ecrd.storage.encryption import (
    MAGIC,
    RECORD,
    SEGMENT,
    RecordSealer,
    encrypted_size,
    read_plaintext,
    records_plaintext,
    records_size,
)
from ecrd.storage.writeback import start_writeback

KEY = bytes(range(32))
SIZES = [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 2 * SEGMENT, 3 * SEGMENT + 17]


def sealed(data: bytes, piece: int = SEGMENT + 7) -> bytes:
    out = io.BytesIO()
    sealer = RecordSealer(KEY, 0, out.write)
    for start in range(0, len(data), piece):
        sealer.write(data[start : start + piece])
    sealer.finish()
    return out.getvalue()


@pytest.mark.parametrize("size", SIZES)
def test_records_round_trip_and_their_sizes_invert(size: int) -> None:
    data = os.urandom(size)
    records = sealed(data)
    assert len(records) == records_size(size) == encrypted_size(size) - len(MAGIC)
    assert records_plaintext(len(records)) == size
    assert b"".join(read_plaintext(io.BytesIO(records), KEY, size)) == data


@pytest.mark.parametrize("piece", [1, 4096, 65 * 1024, SEGMENT - 1, SEGMENT, 3 * SEGMENT + 5])
def test_a_stream_in_pieces_of_any_size_seals_as_if_it_came_whole(piece: int) -> None:
    # the sealer reuses its buffers from record to record, and sizes them to what the stream needs
    data = os.urandom(2 * SEGMENT + 4097)
    records = sealed(data, piece)
    assert len(records) == records_size(len(data))
    assert b"".join(read_plaintext(io.BytesIO(records), KEY, len(data))) == data


@pytest.mark.parametrize("piece", [1000, SEGMENT + 3])
def test_a_resumed_sealer_seals_the_last_record_again_and_goes_on(piece: int) -> None:
    first, more = os.urandom(SEGMENT + 100), os.urandom(SEGMENT + 5)
    kept = sealed(first)[:RECORD]  # the record holding the last 100 bytes is superseded
    out = io.BytesIO()
    resumed = RecordSealer(KEY, 1, out.write, first[SEGMENT:])
    for start in range(0, len(more), piece):
        resumed.write(more[start : start + piece])
    resumed.finish()
    stored = kept + out.getvalue()
    assert b"".join(read_plaintext(io.BytesIO(stored), KEY, len(first) + len(more))) == first + more


def test_a_size_cut_inside_a_record_header_holds_no_plaintext() -> None:
    assert records_plaintext(5) is None
    assert records_plaintext(28) is None


@pytest.mark.parametrize(("start", "end"), [(0, None), (5, 4 * SEGMENT + 3), (SEGMENT, 9 * SEGMENT - 1)])
def test_chunks_of_several_records_in_one_reused_buffer_read_back_any_range(start: int, end: int | None) -> None:
    data = os.urandom(9 * SEGMENT + 123)
    records = sealed(data)
    last = len(data) - 1 if end is None else end
    stream = io.BytesIO(records)
    stream.seek(records_size((start // SEGMENT) * SEGMENT))
    # Each chunk is consumed before the next is asked for, as the pull path does.
    read = b"".join(
        bytes(chunk) for chunk in read_plaintext(stream, KEY, len(data), start, end, records_per_chunk=4, reuse=True)
    )
    assert read == data[start : last + 1]


def test_a_record_out_of_place_does_not_authenticate() -> None:
    data = os.urandom(2 * SEGMENT + 10)
    records = sealed(data)
    stream = io.BytesIO(records)
    stream.seek(records_size(SEGMENT))  # record 1, read as if it were record 0
    with pytest.raises(CorruptBlob):
        b"".join(read_plaintext(stream, KEY, len(data)))


def test_an_empty_writeback_range_is_no_call_at_all() -> None:
    start_writeback(0, 0, 0)
