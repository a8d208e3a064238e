"""What only the filesystem driver does beyond the shared contract: it clears what dead puts left behind."""

from __future__ import annotations

import os
from pathlib import Path

from ecrd.storage.filesystem import INCOMING, INCOMING_MAX_AGE_SECONDS, FilesystemDriver
from tests.support.clock import FakeClock


def test_a_starting_driver_removes_temporary_files_of_dead_puts_and_keeps_live_ones(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    FilesystemDriver(root)
    dead = root / INCOMING / ".put-dead"
    live = root / INCOMING / ".put-live"
    dead.write_bytes(b"x" * 100)
    live.write_bytes(b"y" * 100)
    clock = FakeClock.at_wall_time()  # the in-flight put's file carries the real time
    now = clock.now()
    os.utime(dead, (now - INCOMING_MAX_AGE_SECONDS - 1, now - INCOMING_MAX_AGE_SECONDS - 1))
    os.utime(live, (now - 60, now - 60))
    writer = FilesystemDriver(root).put("kept/object")  # a put of the first process, still in flight
    writer.write(b"z")

    FilesystemDriver(root, clock=clock)

    assert not dead.exists()
    assert live.exists()
    writer.commit()
    with FilesystemDriver(root).get("kept/object") as stream:
        assert stream.read() == b"z"
