"""Talking to an S3-compatible store: where the objects live, the botocore client, and retries of its failures.

botocore's own retries are off: it retries every operation alike, and a conditional write or a multipart
completion whose answer was lost must be checked, not blindly repeated (a repeat would answer "precondition
failed" or "no such upload" for a write that succeeded). ``call`` retries what is safe to repeat, with
exponential backoff and full jitter, within a bounded number of attempts and seconds; what still fails
becomes ``StorageUnavailable`` (503 on both doors), never a traceback.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ecrd.errors import StorageUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

# Error codes (and bare statuses, as HEAD answers carry no body) of failures a repeat may cure.
_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestThrottled",
        "TooManyRequests",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "ServiceUnavailable",
        "PriorRequestNotComplete",
        "500",
        "502",
        "503",
        "504",
        "429",
    }
)
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


@dataclass(frozen=True, slots=True)
class S3Location:
    """The bucket and the key prefix (empty, or ending in ``/``) of ``--storage-url s3://BUCKET[/PREFIX]``."""

    bucket: str
    prefix: str = ""

    @classmethod
    def parse(cls, url: str) -> S3Location:
        if not url.startswith("s3://"):
            raise ValueError(f"not an s3:// URL: {url!r}")
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not bucket:
            raise ValueError(f"no bucket in {url!r}")
        prefix = prefix.strip("/")
        return cls(bucket, prefix + "/" if prefix else "")

    def key(self, name: str) -> str:
        return self.prefix + name

    def name(self, key: str) -> str:
        return key.removeprefix(self.prefix)


@dataclass(frozen=True, slots=True)
class S3Options:
    """How to reach the store: ``--s3-*`` settings; empty values fall back to botocore's defaults and chain."""

    endpoint_url: str = ""
    region: str = ""
    path_style: bool = True
    access_key_id: str = ""
    secret_access_key: str = ""
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    max_connections: int = 64


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Attempts and backoff for transient failures: at most ``attempts`` tries within ``deadline`` seconds."""

    attempts: int = 6
    first_delay: float = 0.05
    max_delay: float = 2.0
    deadline: float = 30.0

    def delay(self, attempt: int) -> float:
        # Full jitter (a random wait up to the exponential bound) spreads the retries of many nodes apart.
        return random.uniform(0, min(self.max_delay, self.first_delay * 2**attempt))  # noqa: S311


def make_client(options: S3Options) -> Any:
    """A thread-safe botocore S3 client with its own retries off (``call`` retries)."""
    config = Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=options.connect_timeout,
        read_timeout=options.read_timeout,
        max_pool_connections=options.max_connections,
        s3={"addressing_style": "path" if options.path_style else "virtual"},
        # Checksums only where the API demands them (DeleteObjects): content is sealed and authenticated
        # by the blob store's own encryption, and a CRC of every part costs CPU on each request.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    credentials: dict[str, str] = {}
    if options.access_key_id:
        credentials = {
            "aws_access_key_id": options.access_key_id,
            "aws_secret_access_key": options.secret_access_key,
        }
    return botocore.session.get_session().create_client(
        "s3",
        endpoint_url=options.endpoint_url or None,
        region_name=options.region or None,
        config=config,
        **credentials,
    )


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def error_status(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def is_not_found(error: ClientError) -> bool:
    return error_code(error) in _NOT_FOUND_CODES or error_status(error) == 404


def is_transient(error: BaseException) -> bool:
    """A failure of the store or the network that the same request may not meet again."""
    if isinstance(error, ClientError):
        return error_code(error) in _TRANSIENT_CODES or error_status(error) >= 500 or error_status(error) == 429
    # Connection refused or reset, timeouts, a body cut short: botocore's transport errors.
    return isinstance(error, BotoCoreError | ConnectionError | TimeoutError)


def call(operation: str, request: Callable[[], T], policy: RetryPolicy, *, retry: bool = True) -> T:
    """``request()``, repeated while it fails transiently (when ``retry``); ``StorageUnavailable`` when it
    still does. Other errors (a missing key, a failed precondition) propagate as botocore raised them."""
    started = time.monotonic()
    attempt = 0
    while True:
        try:
            return request()
        except (ClientError, BotoCoreError, ConnectionError, TimeoutError) as error:
            if not is_transient(error):
                raise
            attempt += 1
            wait = policy.delay(attempt)
            if not retry or attempt >= policy.attempts or time.monotonic() - started + wait > policy.deadline:
                if retry:  # (a caller that retries itself reports its own outcome)
                    log.warning("object store %s failed after %d attempts: %s", operation, attempt, error)
                raise StorageUnavailable(
                    f"the object store did not complete {operation}; try again later", detail={"operation": operation}
                ) from error
            log.info("object store %s failed (%s); retrying in %.2fs", operation, error, wait)
            time.sleep(wait)
