"""Handlers of /v2/<name>/blobs/<digest>: blob existence, download (with Range) and delete."""

from __future__ import annotations

from starlette.responses import Response

from ecrd.domain.digests import Digest
from ecrd.errors import BlobUnknown, RangeNotSatisfiable
from ecrd.oci.context import OciRequest
from ecrd.oci.protocol import CONTENT_DIGEST
from ecrd.oci.responses import BlobResponse, empty_response, parse_range, render_error


async def get_blob(req: OciRequest) -> Response:
    digest = str(Digest.parse(req.params["digest"]))
    head = req.method == "HEAD"

    def work() -> tuple[int, bytes]:
        repository = req.repository_sync()
        registry = req.services.registry
        # Existence and size need no decryption (as BatchCheckLayerAvailability needs no key).
        size, key = (registry.blob_size(repository, digest), b"") if head else registry.open_blob(repository, digest)
        if req.services.driver.blob_size(digest) is None:
            # The metadata says the repository links it but the bytes are not (or no longer) in the store.
            raise BlobUnknown("blob unknown to registry", detail={"digest": digest})
        return size, key

    size, key = await req.read(work)
    headers = {CONTENT_DIGEST: digest, "ETag": f'"{digest}"'}
    byte_range = None
    range_header = req.request.headers.get("range")
    if range_header and req.method == "GET":
        try:
            byte_range = parse_range(range_header, size)
        except RangeNotSatisfiable as exc:
            return render_error(exc, extra_headers={"Content-Range": f"bytes */{size}"})
    return BlobResponse(req.services.driver, digest, size, key, byte_range=byte_range, headers=headers, head=head)


async def delete_blob(req: OciRequest) -> Response:
    repository = await req.repository()
    await req.run(req.services.registry.delete_blob, repository, req.params["digest"])
    return empty_response(202)
