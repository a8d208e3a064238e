"""Handlers of /v2/<name>/manifests/<reference>: pull, push and delete of manifests and tags."""

from __future__ import annotations

from starlette.responses import Response

from ecrd.domain.manifests import MAX_MANIFEST_BYTES, check_size
from ecrd.errors import ManifestInvalid, ManifestUnknown, RepositoryNotFound
from ecrd.oci import pull_through
from ecrd.oci.context import OciRequest
from ecrd.oci.protocol import CONTENT_DIGEST, OCI_SUBJECT, manifest_url
from ecrd.oci.responses import ReadyResponse, empty_response
from ecrd.services.lifecycle import pull_principal

_CONTENT_DIGEST_RAW = CONTENT_DIGEST.lower().encode()


async def get_manifest(req: OciRequest) -> Response:
    head = req.method == "HEAD"
    registry = req.services.registry
    rule = await pull_through.covering_rule(req)
    if rule is not None:
        stored = (await pull_through.pull_manifest(req, rule)).manifest
    else:
        try:
            stored = await req.read(
                lambda: registry.get_manifest(req.repository_sync(), req.params["reference"], record_pull=False)
            )
        except (RepositoryNotFound, ManifestUnknown):
            rule = await pull_through.rule_made_since(req)
            if rule is None:
                raise
            stored = (await pull_through.pull_manifest(req, rule)).manifest
    repository = await req.repository()  # read already: no second look-up
    if repository.pull_policy is not None and req.services.pull_policy is not None:
        await req.run(req.services.pull_policy.check_pull, repository, stored, req.caller)
    if not head and registry.pull_time_due(stored):
        await req.run(registry.record_pull, repository, stored, pull_principal(req.caller))
    digest = stored.digest.encode()
    headers = [
        (b"content-type", stored.media_type.encode("latin-1")),
        # A HEAD announces the length of the body a GET would send.
        (b"content-length", str(stored.size).encode()),
        (_CONTENT_DIGEST_RAW, digest),
        (b"etag", b'"' + digest + b'"'),
    ]
    return ReadyResponse(200, headers, b"" if head else stored.payload)


async def read_limited_body(req: OciRequest, limit: int) -> bytes:
    declared = req.request.headers.get("content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise ManifestInvalid("invalid Content-Length") from None
        check_size(length)
    parts: list[bytes] = []
    total = 0
    async for chunk in req.request.stream():
        total += len(chunk)
        check_size(total)
        parts.append(chunk)
    return b"".join(parts)


async def put_manifest(req: OciRequest) -> Response:
    repository = await req.repository(for_push=True)
    payload = await read_limited_body(req, MAX_MANIFEST_BYTES)
    content_type = req.request.headers.get("content-type")
    result = await req.run(
        req.services.registry.put_manifest, repository, req.params["reference"], payload, content_type
    )
    headers = {"Location": manifest_url(repository.name, result.digest), CONTENT_DIGEST: result.digest}
    if result.manifest.subject is not None:
        # OCI distribution spec 1.1: a registry that processes `subject` says so with OCI-Subject.
        headers[OCI_SUBJECT] = result.manifest.subject.digest
    return empty_response(201, headers)


async def delete_manifest(req: OciRequest) -> Response:
    repository = await req.repository()
    reference = req.params["reference"]
    if ":" in reference:
        await req.run(req.services.registry.delete_manifest, repository, reference)
    else:
        await req.run(req.services.registry.delete_tag, repository, reference)
    return empty_response(202)
