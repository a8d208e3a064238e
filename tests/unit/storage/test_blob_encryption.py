"""Segmented AES-GCM at rest: streams in, resumes after interruptions, decrypts any range, detects tampering."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecrd.storage.encryption import SEGMENT, CorruptBlob, EncryptedUploadWriter, encrypted_size, read_plaintext
from ecrd.storage.writeback import WRITEBACK_BYTES, start_writeback

KEY = bytes(range(32))
SIZES = [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 2 * SEGMENT, 3 * SEGMENT + 17]


def write_in_pieces(path: Path, data: bytes, cuts: list[int], *, abort_garbage: bool = False) -> None:
    path.write_bytes(b"")
    offset = 0
    bounds = [0, *sorted(cuts), len(data)]
    for start, end in itertools.pairwise(bounds):
        writer = EncryptedUploadWriter(path.open("r+b"), KEY, offset)
        writer.write(data[start:end])
        offset = writer.commit()
        if abort_garbage:
            broken = EncryptedUploadWriter(path.open("r+b"), KEY, offset)
            broken.write(b"never acknowledged" * 100)
            broken.abort()


@pytest.mark.parametrize("size", SIZES)
def test_round_trip_in_one_piece(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    path = tmp_path / "blob"
    write_in_pieces(path, data, [])
    assert path.stat().st_size == encrypted_size(size)
    with path.open("rb") as fh:
        assert b"".join(read_plaintext(fh, KEY, size)) == data


@settings(max_examples=40, deadline=None)
@given(size=st.sampled_from(SIZES), data=st.data())
def test_resumed_and_aborted_appends_keep_the_plaintext(tmp_path_factory: pytest.TempPathFactory, size: int,
                                                         data: st.DataObject) -> None:
    payload = os.urandom(size)
    cuts = data.draw(st.lists(st.integers(0, size), max_size=4))
    path = tmp_path_factory.mktemp("enc") / "blob"
    write_in_pieces(path, payload, cuts, abort_garbage=True)
    with path.open("rb") as fh:
        assert b"".join(read_plaintext(fh, KEY, size)) == payload
        if size:
            start = data.draw(st.integers(0, size - 1))
            end = data.draw(st.integers(start, size - 1))
            assert b"".join(read_plaintext(fh, KEY, size, start, end)) == payload[start : end + 1]


def test_nothing_readable_lies_on_disk(tmp_path: Path) -> None:
    marker = b"PLAINTEXT-MARKER-" * 1000
    path = tmp_path / "blob"
    write_in_pieces(path, marker, [5000])
    assert b"PLAINTEXT-MARKER" not in path.read_bytes()


@pytest.mark.parametrize("damage", ["flip", "truncate_record", "drop_last_record", "wrong_key"])
def test_tampering_is_detected(tmp_path: Path, damage: str) -> None:
    data = os.urandom(2 * SEGMENT + 10)
    path = tmp_path / "blob"
    write_in_pieces(path, data, [])
    raw = bytearray(path.read_bytes())
    key = KEY
    if damage == "flip":
        raw[len(raw) // 2] ^= 1
    elif damage == "truncate_record":
        del raw[-5:]
    elif damage == "drop_last_record":
        del raw[encrypted_size(2 * SEGMENT):]
    else:
        key = bytes(32)
    path.write_bytes(bytes(raw))
    with path.open("rb") as fh, pytest.raises(CorruptBlob):
        b"".join(read_plaintext(fh, key, len(data)))


def test_write_behind_hands_ranges_to_the_kernel_without_changing_the_bytes(tmp_path: Path) -> None:
    # More than WRITEBACK_BYTES in batches, resumed mid-way: the file is exactly what one write would make.
    data = os.urandom(2 * WRITEBACK_BYTES + 3 * SEGMENT + 5)
    path = tmp_path / "blob"
    path.write_bytes(b"")
    writer = EncryptedUploadWriter(path.open("r+b"), KEY, 0)
    half = len(data) // 2
    for start in range(0, half, SEGMENT + 7):
        writer.write(data[start:min(start + SEGMENT + 7, half)])
    offset = writer.commit()
    resumed = EncryptedUploadWriter(path.open("r+b"), KEY, offset)
    resumed.write(data[half:])
    assert resumed.commit() == len(data)
    assert path.stat().st_size == encrypted_size(len(data))
    with path.open("rb") as fh:
        assert b"".join(read_plaintext(fh, KEY, len(data))) == data
        start_writeback(fh.fileno(), 0, 0)  # an empty range is no call at all


@pytest.mark.parametrize(("start", "end"), [(0, None), (5, 4 * SEGMENT + 3), (SEGMENT, 9 * SEGMENT - 1)])
def test_chunks_of_several_records_in_one_reused_buffer_read_back_any_range(
    tmp_path: Path, start: int, end: int | None
) -> None:
    data = os.urandom(9 * SEGMENT + 123)
    path = tmp_path / "blob"
    write_in_pieces(path, data, [])
    last = len(data) - 1 if end is None else end
    with path.open("rb") as fh:
        # Each chunk is consumed before the next is asked for, as the pull path does.
        read = b"".join(bytes(chunk) for chunk in read_plaintext(fh, KEY, len(data), start, end,
                                                                  records_per_chunk=4, reuse=True))
    assert read == data[start:last + 1]
