"""The S3 blob driver: each object is a key under ``--storage-url s3://BUCKET/PREFIX`` of an S3-compatible store.

A put buffers up to one part (8 MiB): a smaller object is one PutObject, a larger one a multipart upload whose
parts are sent as they fill; either way the object appears whole when the put commits, and never before. An
exclusive put is a conditional write (``If-None-Match: *``). ``move`` and ``compose`` copy server-side
(CopyObject, UploadPartCopy), so no blob bytes pass through this process to finish an upload. Reads are ranged
GETs with read-ahead (``s3_reader``). Listings page through ListObjectsV2 lazily. Unfinished multipart uploads
(a process killed mid-put) are invisible; ``sweep_incomplete`` aborts them.
"""

from __future__ import annotations

import binascii
import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from typing import Any

from botocore.exceptions import ClientError

from ecrd.errors import StorageUnavailable
from ecrd.storage.driver import (
    ObjectExists,
    ObjectInfo,
    ObjectNotFound,
    ObjectRange,
    ReadStream,
    check_object_name,
    check_prefix,
    copy_range,
)
from ecrd.storage.s3_client import (
    RetryPolicy,
    S3Location,
    S3Options,
    call,
    error_code,
    error_status,
    is_not_found,
    make_client,
)
from ecrd.storage.s3_reader import READ_WINDOW, ReadAheadStream

MiB = 1024 * 1024
# S3's rules for multipart uploads: every part but the last at least 5 MiB; a part at most 5 GiB; 10,000 parts.
MIN_PART = 5 * MiB
MAX_PART = 5 * 1024 * MiB
MAX_PARTS = 10_000
DEFAULT_PART_SIZE = 8 * MiB
# Parallel read-ahead requests across all readers of one driver (each reader has at most one in flight).
_READ_AHEAD_THREADS = 32


def _multipart_etag(part_etags: Sequence[str]) -> str | None:
    """The ETag S3 gives an object completed from these parts: the MD5 of their MD5s, dash, their count (None
    when a store's part ETags are not MD5s, so the completed object's cannot be predicted)."""
    try:
        digests = b"".join(binascii.unhexlify(etag.strip('"')) for etag in part_etags)
    except (binascii.Error, ValueError):
        return None
    return f'"{hashlib.md5(digests).hexdigest()}-{len(part_etags)}"'  # noqa: S324 - S3's ETag, not security


class S3Writer:
    """One put: bytes are buffered to a part; past one part they go out as a multipart upload."""

    def __init__(self, driver: S3Driver, name: str, exclusive: bool) -> None:
        self._driver = driver
        self._name = name
        self._key = driver.location.key(check_object_name(name))
        self._exclusive = exclusive
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._size = 0
        self._finished = False

    # -- writing ------------------------------------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._finished:
            raise ValueError("write to a finished put")
        view = memoryview(data).cast("B")
        part_size = self._driver.part_size
        while view:
            if len(self._buffer) == part_size:
                self._send_buffer()
            taken = view[: part_size - len(self._buffer)]
            self._buffer += taken  # a copy: the caller may reuse its buffer
            self._size += len(taken)
            view = view[len(taken) :]

    def copy_from(self, piece: ObjectRange) -> None:
        """Append a range of another object, server-side where S3's part rules allow, else through here."""
        if self._finished:
            raise ValueError("write to a finished put")
        offset, left = piece.offset, piece.length
        while left:
            if not self._buffer and left >= MIN_PART and len(self._parts) < MAX_PARTS - 1:
                length = min(left, MAX_PART)
                self._copy_part(piece.name, offset, length)
            else:
                # Too small for a part of its own (or behind buffered bytes): read it through, up to a part.
                length = min(left, self._driver.part_size - len(self._buffer)) or min(left, self._driver.part_size)
                copy_range(self._driver, ObjectRange(piece.name, offset, length), self, bytearray(min(length, MiB)))
            offset += length
            left -= length

    def _begin(self) -> str:
        if self._upload_id is None:
            client, bucket, key = self._driver.client, self._driver.location.bucket, self._key
            created = self._driver.call(
                "CreateMultipartUpload", lambda: client.create_multipart_upload(Bucket=bucket, Key=key)
            )
            self._upload_id = str(created["UploadId"])
        return self._upload_id

    def _send_buffer(self) -> None:
        upload_id = self._begin()
        number = len(self._parts) + 1
        # The buffer itself is the body (botocore takes a bytearray): no copy of the part is made to send it.
        body, self._buffer = self._buffer, bytearray()
        client, bucket, key = self._driver.client, self._driver.location.bucket, self._key
        # A part is idempotent: sending part N again replaces it.
        sent = self._driver.call(
            "UploadPart",
            lambda: client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body),
        )
        self._parts.append({"PartNumber": number, "ETag": sent["ETag"]})

    def _copy_part(self, source: str, offset: int, length: int) -> None:
        upload_id = self._begin()
        number = len(self._parts) + 1
        client, location = self._driver.client, self._driver.location
        try:
            copied = self._driver.call(
                "UploadPartCopy",
                lambda: client.upload_part_copy(
                    Bucket=location.bucket,
                    Key=self._key,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource={"Bucket": location.bucket, "Key": location.key(source)},
                    CopySourceRange=f"bytes={offset}-{offset + length - 1}",
                ),
            )
        except ClientError as error:
            if is_not_found(error):
                raise ObjectNotFound(source) from None
            if error_code(error) == "InvalidRange" or error_status(error) == 416:
                raise ValueError(f"{source} ends before byte {offset + length}") from None
            raise
        self._parts.append({"PartNumber": number, "ETag": copied["CopyPartResult"]["ETag"]})
        self._size += length

    # -- finishing ----------------------------------------------------------------------------------------

    def commit(self) -> int:
        if self._finished:
            raise ValueError("commit of a finished put")
        try:
            if self._upload_id is None:
                self._put_whole()
            else:
                if self._buffer or not self._parts:
                    self._send_buffer()
                self._complete()
        except BaseException:
            self.abort()
            raise
        self._finished = True
        self._buffer = bytearray()
        return self._size

    def _put_whole(self) -> None:
        client, bucket, key, body = self._driver.client, self._driver.location.bucket, self._key, self._buffer
        if not self._exclusive:
            self._driver.call("PutObject", lambda: client.put_object(Bucket=bucket, Key=key, Body=body))
            return
        self._conditional(
            "PutObject",
            lambda: client.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*"),
            lambda: f'"{hashlib.md5(body).hexdigest()}"',  # noqa: S324 - S3's ETag of a single PUT
        )

    def _complete(self) -> None:
        client, bucket, key, upload_id = self._driver.client, self._driver.location.bucket, self._key, self._upload_id
        parts = {"Parts": self._parts}
        conditional = {"IfNoneMatch": "*"} if self._exclusive else {}
        self._conditional(
            "CompleteMultipartUpload",
            lambda: client.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload=parts, **conditional
            ),
            lambda: _multipart_etag([part["ETag"] for part in self._parts]),
        )
        self._upload_id = None  # completed: nothing left to abort

    def _conditional(self, operation: str, request: Any, expected_etag: Callable[[], str | None]) -> None:
        """Send a write whose repeat is not harmless (a conditional put, a completion). When an attempt's answer
        was lost, the next one may be refused for that attempt's own success: then the stored object's ETag
        says whether it is ours."""
        attempts = 0
        while True:
            attempts += 1
            try:
                self._driver.call(operation, request, retry=False)
                return
            except StorageUnavailable:
                if attempts >= self._driver.retry.attempts:
                    raise
                time.sleep(self._driver.retry.delay(attempts))
                continue
            except ClientError as error:
                code = error_code(error)
                refused = code in ("PreconditionFailed", "NoSuchUpload") or error_status(error) == 412
                if refused and attempts > 1:
                    expected = expected_etag()
                    if expected is not None and self._stored_etag() == expected:
                        return  # an earlier attempt stored it
                    if expected is None:
                        raise StorageUnavailable(
                            f"the object store lost the answer to {operation} and its outcome cannot be told"
                        ) from error
                if code == "PreconditionFailed" or error_status(error) == 412:
                    raise ObjectExists(f"{self._name} exists") from None
                raise

    def _stored_etag(self) -> str | None:
        client, bucket, key = self._driver.client, self._driver.location.bucket, self._key
        try:
            head = self._driver.call("HeadObject", lambda: client.head_object(Bucket=bucket, Key=key))
        except ClientError as error:
            if is_not_found(error):
                return None
            raise
        return str(head.get("ETag"))

    def abort(self) -> None:
        self._finished = True
        self._buffer = bytearray()
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is None:
            return
        client, bucket, key = self._driver.client, self._driver.location.bucket, self._key
        try:
            self._driver.call(
                "AbortMultipartUpload",
                lambda: client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id),
            )
        except (ClientError, StorageUnavailable):
            # Already gone, or the store is down: an unfinished upload is invisible, and sweep_incomplete
            # (the upload expiry, garbage collection) aborts it later.
            return


class S3Driver:
    def __init__(
        self,
        location: S3Location,
        options: S3Options,
        *,
        part_size: int = DEFAULT_PART_SIZE,
        read_window: int = READ_WINDOW,
        retry: RetryPolicy | None = None,
    ) -> None:
        if not MIN_PART <= part_size <= MAX_PART:
            raise ValueError(f"part size must be between {MIN_PART} and {MAX_PART} bytes")
        self.location = location
        self.client = make_client(options)
        self.part_size = part_size
        self.read_window = read_window
        self.retry = retry or RetryPolicy()
        self._read_ahead = ThreadPoolExecutor(max_workers=_READ_AHEAD_THREADS, thread_name_prefix="s3-read-ahead")

    @classmethod
    def from_url(cls, url: str, options: S3Options) -> S3Driver:
        return cls(S3Location.parse(url), options)

    def call(self, operation: str, request: Any, *, retry: bool = True) -> Any:
        return call(operation, request, self.retry, retry=retry)

    def close(self) -> None:
        self._read_ahead.shutdown(wait=True)
        self.client.close()

    # -- the contract -------------------------------------------------------------------------------------

    def put(self, name: str, *, exclusive: bool = False, durable: bool = True) -> S3Writer:
        # An object store acknowledges a put once it is durable: ``durable`` asks for nothing more.
        return S3Writer(self, name, exclusive)

    def get(self, name: str, offset: int = 0, length: int | None = None) -> ReadStream:
        key = self.location.key(check_object_name(name))
        if offset < 0 or (length is not None and length < 0):
            raise ValueError("negative offset or length")
        if length == 0:
            self._size_for_range(name, offset)
            return ReadAheadStream(self._fetcher(key), offset, offset, b"", self._read_ahead, self.read_window)
        first_length = self.read_window if length is None else min(length, self.read_window)
        try:
            first, total = self._fetch_window(key, offset, first_length)
        except ClientError as error:
            if is_not_found(error):
                raise ObjectNotFound(name) from None
            if error_code(error) != "InvalidRange" and error_status(error) != 416:
                raise
            # No byte at ``offset``: the object ends there (an empty read) or before it (refused).
            self._size_for_range(name, offset)
            return ReadAheadStream(self._fetcher(key), offset, offset, b"", self._read_ahead, self.read_window)
        end = total if length is None else min(total, offset + length)
        return ReadAheadStream(self._fetcher(key), offset, end, first, self._read_ahead, self.read_window)

    def _size_for_range(self, name: str, offset: int) -> int:
        info = self.stat(name)
        if info is None:
            raise ObjectNotFound(name)
        if offset > info.size:
            raise ValueError(f"offset {offset} is past the end of {name}")
        return info.size

    def _fetch_window(self, key: str, offset: int, length: int) -> tuple[bytes, int]:
        """Bytes ``offset``.. (at most ``length``) of ``key`` and the object's total size; a body cut short
        is fetched again."""
        client, bucket, span = self.client, self.location.bucket, f"bytes={offset}-{offset + length - 1}"

        def request() -> tuple[bytes, int]:
            answer = client.get_object(Bucket=bucket, Key=key, Range=span)
            with closing(answer["Body"]) as body:
                data = body.read()
            total = int(str(answer.get("ContentRange", "")).rpartition("/")[2] or len(data))
            return data, total

        result: tuple[bytes, int] = self.call("GetObject", request)
        return result

    def _fetcher(self, key: str) -> Any:
        def fetch(offset: int, length: int) -> bytes:
            data, _ = self._fetch_window(key, offset, length)
            if len(data) != length:
                raise StorageUnavailable(f"the object store returned {len(data)} of {length} bytes of {key}")
            return data

        return fetch

    def stat(self, name: str) -> ObjectInfo | None:
        client, bucket, key = self.client, self.location.bucket, self.location.key(check_object_name(name))
        try:
            head = self.call("HeadObject", lambda: client.head_object(Bucket=bucket, Key=key))
        except ClientError as error:
            if is_not_found(error):
                return None
            raise
        return ObjectInfo(name, int(head["ContentLength"]), head["LastModified"].timestamp())

    def delete(self, name: str) -> None:
        client, bucket, key = self.client, self.location.bucket, self.location.key(check_object_name(name))
        try:
            self.call("DeleteObject", lambda: client.delete_object(Bucket=bucket, Key=key))
        except ClientError as error:
            if not is_not_found(error):
                raise

    def move(self, source: str, target: str) -> None:
        check_object_name(target)
        info = self.stat(source)
        if info is None:
            raise ObjectNotFound(source)
        if info.size <= MAX_PART:
            client, location = self.client, self.location
            try:
                self.call(
                    "CopyObject",
                    lambda: client.copy_object(
                        Bucket=location.bucket,
                        Key=location.key(target),
                        CopySource={"Bucket": location.bucket, "Key": location.key(source)},
                    ),
                )
            except ClientError as error:
                if is_not_found(error):
                    raise ObjectNotFound(source) from None
                raise
        else:
            self.compose(target, [ObjectRange(source, 0, info.size)])
        self.delete(source)

    def compose(self, target: str, pieces: Sequence[ObjectRange]) -> int:
        writer = self.put(target)
        try:
            for piece in pieces:
                if piece.offset < 0 or piece.length < 0:
                    raise ValueError("negative offset or length")
                if piece.length:
                    writer.copy_from(piece)
            return writer.commit()
        except BaseException:
            writer.abort()
            raise

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        # One level at a time (Delimiter "/"), each level sorted here before it is walked: some stores
        # (SeaweedFS) list a flat prefix directory by directory, which puts "a/1" before "a-c" where S3 and
        # the contract's name order put "a-c" first. A level is held in memory; levels are small here
        # (256 two-hex directories under blobs/<algorithm>/, and their blobs).
        yield from self._walk(self.location.key(check_prefix(prefix)))

    def _walk(self, key_prefix: str) -> Iterator[ObjectInfo]:
        entries: list[tuple[str, ObjectInfo | None]] = []
        client, bucket = self.client, self.location.bucket
        token: dict[str, str] = {}
        while True:
            page = self.call(
                "ListObjectsV2",
                lambda t=token: client.list_objects_v2(Bucket=bucket, Prefix=key_prefix, Delimiter="/", **t),
            )
            for entry in page.get("Contents", []):
                if not entry["Key"].endswith("/"):  # a directory marker some stores list; never an object here
                    name = self.location.name(entry["Key"])
                    entries.append((name, ObjectInfo(name, int(entry["Size"]), entry["LastModified"].timestamp())))
            for common in page.get("CommonPrefixes", []):
                if common["Prefix"] != key_prefix:
                    entries.append((self.location.name(common["Prefix"]), None))
            if not page.get("IsTruncated"):
                break
            token = {"ContinuationToken": page["NextContinuationToken"]}
        entries.sort(key=lambda entry: entry[0])
        for name, info in entries:
            if info is not None:
                yield info
            else:
                yield from self._walk(self.location.key(name))

    def sweep_incomplete(self, older_than: float) -> int:
        client, bucket, prefix = self.client, self.location.bucket, self.location.prefix
        aborted = 0
        markers: dict[str, str] = {}
        while True:
            page = self.call(
                "ListMultipartUploads",
                lambda m=markers: client.list_multipart_uploads(Bucket=bucket, Prefix=prefix, **m),
            )
            for upload in page.get("Uploads", []):
                if upload["Initiated"].timestamp() >= older_than:
                    continue
                key, upload_id = upload["Key"], upload["UploadId"]
                try:
                    self.call(
                        "AbortMultipartUpload",
                        lambda k=key, u=upload_id: client.abort_multipart_upload(Bucket=bucket, Key=k, UploadId=u),
                    )
                    aborted += 1
                except ClientError as error:
                    if error_code(error) != "NoSuchUpload":
                        raise
            if not page.get("IsTruncated"):
                return aborted
            markers = {"KeyMarker": page["NextKeyMarker"], "UploadIdMarker": page["NextUploadIdMarker"]}
