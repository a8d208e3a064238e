"""Replication into another registry of the same deployment (another region, or another account): the image's
manifests are stored in the destination's repository and its blobs linked there, never copied — the bytes are in
the one blob store already, and only each blob's data key is wrapped anew by the destination repository's key
(its own encryption, from its REPLICATION creation template or the defaults).

As in ECR, a destination in another account takes images only when its registry policy lets the source account
``ecr:ReplicateImage`` (and ``ecr:CreateRepository`` when the repository is missing); the copy is not replicated
further, and is scanned as the destination's configuration says.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from ecrd.domain.arns import repository_arn
from ecrd.domain.creation_templates import REPLICATION
from ecrd.domain.manifests import parse_manifest
from ecrd.domain.records import Repository
from ecrd.domain.registries import RegistryId
from ecrd.domain.replication import (
    DESTINATION_ACCESS_DENIED,
    DESTINATION_NOT_CONFIGURED,
    DESTINATION_REFUSED_IMAGE,
    Destination,
)
from ecrd.errors import AccessDenied, EcrdError, ManifestUnknown, RepositoryNotFound
from ecrd.services.access import Authorizer, Caller, CallerKind
from ecrd.services.creation_templates import CreationTemplateService
from ecrd.services.registry import RegistryService
from ecrd.services.replication import SOURCE_BLOB_MISSING, SOURCE_IMAGE_DELETED

log = logging.getLogger("ecrd.replication")


@dataclass(frozen=True, slots=True)
class LocalRegistry:
    """What a destination registry of this deployment lends a replication: its repositories and templates."""

    registry: RegistryService
    templates: CreationTemplateService


class LocalReplication:
    """Copies images of one registry (``source``) into other registries of the deployment."""

    def __init__(
        self,
        source: RegistryService,
        destinations: Callable[[RegistryId], LocalRegistry | None],
        authorizer: Authorizer,
    ) -> None:
        self.source = source
        self.destinations = destinations
        self.authorizer = authorizer

    def __call__(self, repository: Repository, digest: str, tag: str | None, destination: Destination) -> str | None:
        """Copy one image (and its tag); None when it is there, else ECR's failure code."""
        target_id = RegistryId(destination.registry_id, destination.region)
        target = self.destinations(target_id)
        if target is None:
            return DESTINATION_NOT_CONFIGURED
        try:
            copy = self._repository(target, target_id, repository.name)
            if copy is None:
                return DESTINATION_ACCESS_DENIED
            payload, media_type = self._copy_manifest(target, repository, copy, digest)
            if payload is None:
                return SOURCE_IMAGE_DELETED
            if tag is not None:
                target.registry.put_manifest(copy, tag, payload, media_type, imported=True)
        except _Missing as missing:
            return missing.code
        except EcrdError as exc:
            log.warning("replication of %s@%s to %s failed: %s", repository.name, digest, target_id, exc.message)
            return DESTINATION_REFUSED_IMAGE
        return None

    def delete(self, repository: Repository, references: list[str], destination: Destination) -> str | None:
        """Carry a deletion: each reference (a digest: the image; a tag: the tag alone) removed from the
        destination's repository of the same name; what is not there any more is fine."""
        target_id = RegistryId(destination.registry_id, destination.region)
        target = self.destinations(target_id)
        if target is None:
            return DESTINATION_NOT_CONFIGURED
        if target_id.account_id != self.source.account_id:
            arn = repository_arn(target_id.region, target_id.account_id, repository.name)
            try:
                self.authorizer.authorize(self._source_root(), "ecr:ReplicateImage", arn, repository=repository.name)
            except AccessDenied:
                return DESTINATION_ACCESS_DENIED
        try:
            copy = target.registry.get_repository(repository.name)
        except RepositoryNotFound:
            return None
        for reference in references:
            try:
                if ":" in reference:
                    target.registry.delete_manifest(copy, reference)
                else:
                    target.registry.delete_tag(copy, reference)
            except ManifestUnknown:
                continue
        return None

    def _repository(self, target: LocalRegistry, target_id: RegistryId, name: str) -> Repository | None:
        """The destination's repository of ``name``, made (from its REPLICATION template, or with the defaults)
        when missing; None when the destination's registry policy does not let the source account replicate."""
        source_root = self._source_root()
        arn = repository_arn(target_id.region, target_id.account_id, name)
        cross_account = target_id.account_id != source_root.account_id
        try:
            if cross_account:
                self.authorizer.authorize(source_root, "ecr:ReplicateImage", arn, repository=name)
            return target.registry.get_repository(name)
        except AccessDenied:
            return None
        except RepositoryNotFound:
            pass
        try:
            if cross_account:
                self.authorizer.authorize(source_root, "ecr:CreateRepository", arn, repository=name)
        except AccessDenied:
            return None
        return target.templates.create_for(name, REPLICATION, source_root.arn)

    def _source_root(self) -> Caller:
        account = self.source.account_id
        return Caller(arn=f"arn:aws:iam::{account}:root", account_id=account, kind=CallerKind.ROOT)

    def _copy_manifest(
        self, target: LocalRegistry, source: Repository, copy: Repository, digest: str
    ) -> tuple[bytes, str] | tuple[None, None]:
        """Store one manifest of ``source`` in ``copy`` after what it references (children, then blobs)."""
        stored = self.source.resolve(source, digest=digest, tag=None)
        if stored is None:
            return None, None
        payload = self.source.open_manifest(source, stored).payload
        manifest = parse_manifest(payload, stored.media_type)
        for child in manifest.manifests:
            if self._copy_manifest(target, source, copy, child.digest)[0] is None:
                raise _Missing(SOURCE_IMAGE_DELETED)
        for blob in manifest.blob_digests():
            data_key = self.source.blob_data_key(source, blob)
            if data_key is None:
                raise _Missing(SOURCE_BLOB_MISSING)
            target.registry.link_copied_blob(copy, blob, data_key)
        target.registry.put_manifest(copy, digest, payload, stored.media_type, imported=True)
        return payload, stored.media_type


class _Missing(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code
