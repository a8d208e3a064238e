"""The encrypted blob store on every driver: uploads in resumable pieces become blobs that read back whole and
by range, nothing readable is stored, tampering is detected, and a torn or racing append never damages what
was acknowledged."""

from __future__ import annotations

import hashlib
import itertools
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecrd.errors import CorruptData
from ecrd.storage.blob_store import EncryptedBlobStore, UploadConflict, UploadDamaged, new_upload_id
from ecrd.storage.driver import BlobDriver
from ecrd.storage.encryption import SEGMENT
from ecrd.storage.filesystem import FilesystemDriver

KEY = bytes(range(32))
SIZES = [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 2 * SEGMENT, 3 * SEGMENT + 17]


def digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def upload_in_pieces(store: EncryptedBlobStore, data: bytes, cuts: list[int], *, abort_garbage: bool = False) -> str:
    upload_id = new_upload_id()
    size = 0
    bounds = [0, *sorted(cuts), len(data)]
    for start, end in itertools.pairwise(bounds):
        appender = store.append(upload_id, KEY, size)
        appender.write(data[start:end])
        size = appender.seal()
        if abort_garbage:
            broken = store.append(upload_id, KEY, size)
            broken.write(b"never acknowledged" * 100_000)
            broken.abort()
    assert size == len(data)
    return upload_id


def store_blob(store: EncryptedBlobStore, data: bytes, cuts: list[int] | None = None) -> str:
    upload_id = upload_in_pieces(store, data, cuts or [])
    store.commit_upload(store.stage_upload(upload_id, len(data)), digest(data))
    store.delete_upload(upload_id)
    return digest(data)


def read_blob(
    store: EncryptedBlobStore, blob: str, size: int, start: int = 0, end: int | None = None, key: bytes = KEY
) -> bytes:
    return b"".join(
        bytes(c) for c in store.open_blob(blob, key, size).chunks(start, end, segments_per_chunk=3, reuse=True)
    )


@pytest.fixture
def store(driver: BlobDriver) -> EncryptedBlobStore:
    return EncryptedBlobStore(driver)


@pytest.mark.parametrize("size", SIZES)
def test_a_blob_uploaded_in_one_piece_reads_back(store: EncryptedBlobStore, size: int) -> None:
    data = os.urandom(size)
    blob = store_blob(store, data)
    assert read_blob(store, blob, size) == data
    assert store.open_blob(blob, KEY, size).open().read() == data
    (listed,) = store.list_blobs()
    assert listed.digest == blob and listed.holds(size) and not listed.holds(size + 1)
    assert list(store.list_uploads()) == []


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.sampled_from(SIZES), data=st.data())
def test_resumed_and_aborted_appends_keep_the_plaintext_and_ranges_decrypt(
    store: EncryptedBlobStore, size: int, data: st.DataObject
) -> None:
    for info in store.driver.list(""):  # the store outlives one example: start each from nothing
        store.driver.delete(info.name)
    payload = os.urandom(size)
    cuts = data.draw(st.lists(st.integers(0, size), max_size=4))
    upload_id = upload_in_pieces(store, payload, cuts, abort_garbage=True)
    assert b"".join(bytes(c) for c in store.read_upload(upload_id, KEY, size)) == payload
    store.commit_upload(store.stage_upload(upload_id, size), digest(payload))
    store.delete_upload(upload_id)
    assert read_blob(store, digest(payload), size) == payload
    if size:
        start = data.draw(st.integers(0, size - 1))
        end = data.draw(st.integers(start, size - 1))
        assert read_blob(store, digest(payload), size, start, end) == payload[start : end + 1]
    store.delete_blob(digest(payload))
    assert list(store.list_blobs()) == [] and list(store.list_uploads()) == []


def test_nothing_readable_is_stored(store: EncryptedBlobStore, driver: BlobDriver) -> None:
    marker = b"PLAINTEXT-MARKER-" * 100_000
    upload_id = upload_in_pieces(store, marker, [5000, SEGMENT + 3])
    for info in driver.list(""):
        stream = driver.get(info.name)
        buffer = bytearray(info.size)
        stream.readinto(buffer)
        stream.close()
        assert b"PLAINTEXT-MARKER" not in buffer
    store.delete_upload(upload_id)


def _rewrite(driver: BlobDriver, name: str, change: object) -> None:
    info = driver.stat(name)
    assert info is not None
    stream = driver.get(name)
    raw = bytearray(info.size)
    view, filled = memoryview(raw), 0
    while filled < info.size and (count := stream.readinto(view[filled:])):
        filled += count
    stream.close()
    view.release()
    change(raw)  # type: ignore[operator]
    writer = driver.put(name)
    writer.write(raw)
    writer.commit()


@pytest.mark.parametrize("damage", ["flip", "truncate_record", "drop_last_record", "header", "wrong_key"])
def test_tampering_is_detected(store: EncryptedBlobStore, driver: BlobDriver, damage: str) -> None:
    data = os.urandom(2 * SEGMENT + 10)
    blob = store_blob(store, data)
    (name,) = [info.name for info in driver.list("blobs/")]
    key = KEY
    if damage == "flip":
        _rewrite(driver, name, lambda raw: raw.__setitem__(len(raw) // 2, raw[len(raw) // 2] ^ 1))
    elif damage == "truncate_record":
        _rewrite(driver, name, lambda raw: raw.__delitem__(slice(-5, None)))
    elif damage == "drop_last_record":
        _rewrite(driver, name, lambda raw: raw.__delitem__(slice(8 + 2 * (SEGMENT + 28), None)))
    elif damage == "header":
        _rewrite(driver, name, lambda raw: raw.__setitem__(0, 0))
    else:
        key = bytes(32)
    with pytest.raises(CorruptData):
        read_blob(store, blob, len(data), key=key)


def test_a_range_decrypts_only_what_it_needs_even_when_other_records_are_damaged(
    store: EncryptedBlobStore, driver: BlobDriver
) -> None:
    data = os.urandom(4 * SEGMENT)
    blob = store_blob(store, data)
    (name,) = [info.name for info in driver.list("blobs/")]
    _rewrite(driver, name, lambda raw: raw.__setitem__(len(raw) - 100, raw[len(raw) - 100] ^ 1))  # last record
    assert read_blob(store, blob, len(data), SEGMENT + 5, 2 * SEGMENT + 5) == data[SEGMENT + 5 : 2 * SEGMENT + 6]
    with pytest.raises(CorruptData):
        read_blob(store, blob, len(data), 3 * SEGMENT, 3 * SEGMENT)


def test_an_aborted_append_leaves_the_upload_exactly_as_acknowledged(store: EncryptedBlobStore) -> None:
    upload_id = upload_in_pieces(store, b"abc", [])
    broken = store.append(upload_id, KEY, 3)
    broken.write(os.urandom(3 * SEGMENT))
    broken.abort()
    assert store.upload_extent(upload_id, 3) == 3
    resumed = store.append(upload_id, KEY, 3)
    resumed.write(b"def")
    assert resumed.seal() == 6
    assert b"".join(bytes(c) for c in store.read_upload(upload_id, KEY, 6)) == b"abcdef"


def test_of_two_appends_begun_at_one_size_only_one_is_stored(store: EncryptedBlobStore) -> None:
    upload_id = upload_in_pieces(store, b"x" * 10, [])
    first, second = store.append(upload_id, KEY, 10), store.append(upload_id, KEY, 10)
    first.write(b"first")
    second.write(b"second!")
    assert second.seal() == 17
    with pytest.raises(UploadConflict):
        first.seal()
    first.abort()
    assert store.upload_extent(upload_id, 10) == 17
    assert b"".join(bytes(c) for c in store.read_upload(upload_id, KEY, 17)) == b"x" * 10 + b"second!"


def test_a_stored_chunk_past_the_recorded_size_is_found(store: EncryptedBlobStore) -> None:
    upload_id = upload_in_pieces(store, b"hello ", [])
    appender = store.append(upload_id, KEY, 6)
    appender.write(b"world")
    appender.seal()  # and the process dies before recording the new size
    assert store.upload_extent(upload_id, 6) == 11
    assert store.upload_reaches(upload_id, 6) and store.upload_reaches(upload_id, 11)


def test_an_upload_missing_a_part_is_damaged_and_deletes_cleanly(store: EncryptedBlobStore, driver: BlobDriver) -> None:
    upload_id = upload_in_pieces(store, os.urandom(3000), [1000, 2000])
    first_part = sorted(info.name for info in driver.list(f"uploads/{upload_id}/"))[0]
    driver.delete(first_part)
    with pytest.raises(UploadDamaged):
        store.upload_extent(upload_id, 3000)
    with pytest.raises(UploadDamaged):
        store.append(upload_id, KEY, 3000)
    assert not store.upload_reaches(upload_id, 3000)
    (listed,) = store.list_uploads()
    assert listed.upload_id == upload_id
    store.delete_upload(upload_id)
    assert list(store.list_uploads()) == [] and list(driver.list("")) == []


def test_an_upload_stored_as_one_object_by_the_previous_version_is_damaged_and_deletes(tmp_path: Path) -> None:
    # The previous version stored uploads as one file on the filesystem only; no object store ever held them.
    driver = FilesystemDriver(tmp_path / "objects")
    store = EncryptedBlobStore(driver)
    upload_id = new_upload_id()
    writer = driver.put(f"uploads/{upload_id}")
    writer.write(b"ECRDENC1" + os.urandom(100))
    writer.commit()
    with pytest.raises(UploadDamaged):
        store.upload_extent(upload_id, 72)
    appender = store.append(upload_id, KEY, 0)
    appender.write(b"new bytes")
    with pytest.raises(UploadDamaged):
        appender.seal()
    appender.abort()
    store.delete_upload(upload_id)
    assert list(driver.list("")) == []
