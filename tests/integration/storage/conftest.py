"""The blob drivers every storage test runs against: add a driver here and the whole contract suite runs on it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ecrd.storage.driver import BlobDriver
from ecrd.storage.filesystem import FilesystemDriver
from ecrd.storage.s3 import S3Driver
from ecrd.storage.s3_client import S3Location, S3Options
from tests.support.seaweedfs import S3Endpoint

DRIVERS = ["filesystem", "s3"]


def s3_options(endpoint: S3Endpoint) -> S3Options:
    return S3Options(
        endpoint_url=endpoint.url,
        region=endpoint.region,
        path_style=True,
        access_key_id=endpoint.access_key_id,
        secret_access_key=endpoint.secret_access_key,
    )


@pytest.fixture(scope="session")
def s3_storage_bucket(s3_endpoint: S3Endpoint) -> str:
    """One bucket for the storage tests; each test works under a prefix of its own."""
    return s3_endpoint.new_bucket("ecrd-storage")


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobDriver]:
    if request.param == "filesystem":
        yield FilesystemDriver(tmp_path / "objects")
    elif request.param == "s3":
        endpoint: S3Endpoint = request.getfixturevalue("s3_endpoint")
        bucket: str = request.getfixturevalue("s3_storage_bucket")
        s3 = S3Driver(S3Location(bucket, f"test-{uuid.uuid4().hex}/"), s3_options(endpoint))
        yield s3
        s3.close()
    else:  # pragma: no cover - a driver named in DRIVERS without a constructor here
        raise AssertionError(f"no fixture builds the {request.param} driver")
