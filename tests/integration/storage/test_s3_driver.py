"""What only the S3 driver does beyond the shared contract: it rides out a failing store (real SeaweedFS behind a
fault-injecting proxy), tells a lost answer from a refusal, and never leaves a half-written object."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import uuid
from collections.abc import Iterator

import pytest

from ecrd.errors import StorageUnavailable
from ecrd.storage.blob_store import EncryptedBlobStore, new_upload_id
from ecrd.storage.driver import ObjectExists, ObjectRange
from ecrd.storage.s3 import S3Driver
from ecrd.storage.s3_client import RetryPolicy, S3Location
from tests.integration.storage.conftest import s3_options
from tests.integration.storage.test_driver_contract import MiB, names, put, read
from tests.support.faulty_s3_proxy import FaultyS3Proxy, faulty_s3_proxy
from tests.support.seaweedfs import S3Endpoint

KEY = bytes(range(32))
FAST_RETRIES = RetryPolicy(attempts=4, first_delay=0.01, max_delay=0.05, deadline=10.0)


@pytest.fixture(scope="module")
def proxy(s3_endpoint: S3Endpoint) -> Iterator[FaultyS3Proxy]:
    with faulty_s3_proxy(s3_endpoint.url) as running:
        yield running


@pytest.fixture
def driver(proxy: FaultyS3Proxy, s3_endpoint: S3Endpoint, s3_storage_bucket: str) -> Iterator[S3Driver]:
    proxy.clear()
    options = dataclasses.replace(s3_options(s3_endpoint), endpoint_url=proxy.url, read_timeout=1.0)
    s3 = S3Driver(S3Location(s3_storage_bucket, f"faults-{uuid.uuid4().hex}/"), options, retry=FAST_RETRIES)
    yield s3
    proxy.clear()
    s3.close()


def unfinished_uploads(driver: S3Driver) -> list[str]:
    page = driver.client.list_multipart_uploads(Bucket=driver.location.bucket, Prefix=driver.location.prefix)
    return [upload["Key"] for upload in page.get("Uploads", [])]


def test_transient_failures_of_every_kind_are_retried_and_the_object_is_whole(
    driver: S3Driver, proxy: FaultyS3Proxy
) -> None:
    data = os.urandom(9 * MiB + 1)  # a multipart upload: create, two parts, complete
    proxy.fail_next("503", method="POST")
    proxy.fail_next("slowdown", times=2, method="PUT")
    proxy.fail_next("500", method="PUT")
    proxy.fail_next("reset", method="HEAD")
    proxy.fail_next("slowdown", method="GET")
    proxy.fail_next("cut-body", method="GET")
    proxy.fail_next("delay", method="GET", delay=1.5)  # past the read timeout

    assert put(driver, "blobs/whole", data) == len(data)
    info = driver.stat("blobs/whole")
    assert read(driver, "blobs/whole") == data

    assert info is not None and info.size == len(data)
    assert proxy.injected == {"503": 1, "slowdown": 3, "500": 1, "reset": 1, "cut-body": 1, "delay": 1}


@pytest.mark.parametrize("size", [100, 9 * MiB])
def test_an_exclusive_put_whose_answer_was_lost_counts_as_stored_not_as_refused(
    driver: S3Driver, proxy: FaultyS3Proxy, size: int
) -> None:
    # The store carries out the write, but its answer never arrives: the repeat meets the object it made.
    data = os.urandom(size)
    proxy.fail_next("lost-answer", method="PUT" if size < MiB else "POST", path="" if size < MiB else "uploadId=")

    assert put(driver, "uploads/u/0", data, exclusive=True) == size

    assert proxy.injected["lost-answer"] == 1
    assert read(driver, "uploads/u/0") == data
    with pytest.raises(ObjectExists):
        put(driver, "uploads/u/0", data, exclusive=True)  # a true refusal is still one


@pytest.mark.parametrize("size", [100, 9 * MiB])
def test_a_store_that_stays_down_fails_the_put_clearly_and_leaves_nothing(
    driver: S3Driver, proxy: FaultyS3Proxy, size: int
) -> None:
    put(driver, "blobs/x", b"original")
    proxy.fail_next("503", times=1000, method="PUT")
    proxy.fail_next("503", times=1000, method="POST", path="uploadId=")

    writer = driver.put("blobs/x")
    with pytest.raises(StorageUnavailable) as raised:
        try:
            writer.write(os.urandom(size))
            writer.commit()
        except StorageUnavailable:
            writer.abort()  # as every caller does with a put that failed
            raise

    assert raised.value.oci_status == 503 and raised.value.aws_status == 503
    proxy.clear()
    assert read(driver, "blobs/x") == b"original"
    assert names(driver, "") == ["blobs/x"]
    assert unfinished_uploads(driver) == []


def test_a_store_that_stays_down_fails_reads_and_listings_clearly(driver: S3Driver, proxy: FaultyS3Proxy) -> None:
    put(driver, "blobs/x", b"data")
    proxy.fail_next("reset", times=1000)
    with pytest.raises(StorageUnavailable):
        driver.stat("blobs/x")
    with pytest.raises(StorageUnavailable):
        driver.get("blobs/x")
    with pytest.raises(StorageUnavailable):
        list(driver.list("blobs/"))
    proxy.clear()
    assert read(driver, "blobs/x") == b"data"


def test_compose_copies_large_pieces_inside_the_store(driver: S3Driver, proxy: FaultyS3Proxy) -> None:
    first, second = os.urandom(6 * MiB), os.urandom(5 * MiB + 1)
    put(driver, "uploads/u/0", first)
    put(driver, "uploads/u/1", second)
    served_before = sum(proxy.served.values())
    gets_before = proxy.served["GET"]

    driver.compose(
        "uploads/u/sealed", [ObjectRange("uploads/u/0", 0, 6 * MiB), ObjectRange("uploads/u/1", 0, 5 * MiB + 1)]
    )

    # Create, two part copies, complete: no GET brought the bytes here.
    assert proxy.served["GET"] == gets_before
    assert sum(proxy.served.values()) - served_before == 4
    assert read(driver, "uploads/u/sealed") == first + second


def test_committing_a_chunked_upload_composes_its_parts_inside_the_store(
    driver: S3Driver, proxy: FaultyS3Proxy
) -> None:
    store = EncryptedBlobStore(driver)
    upload_id, size = new_upload_id(), 0
    data = os.urandom(17 * MiB + 3)
    for start, end in [(0, 6 * MiB), (6 * MiB, 12 * MiB + 1), (12 * MiB + 1, len(data))]:
        appender = store.append(upload_id, KEY, size)
        appender.write(data[start:end])
        size = appender.seal()
    gets_before = proxy.served["GET"]

    staged = store.stage_upload(upload_id, size)

    # Listing the parts is one GET of the bucket; no part's bytes come here to be concatenated.
    assert proxy.served["GET"] - gets_before == 1
    store.commit_upload(staged, "sha256:" + hashlib.sha256(data).hexdigest())
    blob = store.open_blob("sha256:" + hashlib.sha256(data).hexdigest(), KEY, len(data))
    assert b"".join(bytes(chunk) for chunk in blob.chunks()) == data
