"""Artifacts the registry attaches to an image itself (a scan's SBOM, its signature): their small blobs stored
through an upload as a client's would be, and the manifest put as a referrer that goes with its subject."""

from __future__ import annotations

from ecrd.domain import media_types as mt
from ecrd.domain.digests import Digest
from ecrd.domain.records import Repository
from ecrd.services.registry import RegistryService
from ecrd.services.uploads import UploadService


def attach_artifact(
    registry: RegistryService, uploads: UploadService, repository: Repository, blobs: list[bytes], manifest: bytes
) -> str:
    """Store ``blobs`` (those not linked already) and the OCI ``manifest`` that references them; its digest."""
    for data in blobs:
        if registry.linked_blobs(repository, [str(Digest.of(data))]):
            continue
        upload = uploads.start_upload(repository)
        appender = uploads.begin_append(repository, upload.id, 0)
        appender.write(data)
        uploads.finish_append(appender)
        uploads.complete_upload(repository, upload.id, str(Digest.of(data)))
    digest = str(Digest.of(manifest))
    registry.put_manifest(repository, digest, manifest, mt.OCI_MANIFEST, registry_attached=True)
    return digest
