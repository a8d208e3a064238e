"""Repositories, manifests, tags and blob links: the registry's use cases shared by both doors."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from ecrd.domain import media_types as mt
from ecrd.domain.caches import BoundedCache
from ecrd.domain.digests import Digest
from ecrd.domain.manifests import Manifest, parse_manifest, referrer_artifact_type
from ecrd.domain.mutability import tag_is_immutable
from ecrd.domain.names import check_repository_name, check_tag, is_tag
from ecrd.domain.pull_policy import PullPolicy
from ecrd.domain.records import MutabilityExclusion, Repository, StoredManifest
from ecrd.domain.registries import RegistryId
from ecrd.errors import (
    BlobUnknown,
    ImageAlreadyExists,
    ImageArchived,
    ImageDigestMismatch,
    ImageReferencedByManifestList,
    ImageTagAlreadyExists,
    ManifestBlobUnknown,
    ManifestUnknown,
    RepositoryAlreadyExists,
    RepositoryNotEmpty,
    RepositoryNotFound,
    UnsupportedOperation,
)
from ecrd.metadata import blobs as blob_queries
from ecrd.metadata import gc as gc_queries
from ecrd.metadata import images as image_queries
from ecrd.metadata import lifecycle as lifecycle_queries
from ecrd.metadata import repositories as repo_queries
from ecrd.metadata.generations import GenerationCache, Generations
from ecrd.metadata.store import MetadataStore
from ecrd.services.access import Caller
from ecrd.services.keys import DataKeys, seal
from ecrd.services.registry_reads import OPEN_MANIFESTS_CACHED, RegistryReads
from ecrd.storage.blob_store import BlobReader, EncryptedBlobStore

# ECR refreshes lastRecordedPullTime "at least once every 24 hours"; we record at most once an hour per
# image so that a pull stays a read. sinceImagePulled counts in days, so an hour is well within its precision.
PULL_TIME_GRANULARITY_SECONDS = 3600.0
# How long a blob seen in the blob store is taken to be there still, and how many such blobs are remembered. A
# blob existence check (HEAD) otherwise asks the store every time: a stat, or on an object store a round trip.
STORED_MEMORY_SECONDS = 10.0
STORED_MEMORY_BLOBS = 8192


@dataclass(frozen=True, slots=True)
class PutManifestResult:
    digest: str
    manifest: Manifest
    created: bool


class RegistryService(RegistryReads):
    """The registry's writes (and lookups that serve them); its read-only listings are ``RegistryReads``."""

    def __init__(
        self,
        store: MetadataStore,
        keys: DataKeys,
        *,
        account_id: str,
        region: str,
        clock: Callable[[], float] = time.time,
        generations: Generations | None = None,
        blobs: EncryptedBlobStore,
    ) -> None:
        self.store = store
        self.keys = keys
        self.blobs = blobs
        self.account_id = account_id
        self.registry_id = RegistryId(account_id, region)
        # Makes a repository a push names when it is missing, or answers None: the CREATE_ON_PUSH templates
        # (ecrd.services.creation_templates), given the pushing caller, who must be allowed to create it.
        self.create_on_push: Callable[[str, Caller], Repository | None] | None = None
        self.clock = clock
        # Repository rows (settings, keys, policy) by name, read on every request: see ecrd.metadata.generations.
        self._repositories: GenerationCache[str, Repository | None] = GenerationCache(generations)
        # When each blob was last seen in the blob store (by this process's clock): see _stored_lately.
        self._stored_at: BoundedCache[str, float] = BoundedCache(STORED_MEMORY_BLOBS)
        self._open_manifests = GenerationCache(generations, capacity=OPEN_MANIFESTS_CACHED)
        # Called inside the transaction that stores a new manifest (scan-on-push queues its job there).
        self.on_manifest_created: list[Callable[[Connection, Repository, str, Manifest, float], None]] = []
        # Called inside the transaction of a push that stored an image or moved a tag to it (digest, tag or
        # None), and of a deletion (digest, the tags the image lost): the event outbox writes its events there.
        self.on_image_pushed: list[Callable[[Connection, Repository, str, str | None, Manifest, float], None]] = []
        self.on_image_deleted: list[Callable[[Connection, Repository, str, Sequence[str], float], None]] = []

    # -- repositories -------------------------------------------------------------------------------------

    def _not_found(self, name: str) -> RepositoryNotFound:
        return RepositoryNotFound(
            f"The repository with name '{name}' does not exist in the registry with id '{self.account_id}'",
            detail={"name": name},
        )

    def get_repository(self, name: str) -> Repository:
        check_repository_name(name)
        repository = self._find_repository(name)
        if repository is None:
            raise self._not_found(name)
        return repository

    def _find_repository(self, name: str) -> Repository | None:
        return self._repositories.get(name, lambda: self._read_repository(name))

    def _read_repository(self, name: str) -> Repository | None:
        with self.store.read() as conn:
            return repo_queries.get_by_name(conn, self.registry_id, name)

    def repository_for_push(self, name: str, caller: Caller) -> Repository:
        """The repository a push goes to; a missing one is created when a CREATE_ON_PUSH template covers it."""
        check_repository_name(name)
        repository = self._find_repository(name)
        if repository is not None:
            return repository
        created = self.create_on_push(name, caller) if self.create_on_push is not None else None
        if created is None:
            raise RepositoryNotFound(
                f"The repository with name '{name}' does not exist in the registry with id "
                f"'{self.account_id}'. Create it first (aws ecr create-repository --repository-name {name}).",
                detail={"name": name},
            )
        return created

    def create_repository(
        self,
        name: str,
        *,
        image_tag_mutability: str = "MUTABLE",
        mutability_exclusions: tuple[MutabilityExclusion, ...] = (),
        scan_on_push: bool = False,
        encryption_type: str = "AES256",
        kms_key: str | None = None,
        tags: dict[str, str] | None = None,
        policy_text: str | None = None,
        lifecycle_policy: str | None = None,
        pull_policy: PullPolicy | None = None,
    ) -> Repository:
        """A new repository; the policies given (a creation template's) are set in the same transaction, so no
        one sees it without them."""
        check_repository_name(name)
        # The manifests' data key is wrapped before the transaction: wrapping may ask the key service.
        provisional = Repository(
            0,
            self.registry_id,
            name,
            0.0,
            image_tag_mutability,
            mutability_exclusions,
            scan_on_push,
            encryption_type,
            kms_key,
        )
        manifest_key = self.keys.wrap(provisional, self.keys.new_data_key())
        with self.store.write() as conn:
            if repo_queries.get_by_name(conn, self.registry_id, name) is not None:
                raise RepositoryAlreadyExists(
                    f"The repository with name '{name}' already exists in the registry with id '{self.account_id}'"
                )
            repository = repo_queries.insert_repository(
                conn,
                self.registry_id,
                name=name,
                created_at=self.clock(),
                image_tag_mutability=image_tag_mutability,
                mutability_exclusions=mutability_exclusions,
                scan_on_push=scan_on_push,
                encryption_type=encryption_type,
                kms_key=kms_key,
                manifest_key=manifest_key,
            )
            repo_queries.put_resource_tags(conn, repository.id, tags or {})
            if policy_text is not None:
                repo_queries.set_policy(conn, repository.id, policy_text)
            if lifecycle_policy is not None:
                lifecycle_queries.put_policy(conn, repository.id, lifecycle_policy, repository.created_at)
            if pull_policy is not None:
                repo_queries.set_pull_policy(conn, repository.id, pull_policy)
                repository = dataclasses.replace(repository, pull_policy=pull_policy)
        return repository

    def delete_repository(self, name: str, *, force: bool = False) -> Repository:
        check_repository_name(name)
        with self.store.write() as conn:
            repository = repo_queries.get_by_name(conn, self.registry_id, name, for_update=True)
            if repository is None:
                raise self._not_found(name)
            if not force and repo_queries.count_images(conn, repository.id) > 0:
                raise RepositoryNotEmpty(
                    f"The repository with name '{name}' in registry with id '{self.account_id}' cannot be "
                    "deleted because it still contains images"
                )
            repo_queries.delete_repository(conn, repository.id)
        return repository

    def _lock(self, conn: Connection, repository: Repository) -> Repository:
        """The repository's row read under its write lock, which every rule of the write decides on: the caller's
        row may be older than a setting committed since (a /v2/ push reads it before the body arrives). Locked by
        id, so a repository deleted since, even if made again under its name, is not written to."""
        current = repo_queries.get_by_id(conn, repository.id, for_update=True)
        # SQLite may give a deleted repository's id to the next one made: the manifest key, random per
        # repository, tells them apart.
        if current is None or current.manifest_key != repository.manifest_key:
            raise self._not_found(repository.name)
        return current

    # -- manifests ------------------------------------------------------------------------------------------

    def put_manifest(
        self,
        repository: Repository,
        reference: str,
        payload: bytes,
        content_type: str | None,
        *,
        refuse_existing: bool = False,
        registry_attached: bool = False,
        imported: bool = False,
        then: Callable[[Connection, str, float], None] | None = None,
    ) -> PutManifestResult:
        """Store a manifest and move its tag. ``refuse_existing`` is PutImage's rule: an image already stored
        (under this tag, when one is given) is refused. ``registry_attached`` marks a referrer the registry made
        itself (a scan's SBOM), deleted with its subject, which must still exist. ``imported`` is the pull-through
        cache's import of an upstream manifest: its blobs and children arrive later, as they are pulled (ECR caches
        the images of an index that are pulled), so they are recorded as references without being required; it is
        no push, and ``then(conn, digest, now)`` records it in the same transaction instead."""
        manifest = parse_manifest(payload, content_type)
        tag: str | None = None
        if ":" in reference:
            wanted = Digest.parse(reference)
            digest = str(Digest.of(payload, wanted.algorithm))
            if digest != reference:
                raise ImageDigestMismatch(
                    f"manifest digest {digest} does not match the digest {reference} in the request",
                    detail={"expected": reference, "computed": digest},
                )
        else:
            tag = check_tag(reference)
            digest = str(Digest.of(payload))
        now = self.clock()
        # Sealed before the transaction (unwrapping may ask the key service). A repository's encryption is fixed
        # when it is made, and the lock below finds this very repository or none.
        sealed = seal(self._manifest_key(repository), payload, digest.encode())
        with self.store.write() as conn:
            repository = self._lock(conn, repository)
            created = not image_queries.manifest_exists(conn, repository.id, digest)
            current = image_queries.get_tag_digest(conn, repository.id, tag) if tag is not None else None
            if refuse_existing and not created and (tag is None or current == digest):
                raise ImageAlreadyExists(
                    f"Image with digest '{digest}' and tag '{tag or 'null'}' already exists in the repository with "
                    f"name '{repository.name}' in registry with id '{self.account_id}'"
                )
            if (
                registry_attached
                and manifest.subject is not None
                and not image_queries.manifest_exists(conn, repository.id, manifest.subject.digest)
            ):
                # The subject was deleted since: what the registry attaches to it must not outlive it.
                raise ManifestUnknown("Requested image not found", detail={"digest": manifest.subject.digest})
            if created:
                references = _references(manifest) if imported else self._check_references(conn, repository, manifest)
                image_queries.insert_manifest(
                    conn,
                    StoredManifest(
                        repository_id=repository.id,
                        digest=digest,
                        media_type=manifest.media_type,
                        artifact_type=referrer_artifact_type(manifest),
                        subject_digest=manifest.subject.digest if manifest.subject else None,
                        payload=sealed,
                        size=len(payload),
                        image_size=_image_size(manifest, len(payload)),
                        pushed_at=now,
                        last_pulled_at=None,
                    ),
                    references,
                    registry_attached=registry_attached,
                )
                for hook in self.on_manifest_created:
                    hook(conn, repository, digest, manifest, now)
            if tag is not None:
                moving = current is not None and current != digest
                if moving and tag_is_immutable(repository.image_tag_mutability, repository.mutability_exclusions, tag):
                    raise ImageTagAlreadyExists(
                        f"The image tag '{tag}' already exists in the '{repository.name}' repository and "
                        "cannot be overwritten because the tag is immutable.",
                        detail={"tag": tag},
                    )
                if current != digest:
                    image_queries.set_tag(conn, repository.id, tag, digest, now)
            if (created or (tag is not None and current != digest)) and not (registry_attached or imported):
                for pushed in self.on_image_pushed:
                    pushed(conn, repository, digest, tag, manifest, now)
            if then is not None:
                then(conn, digest, now)
        return PutManifestResult(digest, manifest, created)

    def _check_references(self, conn: Connection, repository: Repository, manifest: Manifest) -> list[tuple[str, str]]:
        blob_digests = manifest.blob_digests()
        # Held until the manifest commits, so a garbage collection cannot take a blob this manifest references;
        # one that took it first has unlinked it, and the check below finds it unknown.
        gc_queries.hold_for_reference(conn, blob_digests)
        linked = blob_queries.linked_digests(conn, repository.id, blob_digests)
        for digest in blob_digests:
            if digest not in linked:
                raise ManifestBlobUnknown(
                    f"blob unknown to registry: the manifest references {digest}, which is not in repository "
                    f"'{repository.name}'",
                    detail={"digest": digest},
                )
        children = [d.digest for d in manifest.manifests]
        present = image_queries.existing_manifests(conn, repository.id, children)
        for digest in children:
            if digest not in present:
                raise ManifestBlobUnknown(
                    f"manifest unknown to registry: the index references {digest}, which is not in repository "
                    f"'{repository.name}'",
                    detail={"digest": digest},
                )
        return _references(manifest)

    def get_manifest(
        self, repository: Repository, reference: str, *, record_pull: bool = True, puller: str | None = None
    ) -> StoredManifest:
        if ":" in reference:
            Digest.parse(reference)
            found = image_queries.read_manifest(self.store, repository.id, reference)
        elif is_tag(reference):
            found = image_queries.read_manifest_by_tag(self.store, repository.id, reference)
        else:
            # A reference that can be no tag names no manifest: the spec's answer is 404, not 400.
            found = None
        if found is None:
            raise ManifestUnknown("Requested image not found", detail={"reference": reference})
        if found.image_status != "ACTIVE":
            # ECR: "Archived images cannot be pulled. Requests to pull the archived image will fail with a 404
            # error" (user guide, "Archiving an image"); an image being restored stays archived until it is ACTIVE.
            raise ImageArchived(
                f"The image {found.digest} is {found.image_status.lower()}: it cannot be pulled until it is "
                "restored (UpdateImageStorageClass with targetStorageClass STANDARD)",
                detail={"reference": reference, "imageStatus": found.image_status},
            )
        found = self.open_manifest(repository, found)
        if record_pull and self.pull_time_due(found):
            self.record_pull(repository, found, puller)
        return found

    def pull_time_due(self, manifest: StoredManifest) -> bool:
        last = manifest.last_pulled_at
        return last is None or self.clock() - last > PULL_TIME_GRANULARITY_SECONDS

    def record_pull(self, repository: Repository, manifest: StoredManifest, puller: str | None = None) -> None:
        """Refresh lastRecordedPullTime (a write: callers on a hot path check ``pull_time_due`` first), unless
        the pulling principal (``puller``, an IAM user or role ARN) is on the pull-time update exclusion list:
        a scanner's pulls are no use of the image (ECR, RegisterPullTimeUpdateExclusion)."""
        if puller is not None:
            with self.store.read() as conn:
                if lifecycle_queries.is_excluded(conn, puller):
                    return
        with self.store.write() as conn:
            image_queries.touch_pull_time(conn, repository.id, manifest.digest, self.clock())

    def record_pulls(self, repository: Repository, manifests: list[StoredManifest], puller: str | None = None) -> None:
        """``record_pull`` for a batch (BatchGetImage): the images whose pull time is due, in one write."""
        due = [manifest.digest for manifest in manifests if self.pull_time_due(manifest)]
        if not due:
            return
        if puller is not None:
            with self.store.read() as conn:
                if lifecycle_queries.is_excluded(conn, puller):
                    return
        with self.store.write() as conn:
            image_queries.touch_pull_times(conn, repository.id, due, self.clock())

    def delete_manifest(self, repository: Repository, digest: str) -> None:
        Digest.parse(digest)
        with self.store.write() as conn:
            repository = self._lock(conn, repository)
            if not image_queries.manifest_exists(conn, repository.id, digest):
                raise ManifestUnknown("Requested image not found", detail={"digest": digest})
            parents = image_queries.parents_of(conn, repository.id, digest)
            if parents:
                raise ImageReferencedByManifestList(
                    f"The image {digest} is referenced by the manifest list {parents[0]}; delete that first",
                    detail={"digest": digest, "referencedBy": parents},
                )
            self._delete_image(conn, repository, digest, announce=True)

    def expire_image(
        self,
        repository: Repository,
        unit: Sequence[tuple[str, Sequence[str]]],
        record: Callable[[Connection, list[str]], None],
    ) -> list[str]:
        """Delete an image as BatchDeleteImage does (tags and all), with the images that go with it (its index's
        children, its referrers), in one transaction with ``record(conn, deleted)``. ``unit`` is (digest, tags)
        pairs, the image first, as the caller decided on them: an image whose tags changed since, or that an
        index still lists, is kept (and with the first, the whole unit). Returns the deleted digests."""
        deleted: list[str] = []
        with self.store.write() as conn:
            repository = self._lock(conn, repository)
            for digest, expected_tags in unit:
                if (
                    image_queries.manifest_exists(conn, repository.id, digest)
                    and sorted(image_queries.tags_of(conn, repository.id, digest)) == sorted(expected_tags)
                    and not image_queries.parents_of(conn, repository.id, digest)
                ):
                    self._delete_image(conn, repository, digest, announce=True)
                    deleted.append(digest)
                elif not deleted:
                    return []
            record(conn, deleted)
        return deleted

    def _delete_image(
        self, conn: Connection, repository: Repository, digest: str, *, announce: bool, untagged: str | None = None
    ) -> None:
        """Delete a manifest with the referrers that describe it only, in the caller's transaction: those the
        registry attached to it (a scan's SBOM, its signature) and signatures anyone pushed, which vouch for this
        image and nothing else (decision 0029). Other referrers a user pushed stay: the OCI spec lets a registry
        keep them, ECR leaves their deletion to their owner, and they stay listed (untagged) until then.
        ``announce``: the deletion is the caller's (the referrers that follow it go unannounced); ``untagged`` is
        the tag the caller removed just before."""
        lost: list[str] = []
        if announce:
            lost = [untagged] if untagged else sorted(image_queries.tags_of(conn, repository.id, digest))
        image_queries.delete_manifest(conn, repository.id, digest)
        if announce:
            now = self.clock()
            for deleted in self.on_image_deleted:
                deleted(conn, repository, digest, lost, now)
        for referrer in image_queries.attached_referrers(conn, repository.id, digest):
            if not image_queries.parents_of(conn, repository.id, referrer):
                # Content addressing rules out cycles: a subject exists before its referrers do.
                self._delete_image(conn, repository, referrer, announce=False)

    def delete_tag(self, repository: Repository, tag: str) -> None:
        check_tag(tag)
        with self.store.write() as conn:
            repository = self._lock(conn, repository)
            digest = image_queries.get_tag_digest(conn, repository.id, tag)
            if digest is None or not image_queries.delete_tag(conn, repository.id, tag):
                raise ManifestUnknown("Requested image not found", detail={"tag": tag})
            self._announce_untagged(conn, repository, digest, tag)

    def untag_or_delete_image(self, repository: Repository, tag: str) -> str:
        """ECR's BatchDeleteImage by tag: remove the tag, and the image with its last tag. Returns its digest."""
        with self.store.write() as conn:
            repository = self._lock(conn, repository)
            digest = image_queries.get_tag_digest(conn, repository.id, tag)
            if digest is None:
                raise ManifestUnknown("Requested image not found", detail={"tag": tag})
            image_queries.delete_tag(conn, repository.id, tag)
            if image_queries.tag_count(conn, repository.id, digest) == 0 and not image_queries.parents_of(
                conn, repository.id, digest
            ):
                self._delete_image(conn, repository, digest, announce=True, untagged=tag)
            else:
                self._announce_untagged(conn, repository, digest, tag)
        return digest

    def _announce_untagged(self, conn: Connection, repository: Repository, digest: str, tag: str) -> None:
        """A tag removed from an image that stays: ECR reports it as a DELETE of the image under that tag."""
        now = self.clock()
        for deleted in self.on_image_deleted:
            deleted(conn, repository, digest, [tag], now)

    # -- blobs ----------------------------------------------------------------------------------------------

    def blob_size(self, repository: Repository, digest: str) -> int:
        """The size of a blob the repository links and the blob store holds (no key needed, as
        BatchCheckLayerAvailability needs none)."""
        Digest.parse(digest)
        found = blob_queries.read_linked_blob(self.store, repository.id, digest)
        size = found[0] if found else None
        # A link whose bytes are not (or no longer) in the blob store names nothing that can be read.
        if size is None or not self._stored_lately(digest):
            raise BlobUnknown("blob unknown to registry", detail={"digest": digest})
        return size

    def _stored_lately(self, digest: str) -> bool:
        """Whether the blob store holds the blob, asked at most once per STORED_MEMORY_SECONDS for a blob found
        there. Only a loss behind the registry's back can make the answer wrong, and then for that long: the
        caller has found the blob's link first, and the garbage collector deletes only blobs nothing links
        (re-checked under the blob's row lock), so a linked blob's bytes are never deleted by the registry."""
        now = self.clock()
        seen = self._stored_at.get(digest)
        if seen is not None and 0 <= now - seen < STORED_MEMORY_SECONDS:
            return True
        if not self.blobs.blob_stored(digest):
            self._stored_at.pop(digest)
            return False
        self._stored_at.put(digest, now)
        return True

    def open_blob(self, repository: Repository, digest: str) -> BlobReader:
        """The plaintext of a blob the repository links: reading it needs the repository's key."""
        Digest.parse(digest)
        found = blob_queries.read_linked_blob(self.store, repository.id, digest)
        if found is None or found[1] is None or not self.blobs.blob_stored(digest):
            raise BlobUnknown("blob unknown to registry", detail={"digest": digest})
        return self.blobs.open_blob(digest, self.keys.unwrap(repository, found[1]), found[0])

    def mount_blob(self, target: Repository, source: Repository, digest: str) -> int | None:
        """Link a blob that ``source`` links into ``target``; None when ``source`` does not have it, or when
        the two repositories are encrypted differently (ECR mounts only between like-encrypted ones)."""
        Digest.parse(digest)
        if (source.encryption_type, source.kms_key) != (target.encryption_type, target.kms_key):
            return None
        with self.store.read() as conn:
            found = blob_queries.linked_blob(conn, source.id, digest)
        if found is None or found[1] is None:
            return None
        wrapped = self.keys.wrap(target, self.keys.unwrap(source, found[1]))
        with self.store.write() as conn:
            target = self._lock(conn, target)
            current_source = repo_queries.get_by_id(conn, source.id)
            if current_source is None or blob_queries.linked_blob(conn, source.id, digest) is None:
                return None  # deleted from the source meanwhile
            blob_queries.link_blob(conn, target.id, digest, self.clock(), wrapped)
        return found[0]

    def blob_data_key(self, repository: Repository, digest: str) -> bytes | None:
        """The data key that seals a blob the repository links (None when it links none): what another registry
        of the deployment wraps anew to link the same stored bytes (a replication's copy)."""
        with self.store.read() as conn:
            found = blob_queries.linked_blob(conn, repository.id, digest)
        if found is None or found[1] is None or not self.blobs.blob_stored(digest):
            return None
        return self.keys.unwrap(repository, found[1])

    def link_copied_blob(self, target: Repository, digest: str, data_key: bytes) -> None:
        """Link a blob already in the blob store into ``target`` under its data key wrapped by ``target``'s key:
        the bytes are stored once, a copy costs one wrapped key."""
        wrapped = self.keys.wrap(target, data_key)
        with self.store.write() as conn:
            target = self._lock(conn, target)
            blob_queries.link_blob(conn, target.id, digest, self.clock(), wrapped)

    def delete_blob(self, repository: Repository, digest: str) -> None:
        Digest.parse(digest)
        with self.store.write() as conn:
            repository = self._lock(conn, repository)
            if blob_queries.linked_blob(conn, repository.id, digest) is None:
                raise BlobUnknown("blob unknown to registry", detail={"digest": digest})
            if image_queries.blob_is_referenced(conn, repository.id, digest):
                raise UnsupportedOperation(
                    f"blob {digest} is referenced by a manifest in repository '{repository.name}'; delete the "
                    "manifest first",
                    detail={"digest": digest},
                )
            blob_queries.unlink_blob(conn, repository.id, digest)


def _references(manifest: Manifest) -> list[tuple[str, str]]:
    return [(d, "blob") for d in manifest.blob_digests()] + [(d.digest, "manifest") for d in manifest.manifests]


def _image_size(manifest: Manifest, payload_size: int) -> int:
    if manifest.media_type in mt.INDEXES:
        return sum(d.size for d in manifest.manifests)
    return sum(d.size for d in manifest.layers) + (manifest.config.size if manifest.config else 0)
