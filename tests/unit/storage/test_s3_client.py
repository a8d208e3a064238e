"""The S3 driver's pure parts: where ``--storage-url`` points, which store failures are worth a retry, and the
bounded retry loop."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

from ecrd.errors import StorageUnavailable
from ecrd.storage.s3_client import RetryPolicy, S3Location, call, is_transient

NO_WAIT = RetryPolicy(attempts=3, first_delay=0.0, max_delay=0.0, deadline=5.0)


def client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [
        ("s3://bucket", "bucket", ""),
        ("s3://bucket/", "bucket", ""),
        ("s3://bucket/registry", "bucket", "registry/"),
        ("s3://bucket/a/b/", "bucket", "a/b/"),
    ],
)
def test_a_storage_url_names_a_bucket_and_a_key_prefix(url: str, bucket: str, prefix: str) -> None:
    location = S3Location.parse(url)
    assert (location.bucket, location.prefix) == (bucket, prefix)
    assert location.name(location.key("blobs/x")) == "blobs/x"


@pytest.mark.parametrize("url", ["s3://", "http://bucket/x", "bucket/x"])
def test_a_storage_url_without_a_bucket_is_refused(url: str) -> None:
    with pytest.raises(ValueError):
        S3Location.parse(url)


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (client_error("SlowDown", 503), True),
        (client_error("ServiceUnavailable", 503), True),
        (client_error("InternalError", 500), True),
        (client_error("503", 503), True),  # a HEAD answer has no body, only its status
        (client_error("RequestTimeout", 400), True),
        (client_error("ThrottlingException", 400), True),
        (client_error("NoSuchKey", 404), False),
        (client_error("PreconditionFailed", 412), False),
        (client_error("AccessDenied", 403), False),
        (client_error("InvalidRange", 416), False),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), True),
        (ConnectionClosedError(endpoint_url="http://127.0.0.1:1"), True),
        (ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), True),
    ],
)
def test_failures_a_repeat_may_cure_are_transient(error: Exception, transient: bool) -> None:
    assert is_transient(error) is transient


def test_a_transient_failure_is_retried_until_it_passes() -> None:
    failures = [client_error("SlowDown", 503), EndpointConnectionError(endpoint_url="http://127.0.0.1:1")]

    def request() -> str:
        if failures:
            raise failures.pop()
        return "done"

    assert call("GetObject", request, NO_WAIT) == "done"


def test_a_failure_that_persists_is_storage_unavailable_after_the_bounded_attempts() -> None:
    attempts = []

    def request() -> None:
        attempts.append(1)
        raise client_error("InternalError", 500)

    with pytest.raises(StorageUnavailable):
        call("PutObject", request, NO_WAIT)
    assert len(attempts) == NO_WAIT.attempts


def test_a_request_that_must_not_be_repeated_fails_at_its_first_transient_error() -> None:
    attempts = []

    def request() -> None:
        attempts.append(1)
        raise ConnectionClosedError(endpoint_url="http://127.0.0.1:1")

    with pytest.raises(StorageUnavailable):
        call("CompleteMultipartUpload", request, NO_WAIT, retry=False)
    assert len(attempts) == 1


def test_other_failures_propagate_at_once() -> None:
    attempts = []

    def request() -> None:
        attempts.append(1)
        raise client_error("NoSuchKey", 404)

    with pytest.raises(ClientError):
        call("GetObject", request, NO_WAIT)
    assert len(attempts) == 1


def test_backoff_grows_to_its_cap_with_jitter() -> None:
    policy = RetryPolicy(first_delay=0.05, max_delay=2.0)
    for attempt in range(1, 12):
        assert 0 <= policy.delay(attempt) <= min(2.0, 0.05 * 2**attempt)
