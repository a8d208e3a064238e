"""The /v2/ door's side of the pull-through cache: which requests a rule covers, the pull of a cached manifest or
blob through the service, and the response that streams a blob while the service stores it."""

from __future__ import annotations

import logging

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ecrd.domain.pull_through import PullThroughRule
from ecrd.errors import EcrdError
from ecrd.observability import record_of
from ecrd.oci.context import OciRequest
from ecrd.oci.responses import PlaintextBlob, raw_header
from ecrd.services.pull_through_cache import IMPORT_ACTION, BlobImport, CachedManifest

log = logging.getLogger("ecrd.oci")


async def covering_rule(req: OciRequest) -> PullThroughRule | None:
    """The rule covering the request's repository, if any. From memory on the hot path; the rules are read
    again (in a worker thread) only when this process's copy has aged."""
    service = req.services.pull_through
    if service is None:
        return None
    if not service.rules_fresh():
        await req.run(service.refresh_rules)
    return service.rule_for(req.name)


async def rule_made_since(req: OciRequest) -> PullThroughRule | None:
    """After a pull found nothing, in a repository no rule covered as this process remembered the rules: the rule
    covering it now, read from the store. A rule made on another process is then used at once, not only when
    this process's copy ages (the miss is the rare path, and one small query)."""
    service = req.services.pull_through
    if service is None:
        return None
    await req.run(service.refresh_rules)
    return service.rule_for(req.name)


def _authorized(req: OciRequest) -> None:
    """Authenticate and authorize the request's own action (e.g. ecr:BatchGetImage) before anything is looked up
    or fetched, as ``OciRequest.repository_sync`` does."""
    if req.action is not None:
        req.services.access.check_repository(req.caller, req.action, req.name)


async def pull_manifest(req: OciRequest, rule: PullThroughRule) -> CachedManifest:
    service = req.services.pull_through
    assert service is not None

    def work() -> CachedManifest:
        _authorized(req)
        return service.pull_manifest(req.name, req.params["reference"], req.caller, rule)

    cached = await req.run(work)
    req._repository = cached.repository
    if cached.imported:
        # An import is a write of the registry: the request log puts it in the audit trail.
        record_of(req.request.scope).action = IMPORT_ACTION
    return cached


async def blob_size(req: OciRequest, rule: PullThroughRule, digest: str) -> int:
    service = req.services.pull_through
    assert service is not None

    def work() -> int:
        repository = req.repository_sync()
        return service.blob_size(repository, digest, req.caller, rule)

    return await req.run(work)


async def open_blob(req: OciRequest, rule: PullThroughRule, digest: str) -> PlaintextBlob | BlobImport:
    service = req.services.pull_through
    assert service is not None

    def work() -> PlaintextBlob | BlobImport:
        repository = req.repository_sync()
        return service.open_blob(repository, digest, req.caller, rule)

    opened = await req.run(work)
    if isinstance(opened, BlobImport):
        record = record_of(req.request.scope)
        record.action = IMPORT_ACTION
        record.audit_when_complete = True
    return opened


class ImportResponse(Response):
    """A blob sent as it arrives from the upstream and is stored. Its length is the upstream's, so a response
    cut short (the upstream failed, or sent the wrong bytes: the service withholds the last chunk) is seen by
    the client as the error it is, never as a complete blob."""

    def __init__(self, blob: BlobImport, headers: dict[str, str]) -> None:
        self.status_code = 200
        self.background = None
        self.blob = blob
        raw = [raw_header(name, value) for name, value in headers.items()]
        raw.append((b"content-type", b"application/octet-stream"))
        raw.append((b"content-length", str(blob.size).encode()))
        self.raw_headers = raw

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        finished = False
        try:
            while (chunk := await anyio.to_thread.run_sync(self.blob.next_chunk)) is not None:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            finished = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except EcrdError as exc:
            # Headers are sent: ending the response short is the only signal left.
            log.warning("pull-through cache: blob import failed while being sent: %s", exc.message)
            record_of(scope).error_code = exc.oci_code
            raise
        finally:
            if not finished:
                await anyio.to_thread.run_sync(self.blob.close)
