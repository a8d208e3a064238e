"""The blob drivers every storage test runs against: add a driver here and the whole contract suite runs on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ecrd.storage.driver import BlobDriver
from ecrd.storage.filesystem import FilesystemDriver

DRIVERS = ["filesystem"]


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobDriver]:
    if request.param == "filesystem":
        yield FilesystemDriver(tmp_path / "objects")
    else:  # pragma: no cover - a driver named in DRIVERS without a constructor here
        raise AssertionError(f"no fixture builds the {request.param} driver")
