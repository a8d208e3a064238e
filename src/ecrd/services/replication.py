"""Replication: the registry's replication configuration, the peers that serve its destinations, and the pushes
that carry each image there.

A push (a new image, or a tag moved onto one) that a rule covers is recorded IN_PROGRESS for each destination
and queued as one job per destination in the push's own transaction, so a replication survives a crash or a
restart and is never queued for a push that did not commit. The job pushes the image to the destination over the
OCI protocol — blobs the destination lacks, children of an index, then the manifest by digest and by tag — so
running it again does nothing the destination has not already got: replication is idempotent. A destination that
cannot be reached is tried again with a growing delay, MAX_ATTEMPTS times in all; a refusal (access, the image)
fails at once.

What ECR replicates: pushes. A delete replicates only where a rule sets ``deleteReplication`` (newer ECR);
ecrd keeps that setting and does not carry deletes yet. Images the pull-through cache imported and the SBOMs
the registry attaches to its scans are not replicated: the destination makes its own.

Destinations are served by peers — other ecrd deployments, each configured with its URL and an access key
(``ecrd replication-peer add``). Regions and accounts of this deployment other than its own are not served
yet, so a configuration naming one is refused, saying so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection

from ecrd.domain.manifests import Manifest, parse_manifest
from ecrd.domain.records import Repository
from ecrd.domain.replication import (
    COMPLETE,
    DESTINATION_NOT_CONFIGURED,
    DESTINATION_UNREACHABLE,
    FAILED,
    Destination,
    ReplicationConfiguration,
    check_not_source,
    stored_configuration,
)
from ecrd.errors import BlobUnknown, InvalidParameter, NotFound, PeerFailure
from ecrd.metadata import jobs as job_queries
from ecrd.metadata import replication as replication_queries
from ecrd.metadata import repositories as repo_queries
from ecrd.metadata.replication import ReplicationState, StoredPeer
from ecrd.metadata.store import MetadataStore
from ecrd.services.peer_registry import PeerConnector, PeerRegistry
from ecrd.services.registry import RegistryService
from ecrd.services.secrets import SecretBox

log = logging.getLogger("ecrd.replication")

REPLICATE_JOB: Final = "replicate_image"
CONFIGURATION_KEY: Final = "replication_configuration"
MAX_ATTEMPTS: Final = 6
# The delay before attempt n+1 is FIRST_RETRY_SECONDS · 2^(n-1): 30 s, 1, 2, 4, 8 min — about a quarter of an
# hour for a destination to come back before the replication is FAILED.
FIRST_RETRY_SECONDS: Final = 30.0
SOURCE_IMAGE_DELETED: Final = "SOURCE_IMAGE_DELETED"
SOURCE_BLOB_MISSING: Final = "SOURCE_BLOB_MISSING"
_SECRET_CONTEXT: Final = "replication-peer-secret"


@dataclass(frozen=True, slots=True)
class Peer:
    destination: Destination
    url: str
    access_key_id: str
    created_at: float


class ReplicationService:
    def __init__(
        self,
        store: MetadataStore,
        registry: RegistryService,
        secret_box: SecretBox,
        connector: PeerConnector,
        *,
        account_id: str,
        region: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.registry = registry
        self.secret_box = secret_box
        self.connector = connector
        self.account_id = account_id
        self.region = region
        self.clock = clock

    # -- the configuration -------------------------------------------------------------------------------

    def configuration(self) -> ReplicationConfiguration:
        with self.store.read() as conn:
            return stored_configuration(repo_queries.get_registry_setting(conn, CONFIGURATION_KEY))

    def put_configuration(self, configuration: ReplicationConfiguration) -> None:
        check_not_source(configuration, region=self.region, registry_id=self.account_id)
        with self.store.write() as conn:
            for destination in configuration.all_destinations():
                if replication_queries.get_peer(conn, destination) is None:
                    raise InvalidParameter(
                        "Invalid parameter at 'replicationConfiguration' failed to satisfy constraint: 'No registry "
                        f"{destination.registry_id} in {destination.region} is served here: this deployment serves "
                        f"{self.account_id} in {self.region}, and a destination elsewhere must be configured as a "
                        "replication peer (ecrd replication-peer add)'"
                    )
            repo_queries.set_registry_setting(conn, CONFIGURATION_KEY, configuration.text())

    # -- peers -------------------------------------------------------------------------------------------

    def put_peer(self, destination: Destination, url: str, access_key_id: str, secret_access_key: str) -> None:
        sealed = self.secret_box.seal(secret_access_key, context=_SECRET_CONTEXT)
        with self.store.write() as conn:
            replication_queries.put_peer(
                conn, StoredPeer(destination, url.rstrip("/"), access_key_id, sealed, self.clock())
            )

    def peers(self) -> list[Peer]:
        with self.store.read() as conn:
            stored = replication_queries.list_peers(conn)
        return [Peer(p.destination, p.url, p.access_key_id, p.created_at) for p in stored]

    def delete_peer(self, destination: Destination) -> None:
        with self.store.write() as conn:
            if not replication_queries.delete_peer(conn, destination):
                raise NotFound(f"no replication peer serves {destination.registry_id} in {destination.region}")

    def _peer_registry(self, destination: Destination) -> PeerRegistry | None:
        with self.store.read() as conn:
            stored = replication_queries.get_peer(conn, destination)
        if stored is None:
            return None
        secret = self.secret_box.open(stored.sealed_secret, context=_SECRET_CONTEXT)
        return self.connector.registry(
            stored.url, access_key_id=stored.access_key_id, secret_access_key=secret, region=destination.region
        )

    # -- pushes ------------------------------------------------------------------------------------------

    def on_image_pushed(
        self, conn: Connection, repository: Repository, digest: str, manifest: Manifest, tag: str | None, now: float
    ) -> None:
        """The registry's hook on every push that made an image or moved a tag, in the push's transaction."""
        text = repo_queries.get_registry_setting(conn, CONFIGURATION_KEY)
        if text is None:
            return
        for destination in stored_configuration(text).destinations_for(repository.name):
            replication_queries.start(conn, repository.id, digest, destination, now)
            job_queries.enqueue(conn, REPLICATE_JOB, _payload(repository.id, digest, tag, destination), now)

    def statuses(self, repository: Repository, digest: str) -> list[ReplicationState]:
        with self.store.read() as conn:
            return replication_queries.states(conn, repository.id, digest)

    def run_job(self, payload: dict[str, Any]) -> None:
        """Replicate one image to one destination: the job queue's handler."""
        destination = Destination(payload["region"], payload["registry_id"])
        repository_id, digest, tag = int(payload["repository_id"]), str(payload["digest"]), payload.get("tag")
        with self.store.write() as conn:
            repository = repo_queries.get_by_id(conn, repository_id)
            if repository is None:
                return  # deleted since, and its statuses with it
            attempts = replication_queries.record_attempt(conn, repository_id, digest, destination, self.clock())
        peer = self._peer_registry(destination)
        if peer is None:
            self._finish(repository_id, digest, destination, FAILED, DESTINATION_NOT_CONFIGURED)
            return
        try:
            self._push(peer, repository, digest, tag)
        except PeerFailure as exc:
            if exc.failure_code == DESTINATION_UNREACHABLE and attempts < MAX_ATTEMPTS:
                delay = FIRST_RETRY_SECONDS * 2 ** (attempts - 1)
                log.warning(
                    "replication of %s to %s: %s; attempt %d in %.0f s", digest, destination, exc, attempts + 1, delay
                )
                with self.store.write() as conn:
                    job_queries.enqueue(conn, REPLICATE_JOB, payload, self.clock(), run_after=self.clock() + delay)
                return
            log.warning("replication of %s to %s failed: %s", digest, destination, exc)
            self._finish(repository_id, digest, destination, FAILED, exc.failure_code)
            return
        except _SourceGone as gone:
            self._finish(repository_id, digest, destination, FAILED, gone.code)
            return
        self._finish(repository_id, digest, destination, COMPLETE, None)

    def _finish(self, repository_id: int, digest: str, destination: Destination, status: str, code: str | None) -> None:
        with self.store.write() as conn:
            replication_queries.finish(conn, repository_id, digest, destination, status, code, self.clock())

    def _push(self, peer: PeerRegistry, repository: Repository, digest: str, tag: str | None) -> None:
        peer.ensure_repository(repository.name)
        payload, media_type = self._push_manifest(peer, repository, digest)
        if tag is not None:
            peer.put_manifest(repository.name, tag, payload, media_type)

    def _push_manifest(self, peer: PeerRegistry, repository: Repository, digest: str) -> tuple[bytes, str]:
        """Push one manifest by digest after what it references; its payload and media type."""
        stored = self.registry.resolve(repository, digest=digest, tag=None)
        if stored is None:
            raise _SourceGone(SOURCE_IMAGE_DELETED)
        payload = self.registry.open_manifest(repository, stored).payload
        manifest = parse_manifest(payload, stored.media_type)
        for child in manifest.manifests:
            self._push_manifest(peer, repository, child.digest)
        for blob in manifest.blob_digests():
            if peer.blob_exists(repository.name, blob):
                continue
            try:
                reader = self.registry.open_blob(repository, blob)
            except BlobUnknown:
                raise _SourceGone(SOURCE_BLOB_MISSING) from None
            peer.push_blob(repository.name, blob, reader.size, reader.chunks())
        peer.put_manifest(repository.name, digest, payload, stored.media_type)
        return payload, stored.media_type


class _SourceGone(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _payload(repository_id: int, digest: str, tag: str | None, destination: Destination) -> dict[str, Any]:
    return {
        "repository_id": repository_id,
        "digest": digest,
        "tag": tag,
        "region": destination.region,
        "registry_id": destination.registry_id,
    }
