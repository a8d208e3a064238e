"""Responses of the OCI door: JSON, errors in the spec's shape, and blobs sent without holding them."""

from __future__ import annotations

import json
import logging
from collections.abc import Generator
from typing import Any, Protocol

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ecrd.errors import CorruptData, EcrdError, RangeNotSatisfiable
from ecrd.observability import RequestRecord

log = logging.getLogger("ecrd.oci")

# The distribution spec's code for an error it has no code for.
INTERNAL_ERROR_CODE = "UNKNOWN"


# One encoder for every body: json.dumps with separators builds a new one per call.
_JSON = json.JSONEncoder(separators=(",", ":"))


def json_response(
    body: Any, *, status: int = 200, headers: dict[str, str] | None = None, media_type: str = "application/json"
) -> Response:
    encoded = _JSON.encode(body).encode()
    raw = [(b"content-length", str(len(encoded)).encode()), (b"content-type", media_type.encode("latin-1"))]
    if headers:
        raw.extend(raw_header(name, value) for name, value in headers.items())
    return ReadyResponse(status, raw, encoded)


def raw_header(name: str, value: str) -> tuple[bytes, bytes]:
    return name.lower().encode("latin-1"), value.encode("latin-1")


class ReadyResponse(Response):
    """A response built from headers ready to send (lower-case names, in bytes). The hot reads answer with it:
    Response's own constructor re-encodes and searches a header dict that the handler has just made."""

    def __init__(self, status: int, raw_headers: list[tuple[bytes, bytes]], body: bytes = b"") -> None:
        self.status_code = status
        self.body = body
        self.background = None
        self.raw_headers = raw_headers


def empty_response(status: int, headers: dict[str, str] | None = None) -> Response:
    response = Response(b"", status_code=status, headers=headers)
    return response


def render_error(exc: EcrdError, *, extra_headers: dict[str, str] | None = None) -> Response:
    """The one place an OCI error body is made: {"errors":[{"code","message","detail"}]}."""
    entry: dict[str, Any] = {"code": exc.oci_code, "message": exc.message}
    if exc.detail is not None:
        entry["detail"] = exc.detail
    headers = dict(extra_headers or {})
    return json_response({"errors": [entry]}, status=exc.oci_status, headers=headers)


def render_internal_error(record: RequestRecord) -> Response:
    """A failure that is not an EcrdError: 500 ``UNKNOWN``, naming the request's one id, the id of its access
    log line and of the traceback logged beside it, so an operator finds what the client saw."""
    record.error_code = INTERNAL_ERROR_CODE
    detail = {"requestId": record.request_id}
    return json_response(
        {"errors": [{"code": INTERNAL_ERROR_CODE, "message": "internal server error", "detail": detail}]},
        status=500,
    )


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """RFC 9110 §14.1.2, one byte range: ``bytes=a-b``, ``bytes=a-`` or ``bytes=-n``; inclusive (start, end).

    None means "serve the whole blob" (an unparseable Range header is ignored, as §14.2 allows); a range
    that cannot be satisfied raises RangeNotSatisfiable, answered with 416 and ``Content-Range: bytes */size``.
    """
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if first == "":
            suffix = int(last)
            if suffix <= 0:
                raise RangeNotSatisfiable("requested range not satisfiable", size=size)
            return (max(0, size - suffix), size - 1) if size else _unsatisfiable(size)
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if end < start:
        # RFC 9110 §14.1.1: a range whose last position is before its first is invalid; the OCI conformance
        # suite expects registries that support ranges to refuse it with 416 rather than ignore it.
        _unsatisfiable(size)
    if start >= size:
        _unsatisfiable(size)
    return start, min(end, size - 1)


def _unsatisfiable(size: int) -> tuple[int, int]:
    raise RangeNotSatisfiable("requested range not satisfiable", size=size)


# Segments decrypted per worker-thread call and sent as one body message: each call costs an event-loop
# wake-up and each message a hand-over to the server, so fewer, larger ones (4 MiB) send faster.
SEGMENTS_PER_HOP = 4


class PlaintextBlob(Protocol):
    """A stored blob's plaintext as the door sees it (``ecrd.storage.blob_store.BlobReader``)."""

    digest: str
    size: int

    def chunks(
        self, start: int = 0, end: int | None = None, *, segments_per_chunk: int = 1, reuse: bool = False
    ) -> Generator[bytearray | memoryview, None, None]: ...


class BlobResponse(Response):
    """Sends a blob (or one range of it) from the blob store, decrypting it in a worker thread 4 MiB at a
    time into one reused buffer, so the event loop never blocks and memory stays flat whatever the size.
    Without a blob (HEAD) only the headers are sent."""

    def __init__(
        self, blob: PlaintextBlob | None, size: int, *, byte_range: tuple[int, int] | None, headers: dict[str, str]
    ) -> None:
        self.status_code = 206 if byte_range else 200
        self.background = None
        self.blob = blob
        self.byte_range = byte_range
        self.size = size
        start, end = byte_range if byte_range else (0, size - 1)
        raw = [raw_header(name, value) for name, value in headers.items()]
        raw.append((b"content-type", b"application/octet-stream"))
        raw.append((b"content-length", str(max(0, end - start + 1)).encode()))
        if byte_range:
            raw.append((b"content-range", f"bytes {start}-{end}/{size}".encode()))
        raw.append((b"accept-ranges", b"bytes"))
        self.raw_headers = raw

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        if self.blob is None or self.size == 0:
            await send({"type": "http.response.body", "body": b""})
            return
        start, end = self.byte_range if self.byte_range else (0, self.size - 1)
        chunks = self.blob.chunks(start, end, segments_per_chunk=SEGMENTS_PER_HOP, reuse=True)
        try:
            while (chunk := await anyio.to_thread.run_sync(next, chunks, None)) is not None:
                # A bytearray (or a view of one) that the next chunk overwrites: servers take any bytes-like
                # body and are done with it when send() returns (granian copies it; asyncio transports send
                # it or copy the rest), and not copying 4 MiB into a bytes object first saves a fifth of a
                # pull's CPU.
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except CorruptData:
            # Headers are sent: the only honest signal left is to end the response short.
            log.error("blob %s failed authentication while being sent", self.blob.digest)
            raise
        finally:
            # Closes the stored object (in a thread: a remote store's close may wait on the network).
            await anyio.to_thread.run_sync(chunks.close)
