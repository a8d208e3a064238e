"""Handlers of /v2/<name>/blobs/uploads/: monolithic, chunked and streamed pushes, and cross-repo mounts."""

from __future__ import annotations

import asyncio
import re

from starlette.requests import ClientDisconnect
from starlette.responses import Response

from ecrd.domain.digests import Digest
from ecrd.domain.names import check_repository_name
from ecrd.domain.records import Upload
from ecrd.errors import BlobUploadInvalid, DigestInvalid, EcrdError, RangeNotSatisfiable
from ecrd.oci.actions import MOUNT_SOURCE_ACTION
from ecrd.oci.context import OciRequest
from ecrd.oci.protocol import CONTENT_DIGEST, UPLOAD_UUID, blob_url, upload_url
from ecrd.oci.responses import empty_response, render_error
from ecrd.services.uploads import Appender

# Bodies arrive in small pieces; gathering ~1 MiB before hashing and writing keeps per-call overhead low.
WRITE_BATCH = 1024 * 1024
# At most 18 digits per position: beyond any blob, and int() of thousands of digits is refused by Python.
_CONTENT_RANGE = re.compile(r"(?:bytes[ =])?(\d{1,18})-(\d{1,18})(?:/(?:\d{1,18}|\*))?")


def _range_header(size: int) -> str:
    # Inclusive end of the bytes received, as distribution reports it ("0-0" for an empty upload).
    return f"0-{max(size - 1, 0)}"


def _status_headers(name: str, upload: Upload) -> dict[str, str]:
    return {
        "Location": upload_url(name, upload.id),
        "Range": _range_header(upload.size),
        UPLOAD_UUID: upload.id,
    }


def _parse_content_range(header: str | None, content_length: str | None) -> tuple[int | None, int | None]:
    """(start, length) declared by a chunk's Content-Range; (None, None) for a streamed PATCH."""
    if header is None:
        return None, None
    match = _CONTENT_RANGE.fullmatch(header.strip())
    if match is None:
        raise RangeNotSatisfiable(f"invalid Content-Range {header[:100]!r}: expected <start>-<end>")
    start, end = int(match.group(1)), int(match.group(2))
    if end < start:
        raise RangeNotSatisfiable(f"invalid Content-Range {header[:100]!r}: end before start")
    length = end - start + 1
    if content_length is not None and content_length.isdigit() and int(content_length) != length:
        raise RangeNotSatisfiable(
            f"Content-Range {header[:100]!r} declares {length} bytes but Content-Length is {content_length}"
        )
    return start, length


async def _append_body(
    req: OciRequest, upload_id: str, start: int | None, expected: int | None, *, complete: str | None = None
) -> Upload:
    """Stream the request body onto the upload; the chunk counts only if it arrived whole. With ``complete``
    (a digest) the upload is then completed in the same worker-thread call (a monolithic push).

    A body declared no larger than one batch (a small layer's PATCH or PUT) is gathered first and costs one
    worker-thread call in all; a larger one two and more: open, write per batch, then write-finish-complete."""
    declared = req.request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) <= WRITE_BATCH:
        return await _append_small_body(req, upload_id, start, expected, complete)
    uploads = req.services.uploads
    appender: Appender = await req.run(lambda: uploads.begin_append(req.repository_sync(), upload_id, start))
    batch: list[bytes] = []
    batched = 0
    # The batch before this one, being hashed, encrypted and written in a worker thread while this one
    # arrives: receiving and writing overlap (hashing and writing release the GIL). Batches are written in
    # order, one at a time, and at most two are held.
    writing: asyncio.Task[None] | None = None
    try:
        async for chunk in req.request.stream():
            if not chunk:
                continue
            batch.append(chunk)
            batched += len(chunk)
            if batched >= WRITE_BATCH:
                pieces, batch, batched = batch, [], 0
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(req.run(appender.write_all, pieces))
        if writing is not None:
            await writing
    except (ClientDisconnect, EcrdError, OSError):
        if writing is not None and not writing.done():
            await asyncio.wait([writing])  # never abort under a write still running
        await req.run(uploads.abort_append, appender)
        raise
    return await req.run(lambda: _finish_append(req, appender, batch, expected, complete))


async def _append_small_body(
    req: OciRequest, upload_id: str, start: int | None, expected: int | None, complete: str | None
) -> Upload:
    # Authenticated and authorized before a byte of the body is read, as on the streaming path (on SQLite
    # from the caches, on the event loop).
    await req.read(req.repository_sync)
    body = [chunk async for chunk in req.request.stream()]

    def append() -> Upload:
        appender = req.services.uploads.begin_append(req.repository_sync(), upload_id, start)
        return _finish_append(req, appender, body, expected, complete)

    return await req.run(append)


def _finish_append(
    req: OciRequest, appender: Appender, tail: list[bytes], expected: int | None, complete: str | None
) -> Upload:
    """Write the last bytes, check the chunk's declared length, record it, and (``complete``) make the blob."""
    uploads = req.services.uploads
    upload_id = appender.upload.id
    try:
        appender.write_all(tail)
        if expected is not None and appender.written != expected:
            raise BlobUploadInvalid(
                f"chunk declared {expected} bytes but {appender.written} arrived", detail={"uuid": upload_id}
            )
    except (EcrdError, OSError):
        uploads.abort_append(appender)
        raise
    upload = uploads.finish_append(appender)
    if complete is not None:
        uploads.complete_upload(req.repository_sync(), upload_id, complete)
    return upload


async def post_upload(req: OciRequest) -> Response:
    query = req.request.query_params
    mount = query.get("mount")
    source_name = query.get("from")
    if mount is not None and source_name:
        repository = await req.repository(for_push=True)
        digest = str(Digest.parse(mount))
        size = await _try_mount(req, repository.name, source_name, digest)
        if size is not None:
            return empty_response(201, {"Location": blob_url(repository.name, digest), CONTENT_DIGEST: digest})
    # One worker-thread call: authorize, find (or create on push) the repository, open the session.
    upload = await req.run(lambda: req.services.uploads.start_upload(req.repository_sync(for_push=True)))
    digest_param = query.get("digest")
    if digest_param is not None:
        # Monolithic push: POST ?digest= with the whole blob as the body.
        return await _complete(req, upload.id, digest_param, with_body=True)
    return empty_response(202, {**_status_headers(req.name, upload), "Content-Length": "0"})


async def _try_mount(req: OciRequest, target: str, source_name: str, digest: str) -> int | None:
    """Mount when the caller may read the blob from the source repository; otherwise None (the client
    then uploads as usual, and learns nothing about repositories it cannot read)."""
    try:
        check_repository_name(source_name)
        await req.run(lambda: req.services.access.check_repository(req.caller, MOUNT_SOURCE_ACTION, source_name))
        registry = req.services.registry
        source = await req.run(registry.get_repository, source_name)
        target_repository = await req.run(registry.get_repository, target)
        return await req.run(registry.mount_blob, target_repository, source, digest)
    except EcrdError:  # denied, unknown source, or a blob it lacks: all mean "upload it instead"
        return None


async def patch_upload(req: OciRequest) -> Response:
    headers = req.request.headers
    upload_id = req.params["upload_id"]
    try:
        start, expected = _parse_content_range(headers.get("content-range"), headers.get("content-length"))
        upload = await _append_body(req, upload_id, start, expected)
    except RangeNotSatisfiable as exc:
        repository = await req.repository()
        current = await req.run(req.services.uploads.get_upload, repository, upload_id)
        return render_error(exc, extra_headers=_status_headers(req.name, current))
    return empty_response(202, {**_status_headers(req.name, upload), "Content-Length": "0"})


async def put_upload(req: OciRequest) -> Response:
    digest = req.request.query_params.get("digest")
    if not digest:
        raise DigestInvalid("the digest query parameter is required to complete an upload")
    try:
        return await _complete(req, req.params["upload_id"], digest, with_body=True)
    except RangeNotSatisfiable as exc:
        # As for PATCH: a final chunk out of order answers 416 with where the upload stands.
        repository = await req.repository()
        current = await req.run(req.services.uploads.get_upload, repository, req.params["upload_id"])
        return render_error(exc, extra_headers=_status_headers(req.name, current))


async def _complete(req: OciRequest, upload_id: str, digest: str, *, with_body: bool) -> Response:
    parsed = str(Digest.parse(digest))
    headers = req.request.headers
    has_body = headers.get("content-length", "0") != "0" or "chunked" in headers.get("transfer-encoding", "")
    if with_body and has_body:
        start, expected = _parse_content_range(headers.get("content-range"), headers.get("content-length"))
        await _append_body(req, upload_id, start, expected, complete=parsed)
    else:
        await req.run(lambda: req.services.uploads.complete_upload(req.repository_sync(), upload_id, parsed))
    return empty_response(201, {"Location": blob_url(req.name, parsed), CONTENT_DIGEST: parsed, "Content-Length": "0"})


async def get_upload(req: OciRequest) -> Response:
    repository = await req.repository()
    upload = await req.run(req.services.uploads.get_upload, repository, req.params["upload_id"])
    return empty_response(204, _status_headers(repository.name, upload))


async def delete_upload(req: OciRequest) -> Response:
    repository = await req.repository()
    await req.run(req.services.uploads.cancel_upload, repository, req.params["upload_id"])
    return empty_response(204)
