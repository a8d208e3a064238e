"""Handlers of /v2/<name>/blobs/<digest>: blob existence, download (with Range) and delete."""

from __future__ import annotations

from starlette.responses import Response

from ecrd.domain.digests import Digest
from ecrd.domain.pull_through import PullThroughRule
from ecrd.errors import BlobUnknown, RangeNotSatisfiable, RepositoryNotFound
from ecrd.oci import pull_through
from ecrd.oci.context import OciRequest
from ecrd.oci.protocol import CONTENT_DIGEST
from ecrd.oci.responses import BlobResponse, PlaintextBlob, empty_response, parse_range, render_error
from ecrd.services.pull_through_cache import BlobImport


async def get_blob(req: OciRequest) -> Response:
    digest = str(Digest.parse(req.params["digest"]))
    head = req.method == "HEAD"
    rule = await pull_through.covering_rule(req)
    if rule is not None:
        return await _get_cached_blob(req, rule, digest, head)

    def work() -> tuple[int, PlaintextBlob | None]:
        repository = req.repository_sync()
        registry = req.services.registry
        # Existence and size need no decryption (as BatchCheckLayerAvailability needs no key).
        if head:
            return registry.blob_size(repository, digest), None
        blob = registry.open_blob(repository, digest)
        return blob.size, blob

    try:
        size, blob = await req.read(work)
    except (RepositoryNotFound, BlobUnknown):
        rule = await pull_through.rule_made_since(req)
        if rule is None:
            raise
        return await _get_cached_blob(req, rule, digest, head)
    headers = {CONTENT_DIGEST: digest, "ETag": f'"{digest}"'}
    byte_range = None
    range_header = req.request.headers.get("range")
    if range_header and req.method == "GET":
        try:
            byte_range = parse_range(range_header, size)
        except RangeNotSatisfiable as exc:
            return render_error(exc, extra_headers={"Content-Range": f"bytes */{size}"})
    return BlobResponse(blob, size, byte_range=byte_range, headers=headers)


async def _get_cached_blob(req: OciRequest, rule: PullThroughRule, digest: str, head: bool) -> Response:
    """A blob of a repository a pull-through cache rule covers: stored, or imported as it is sent. A Range is
    honoured on a stored blob only (an import sends the whole blob, which the spec allows: 200 for a Range)."""
    headers = {CONTENT_DIGEST: digest, "ETag": f'"{digest}"'}
    if head:
        return BlobResponse(None, await pull_through.blob_size(req, rule, digest), byte_range=None, headers=headers)
    opened = await pull_through.open_blob(req, rule, digest)
    if isinstance(opened, BlobImport):
        return pull_through.ImportResponse(opened, headers)
    byte_range = None
    range_header = req.request.headers.get("range")
    if range_header:
        try:
            byte_range = parse_range(range_header, opened.size)
        except RangeNotSatisfiable as exc:
            return render_error(exc, extra_headers={"Content-Range": f"bytes */{opened.size}"})
    return BlobResponse(opened, opened.size, byte_range=byte_range, headers=headers)


async def delete_blob(req: OciRequest) -> Response:
    repository = await req.repository()
    await req.run(req.services.registry.delete_blob, repository, req.params["digest"])
    return empty_response(202)
