"""The blob driver contract, run against every driver (see conftest.DRIVERS): what the blob store may rely on.

Each test uses only the ``BlobDriver`` protocol, so a new driver passes by being added to the fixture.
"""

from __future__ import annotations

import os
import threading
import time

import pytest

from ecrd.storage.driver import BlobDriver, InvalidObjectName, ObjectExists, ObjectNotFound, ObjectRange

MiB = 1024 * 1024


def put(driver: BlobDriver, name: str, data: bytes, *, exclusive: bool = False) -> int:
    writer = driver.put(name, exclusive=exclusive)
    for start in range(0, len(data), MiB + 3):
        writer.write(data[start : start + MiB + 3])
    return writer.commit()


def read(driver: BlobDriver, name: str, offset: int = 0, length: int | None = None) -> bytes:
    stream = driver.get(name, offset, length)
    try:
        out = bytearray()
        buffer = bytearray(64 * 1024 + 1)
        while count := stream.readinto(buffer):
            out += buffer[:count]
        return bytes(out)
    finally:
        stream.close()


def names(driver: BlobDriver, prefix: str) -> list[str]:
    return [info.name for info in driver.list(prefix)]


# -- put, get, stat ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 4096, 9 * MiB + 7])
def test_a_put_object_reads_back_whole_and_stats_its_size(driver: BlobDriver, size: int) -> None:
    data = os.urandom(size)
    before = time.time()
    assert put(driver, "blobs/sha256/ab/obj", data) == size
    assert read(driver, "blobs/sha256/ab/obj") == data
    info = driver.stat("blobs/sha256/ab/obj")
    assert info is not None and info.name == "blobs/sha256/ab/obj" and info.size == size
    assert before - 5 <= info.modified_at <= time.time() + 5


def test_missing_objects_are_none_to_stat_not_found_to_get_and_move_and_fine_to_delete(driver: BlobDriver) -> None:
    assert driver.stat("uploads/none") is None
    with pytest.raises(ObjectNotFound):
        driver.get("uploads/none")
    with pytest.raises(ObjectNotFound):
        driver.move("uploads/none", "blobs/x")
    driver.delete("uploads/none")
    driver.delete("uploads/none/deeper")
    assert names(driver, "") == []


def test_a_prefix_of_an_object_is_not_an_object(driver: BlobDriver) -> None:
    put(driver, "uploads/u1/part", b"x")
    assert driver.stat("uploads/u1") is None
    with pytest.raises(ObjectNotFound):
        driver.get("uploads/u1")
    driver.delete("uploads/u1")
    assert read(driver, "uploads/u1/part") == b"x"


# -- ranges ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "length", "expected"),
    [
        (0, None, slice(0, 100)),
        (0, 0, slice(0, 0)),
        (0, 1, slice(0, 1)),
        (99, 1, slice(99, 100)),
        (99, None, slice(99, 100)),
        (100, None, slice(100, 100)),  # at the end: nothing, not an error
        (100, 5, slice(100, 100)),
        (40, 10, slice(40, 50)),
        (90, 50, slice(90, 100)),  # clipped at the end
    ],
)
def test_ranges_read_exactly_their_bytes_and_clip_at_the_end(
    driver: BlobDriver, offset: int, length: int | None, expected: slice
) -> None:
    data = os.urandom(100)
    put(driver, "blobs/r", data)
    assert read(driver, "blobs/r", offset, length) == data[expected]


def test_a_range_past_the_end_is_refused(driver: BlobDriver) -> None:
    put(driver, "blobs/r", b"abc")
    with pytest.raises(ValueError):
        driver.get("blobs/r", 4)


def test_an_empty_object_reads_empty(driver: BlobDriver) -> None:
    put(driver, "blobs/empty", b"")
    assert read(driver, "blobs/empty") == b""
    assert read(driver, "blobs/empty", 0, 10) == b""


def test_a_range_across_several_mebibytes_is_exact(driver: BlobDriver) -> None:
    data = os.urandom(3 * MiB + 11)
    put(driver, "blobs/big", data)
    assert read(driver, "blobs/big", MiB - 1, MiB + 2) == data[MiB - 1 : 2 * MiB + 1]


def test_long_ranges_read_exactly_their_bytes_in_small_reads(driver: BlobDriver) -> None:
    # Longer than a driver's read window or part: the reads cross their boundaries at odd places.
    data = os.urandom(11 * MiB + 5)
    put(driver, "blobs/long", data)
    assert read(driver, "blobs/long", 3, 10 * MiB) == data[3 : 10 * MiB + 3]
    assert read(driver, "blobs/long", 5 * MiB + 1) == data[5 * MiB + 1 :]
    stream = driver.get("blobs/long", 7, 9 * MiB)
    stream.close()  # closed early: nothing left behind, the object reads again
    assert read(driver, "blobs/long", 11 * MiB) == data[11 * MiB :]


# -- atomic puts -------------------------------------------------------------------------------------------


def test_nothing_is_visible_before_commit(driver: BlobDriver) -> None:
    writer = driver.put("uploads/u/0")
    writer.write(b"half")
    assert driver.stat("uploads/u/0") is None
    assert names(driver, "") == []
    writer.commit()
    assert read(driver, "uploads/u/0") == b"half"


def test_an_aborted_put_leaves_nothing_and_a_replaced_object_unchanged(driver: BlobDriver) -> None:
    writer = driver.put("uploads/u/0")
    writer.write(os.urandom(MiB))
    writer.abort()
    assert driver.stat("uploads/u/0") is None and names(driver, "") == []
    put(driver, "blobs/keep", b"original")
    replacing = driver.put("blobs/keep")
    replacing.write(b"never committed")
    assert read(driver, "blobs/keep") == b"original"
    replacing.abort()
    replacing.abort()  # harmless twice
    assert read(driver, "blobs/keep") == b"original"
    assert names(driver, "") == ["blobs/keep"]


def test_a_stream_that_fails_midway_leaves_nothing(driver: BlobDriver) -> None:
    def chunks() -> object:
        yield b"a" * MiB
        raise ConnectionError("client went away")

    writer = driver.put("uploads/u/0")
    with pytest.raises(ConnectionError):
        try:
            for chunk in chunks():  # type: ignore[attr-defined]
                writer.write(chunk)
        except BaseException:
            writer.abort()
            raise
    assert driver.stat("uploads/u/0") is None and names(driver, "") == []


def test_a_put_replaces_an_object_whole(driver: BlobDriver) -> None:
    put(driver, "blobs/x", b"first version, longer")
    put(driver, "blobs/x", b"second")
    assert read(driver, "blobs/x") == b"second"
    assert [(i.name, i.size) for i in driver.list("blobs/")] == [("blobs/x", 6)]


def test_an_exclusive_put_refuses_a_taken_name_and_leaves_the_object(driver: BlobDriver) -> None:
    put(driver, "uploads/u/0", b"winner", exclusive=True)
    loser = driver.put("uploads/u/0", exclusive=True)
    loser.write(b"loser")
    with pytest.raises(ObjectExists):
        loser.commit()
    loser.abort()  # harmless after a failed commit
    assert read(driver, "uploads/u/0") == b"winner"
    assert names(driver, "uploads/") == ["uploads/u/0"]


def test_an_exclusive_put_of_several_parts_refuses_a_taken_name(driver: BlobDriver) -> None:
    put(driver, "uploads/u/0", b"winner", exclusive=True)
    with pytest.raises(ObjectExists):
        put(driver, "uploads/u/0", os.urandom(9 * MiB), exclusive=True)
    assert read(driver, "uploads/u/0") == b"winner"
    big = os.urandom(9 * MiB)
    assert put(driver, "uploads/u/1", big, exclusive=True) == len(big)
    assert read(driver, "uploads/u/1") == big


def test_a_put_keeps_a_copy_of_what_it_is_given(driver: BlobDriver) -> None:
    # Callers reuse one buffer for every write.
    buffer = bytearray(b"a" * 1000)
    writer = driver.put("blobs/copied")
    writer.write(buffer)
    buffer[:] = b"b" * 1000
    writer.write(memoryview(buffer)[:10])
    buffer[:] = b"c" * 1000
    writer.commit()
    assert read(driver, "blobs/copied") == b"a" * 1000 + b"b" * 10


def test_of_many_racing_exclusive_puts_exactly_one_wins(driver: BlobDriver) -> None:
    results: list[str] = []
    barrier = threading.Barrier(8, timeout=30)

    def racer(number: int) -> None:
        writer = driver.put("uploads/race/0", exclusive=True)
        writer.write(f"racer {number}".encode())
        barrier.wait()
        try:
            writer.commit()
            results.append(f"racer {number}")
        except ObjectExists:
            results.append("refused")

    threads = [threading.Thread(target=racer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    winners = [r for r in results if r != "refused"]
    assert len(results) == 8 and len(winners) == 1
    assert read(driver, "uploads/race/0") == winners[0].encode()


# -- move --------------------------------------------------------------------------------------------------


def test_move_makes_the_target_and_removes_the_source(driver: BlobDriver) -> None:
    data = os.urandom(2 * MiB)
    put(driver, "uploads/u/0", data)
    put(driver, "blobs/sha256/ab/t", b"old target")
    driver.move("uploads/u/0", "blobs/sha256/ab/t")
    assert driver.stat("uploads/u/0") is None
    assert read(driver, "blobs/sha256/ab/t") == data
    assert names(driver, "") == ["blobs/sha256/ab/t"]


# -- compose -----------------------------------------------------------------------------------------------


def test_compose_concatenates_ranges_of_objects_and_leaves_the_sources(driver: BlobDriver) -> None:
    # Large pieces an object store can copy server-side, small ones it cannot, in every order.
    large, small, tail = os.urandom(7 * MiB + 3), os.urandom(100), os.urandom(6 * MiB)
    put(driver, "uploads/u/0", large)
    put(driver, "uploads/u/1", small)
    put(driver, "uploads/u/2", tail)
    put(driver, "uploads/u/staged", b"replaced")
    pieces = [
        ObjectRange("uploads/u/0", 0, 6 * MiB),
        ObjectRange("uploads/u/1", 10, 50),
        ObjectRange("uploads/u/0", 6 * MiB, MiB + 3),
        ObjectRange("uploads/u/1", 0, 0),
        ObjectRange("uploads/u/2", 1, 6 * MiB - 1),
        ObjectRange("uploads/u/1", 0, 100),
    ]
    expected = large[: 6 * MiB] + small[10:60] + large[6 * MiB :] + tail[1:] + small

    assert driver.compose("uploads/u/staged", pieces) == len(expected)

    assert read(driver, "uploads/u/staged") == expected
    assert read(driver, "uploads/u/0") == large and read(driver, "uploads/u/1") == small
    assert names(driver, "uploads/") == ["uploads/u/0", "uploads/u/1", "uploads/u/2", "uploads/u/staged"]


def test_compose_of_small_pieces_and_of_none(driver: BlobDriver) -> None:
    put(driver, "uploads/u/0", b"hello ")
    put(driver, "uploads/u/1", b"world")
    assert driver.compose("blobs/x", [ObjectRange("uploads/u/0", 0, 6), ObjectRange("uploads/u/1", 0, 5)]) == 11
    assert read(driver, "blobs/x") == b"hello world"
    assert driver.compose("blobs/empty", []) == 0
    assert read(driver, "blobs/empty") == b""


@pytest.mark.parametrize("size", [10, 6 * MiB])
def test_compose_from_a_missing_or_short_source_fails_and_leaves_the_target(driver: BlobDriver, size: int) -> None:
    put(driver, "uploads/u/0", os.urandom(size))
    put(driver, "blobs/t", b"target")
    with pytest.raises(ObjectNotFound):
        driver.compose("blobs/t", [ObjectRange("uploads/u/0", 0, size), ObjectRange("uploads/none", 0, 1)])
    with pytest.raises(ValueError):
        driver.compose("blobs/t", [ObjectRange("uploads/u/0", 1, size)])
    assert read(driver, "blobs/t") == b"target"
    assert names(driver, "") == ["blobs/t", "uploads/u/0"]


# -- abandoned puts ----------------------------------------------------------------------------------------


def test_sweep_incomplete_discards_puts_begun_before_the_moment_and_keeps_later_ones(driver: BlobDriver) -> None:
    put(driver, "blobs/kept", b"committed objects are never swept")
    abandoned = driver.put("uploads/u/0")
    abandoned.write(os.urandom(9 * MiB))  # past one part: an object store has begun a multipart upload

    assert driver.sweep_incomplete(time.time() - 3600) == 0

    assert driver.sweep_incomplete(time.time() + 60) >= 1
    assert driver.sweep_incomplete(time.time() + 60) == 0
    assert names(driver, "") == ["blobs/kept"]
    abandoned.abort()  # what a late owner does: harmless
    assert names(driver, "") == ["blobs/kept"]


# -- delete and list ---------------------------------------------------------------------------------------


def test_list_yields_every_object_under_a_prefix_in_name_order(driver: BlobDriver) -> None:
    for name in ["uploads/b/1", "uploads/a/2", "uploads/a/1", "uploads/a-c", "uploads/ab/1", "blobs/z", "up"]:
        put(driver, name, name.encode())
    assert names(driver, "uploads/") == ["uploads/a-c", "uploads/a/1", "uploads/a/2", "uploads/ab/1", "uploads/b/1"]
    assert names(driver, "uploads/a/") == ["uploads/a/1", "uploads/a/2"]
    assert names(driver, "uploads/a") == ["uploads/a-c", "uploads/a/1", "uploads/a/2", "uploads/ab/1"]
    assert names(driver, "up") == ["up", "uploads/a-c", "uploads/a/1", "uploads/a/2", "uploads/ab/1", "uploads/b/1"]
    assert names(driver, "") == sorted(names(driver, ""))
    assert len(names(driver, "")) == 7
    assert names(driver, "nothing/") == []
    sizes = {info.name: info.size for info in driver.list("")}
    assert sizes["uploads/a-c"] == len(b"uploads/a-c")


def test_a_deleted_object_is_gone_and_its_name_can_be_used_again(driver: BlobDriver) -> None:
    put(driver, "uploads/u/00", b"x")
    driver.delete("uploads/u/00")
    assert driver.stat("uploads/u/00") is None and names(driver, "uploads/") == []
    put(driver, "uploads/u/00", b"y", exclusive=True)
    assert read(driver, "uploads/u/00") == b"y"


def test_listing_while_deleting_never_fails_and_keeps_what_stays(driver: BlobDriver) -> None:
    for number in range(40):
        put(driver, f"uploads/u{number % 4}/{number:03d}", b"x")
    stays = {f"uploads/u{number % 4}/{number:03d}" for number in range(40) if number % 2}
    seen = set()
    for info in driver.list("uploads/"):
        seen.add(info.name)
        for number in range(0, 40, 2):
            driver.delete(f"uploads/u{number % 4}/{number:03d}")
    assert stays <= seen
    assert set(names(driver, "uploads/")) == stays


def test_concurrent_writers_and_deleters_under_one_prefix_lose_nothing_committed(driver: BlobDriver) -> None:
    # A delete may empty (and a driver remove) a directory just as a put makes a name in it.
    errors: list[BaseException] = []
    committed: list[str] = []

    def writer(number: int) -> None:
        try:
            for round_ in range(30):
                name = f"uploads/shared/{number}-{round_}"
                put(driver, name, b"x")
                committed.append(name)
        except BaseException as exc:
            errors.append(exc)

    def deleter() -> None:
        try:
            for _ in range(30):
                for info in list(driver.list("uploads/shared/")):
                    if info.name.endswith("-0"):
                        driver.delete(info.name)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)] + [threading.Thread(target=deleter)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    left = set(names(driver, "uploads/shared/"))
    assert {name for name in committed if not name.endswith("-0")} <= left


# -- names -------------------------------------------------------------------------------------------------


BAD_NAMES = [
    "",
    "/etc/passwd",
    "../outside",
    "blobs/../../outside",
    "blobs/./x",
    "blobs//x",
    "blobs/x/",
    ".hidden",
    "blobs/.incoming",
    "blobs\\x",
    "blobs/x\x00y",
    "a" * 600,
    "blobs/ x",
    "~/x",
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_names_outside_the_grammar_are_refused_by_every_operation(driver: BlobDriver, name: str) -> None:
    put(driver, "blobs/ok", b"x")
    with pytest.raises(InvalidObjectName):
        driver.put(name)
    with pytest.raises(InvalidObjectName):
        driver.get(name)
    with pytest.raises(InvalidObjectName):
        driver.stat(name)
    with pytest.raises(InvalidObjectName):
        driver.delete(name)
    with pytest.raises(InvalidObjectName):
        driver.move("blobs/ok", name)
    with pytest.raises(InvalidObjectName):
        driver.move(name, "blobs/ok")
    assert read(driver, "blobs/ok") == b"x"


@pytest.mark.parametrize("prefix", ["../", "/", "blobs/../"])
def test_listing_prefixes_outside_the_grammar_are_refused(driver: BlobDriver, prefix: str) -> None:
    with pytest.raises(InvalidObjectName):
        list(driver.list(prefix))
