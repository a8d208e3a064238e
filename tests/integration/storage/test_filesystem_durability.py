"""When the filesystem driver makes bytes durable (decision 0018): a put that need not be durable (an upload's
part) is never fsynced, and ``move`` fsyncs its source's bytes before they take the new name and fsyncs the
new name's directory after — so a blob is on the disk, bytes and name, before the row naming it commits.

The system calls are observed, not replaced: each recorder calls the real function."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ecrd.storage.filesystem import FilesystemDriver

# Events: ("fsync", inode) and ("name", inode) — an inode taking a name by rename or link.
Events = list[tuple[str, int]]


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> Events:
    seen: Events = []
    real_fsync, real_replace, real_link = os.fsync, os.replace, os.link

    def fsync(fd: int) -> None:
        seen.append(("fsync", os.fstat(fd).st_ino))
        real_fsync(fd)

    def naming(real: Callable[..., None]) -> Callable[..., None]:
        def call(source: Any, target: Any, *args: Any, **kwargs: Any) -> None:
            seen.append(("name", os.stat(source).st_ino))
            real(source, target, *args, **kwargs)

        return call

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", naming(real_replace))
    monkeypatch.setattr(os, "link", naming(real_link))
    return seen


def inode(path: Path) -> int:
    return os.stat(path).st_ino


def test_a_put_that_need_not_be_durable_is_visible_whole_without_any_fsync(tmp_path: Path, events: Events) -> None:
    driver = FilesystemDriver(tmp_path / "objects")
    writer = driver.put("uploads/u/00000000000000000000", exclusive=True, durable=False)
    writer.write(b"part")
    writer.commit()

    assert [kind for kind, _ in events] == ["name"]
    assert driver.path("uploads/u/00000000000000000000").read_bytes() == b"part"


def test_a_durable_put_fsyncs_its_bytes_before_naming_them_and_the_directory_after(
    tmp_path: Path, events: Events
) -> None:
    driver = FilesystemDriver(tmp_path / "objects")
    writer = driver.put("blobs/sha256/ab/abcd")
    writer.write(b"blob")
    writer.commit()

    file, directory = inode(driver.path("blobs/sha256/ab/abcd")), inode(driver.path("blobs/sha256/ab/abcd").parent)
    assert events == [("fsync", file), ("name", file), ("fsync", directory)]


def test_moving_a_part_put_without_fsync_makes_its_bytes_durable_before_its_new_name(
    tmp_path: Path, events: Events
) -> None:
    driver = FilesystemDriver(tmp_path / "objects")
    writer = driver.put("uploads/u/00000000000000000000", exclusive=True, durable=False)
    writer.write(b"layer")
    writer.commit()
    events.clear()

    driver.move("uploads/u/00000000000000000000", "blobs/sha256/ab/abcd")

    blob = driver.path("blobs/sha256/ab/abcd")
    assert events == [("fsync", inode(blob)), ("name", inode(blob)), ("fsync", inode(blob.parent))]
    assert blob.read_bytes() == b"layer"
