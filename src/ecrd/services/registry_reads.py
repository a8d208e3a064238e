"""The registry's read-only use cases: listings of repositories, tags, images and referrers, and manifests
unsealed for reading. Every listing is a keyset page in SQL (``after``/``limit``) with no per-row follow-ups."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ecrd.domain.digests import Digest
from ecrd.domain.manifests import Descriptor, parse_manifest
from ecrd.domain.records import Repository, StoredManifest
from ecrd.domain.registries import RegistryId
from ecrd.metadata import blobs as blob_queries
from ecrd.metadata import images as image_queries
from ecrd.metadata import repositories as repo_queries
from ecrd.metadata.generations import GenerationCache
from ecrd.metadata.store import MetadataStore
from ecrd.services.keys import DataKeys, unseal

# Unsealed manifests kept per process (a pull reads the same few again and again), only the small ones, so
# that the memory they take stays below OPEN_MANIFESTS_CACHED × OPEN_MANIFEST_MAX_BYTES.
OPEN_MANIFESTS_CACHED = 512
OPEN_MANIFEST_MAX_BYTES = 16 * 1024


class RegistryReads:
    """Reads shared by both doors; ``RegistryService`` adds the writes on the same store and keys."""

    store: MetadataStore
    keys: DataKeys
    # The account and region whose repositories these are.
    registry_id: RegistryId
    # Payloads by (repository id, digest, wrapped manifest key), while the access generation stands: a
    # manifest's bytes never change under its digest, and whatever closes its key (a KMS key disabled, the
    # repository deleted) moves the generation. Saves unwrapping the key and decrypting on every pull.
    _open_manifests: GenerationCache[tuple[int, str, bytes], bytes]

    def catalog(self, *, last: str | None, n: int) -> list[str]:
        with self.store.read() as conn:
            return repo_queries.list_names(conn, self.registry_id, after=last, limit=n)

    def list_repositories(self, *, after: str | None, limit: int) -> list[Repository]:
        """Repositories by name after ``after`` (a keyset page of DescribeRepositories): one query."""
        with self.store.read() as conn:
            return repo_queries.list_repositories(conn, self.registry_id, names=None, after=after, limit=limit)

    def _manifest_key(self, repository: Repository) -> bytes:
        assert repository.manifest_key is not None
        return self.keys.unwrap(repository, repository.manifest_key)

    def open_manifest(self, repository: Repository, stored: StoredManifest) -> StoredManifest:
        """The manifest with its payload unsealed (which needs the repository's key to be usable)."""
        if len(stored.payload) > OPEN_MANIFEST_MAX_BYTES or repository.manifest_key is None:
            payload = unseal(self._manifest_key(repository), stored.payload, stored.digest.encode())
        else:
            payload = self._open_manifests.get(
                (repository.id, stored.digest, repository.manifest_key),
                lambda: unseal(self._manifest_key(repository), stored.payload, stored.digest.encode()),
            )
        return dataclasses.replace(stored, payload=payload)

    def list_tags(self, repository: Repository, *, last: str | None, n: int | None) -> list[str]:
        return image_queries.read_tags(self.store, repository.id, after=last, limit=n)

    def referrers(self, repository: Repository, subject: str, artifact_type: str | None) -> list[Descriptor]:
        return self.list_referrers(repository, subject, None if artifact_type is None else [artifact_type])

    def list_referrers(
        self,
        repository: Repository,
        subject: str,
        artifact_types: list[str] | None,
        *,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[Descriptor]:
        """The referrers of ``subject`` by digest, of the artifact types (all when None): those after ``after``,
        at most ``limit``."""
        Digest.parse(subject)
        with self.store.read() as conn:
            found = image_queries.referrers(
                conn, repository.id, subject, artifact_types=artifact_types, after=after, limit=limit
            )
        out = []
        for record in found:
            parsed = parse_manifest(self.open_manifest(repository, record).payload, record.media_type)
            out.append(
                Descriptor(
                    media_type=record.media_type,
                    digest=record.digest,
                    size=record.size,
                    artifact_type=record.artifact_type,
                    annotations=parsed.annotations,
                )
            )
        return out

    def images(
        self,
        repository: Repository,
        *,
        tag_status: str = "ANY",
        image_status: str = "ANY",
        after: str | None = None,
        limit: int | None = None,
    ) -> list[tuple[StoredManifest, list[str]]]:
        """Images with their tags by digest (a keyset page of DescribeImages: those after ``after`` with the tag
        and image status, at most ``limit``), without their payloads: two queries."""
        with self.store.read() as conn:
            found = image_queries.list_manifests(
                conn, repository.id, tag_status=tag_status, image_status=image_status, after=after, limit=limit
            )
            by_digest = image_queries.tags_by_digest(conn, repository.id, [m.digest for m in found])
        return [(m, by_digest.get(m.digest, [])) for m in found]

    def image_ids(
        self,
        repository: Repository,
        *,
        tag_status: str,
        image_status: str = "ANY",
        after: tuple[str, str] | None,
        limit: int,
    ) -> list[tuple[str, str | None]]:
        """ListImages' (digest, tag) pairs, an untagged image's with tag None: a keyset page, one query."""
        with self.store.read() as conn:
            return image_queries.list_image_ids(
                conn, repository.id, tag_status=tag_status, image_status=image_status, after=after, limit=limit
            )

    def resolve(self, repository: Repository, *, digest: str | None, tag: str | None) -> StoredManifest | None:
        """The image an ECR imageId names; None when it names none (or a tag and digest that disagree)."""
        with self.store.read() as conn:
            if tag is not None:
                found = image_queries.get_manifest_by_tag(conn, repository.id, tag)
                if found is not None and digest is not None and found.digest != digest:
                    return None
                return found
            assert digest is not None
            found = image_queries.get_manifest(conn, repository.id, digest)
        return found

    def resolve_all(
        self, repository: Repository, image_ids: Sequence[tuple[str | None, str | None]], *, payloads: bool = False
    ) -> list[StoredManifest | None]:
        """``resolve`` for a batch of (digest, tag) image ids, in their order: two queries whatever the batch's
        size (one for the ids that name a tag, one for those that name only a digest). Payloads stay sealed."""
        if len(image_ids) == 1:
            # The common call (one image, as `docker`-adjacent tools and Terraform's aws_ecr_image ask): the
            # single-key statements, compiled once, instead of building two IN-list queries.
            digest, tag = image_ids[0]
            return [self._read_one(repository, digest=digest, tag=tag)]
        named_tags = [tag for _digest, tag in image_ids if tag is not None]
        named_digests = [digest for digest, tag in image_ids if tag is None and digest is not None]
        with self.store.read() as conn:
            by_tag = image_queries.manifests_by_tags(conn, repository.id, named_tags, payloads=payloads)
            by_digest = image_queries.manifests_by_digests(conn, repository.id, named_digests, payloads=payloads)
        found: list[StoredManifest | None] = []
        for digest, tag in image_ids:
            if tag is not None:
                image = by_tag.get(tag)
                found.append(None if image is not None and digest is not None and image.digest != digest else image)
            else:
                found.append(by_digest.get(digest) if digest is not None else None)
        return found

    def _read_one(self, repository: Repository, *, digest: str | None, tag: str | None) -> StoredManifest | None:
        """``resolve`` on the precompiled statements of the hot reads (outside any transaction)."""
        if tag is not None:
            found = image_queries.read_manifest_by_tag(self.store, repository.id, tag)
            return None if found is not None and digest is not None and found.digest != digest else found
        return image_queries.read_manifest(self.store, repository.id, digest) if digest is not None else None

    def tags_of_images(self, repository: Repository, digests: list[str]) -> dict[str, list[str]]:
        """The tags of each of a batch of images, by digest: one query."""
        if len(digests) == 1:
            found = image_queries.read_tags_of(self.store, repository.id, digests[0])
            return {digests[0]: found} if found else {}
        with self.store.read() as conn:
            return image_queries.tags_by_digest(conn, repository.id, digests)

    def tags_of(self, repository: Repository, digest: str) -> list[str]:
        with self.store.read() as conn:
            return image_queries.tags_of(conn, repository.id, digest)

    def linked_blobs(self, repository: Repository, digests: list[str]) -> dict[str, int]:
        with self.store.read() as conn:
            return blob_queries.linked_digests(conn, repository.id, digests)
