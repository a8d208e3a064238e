"""Replication: the registry's replication configuration, the peers that serve its destinations, and the pushes
that carry each image there.

A push (a new image, or a tag moved onto one) that a rule covers is recorded IN_PROGRESS for each destination
and queued as one job per destination in the push's own transaction, so a replication survives a crash or a
restart and is never queued for a push that did not commit. The job pushes the image to the destination over the
OCI protocol — blobs the destination lacks, children of an index, then the manifest by digest and by tag — so
running it again does nothing the destination has not already got: replication is idempotent. A destination that
cannot be reached is tried again with a growing delay, MAX_ATTEMPTS times in all; a refusal (access, the image)
fails at once.

What ECR replicates: pushes; and, where a rule enables ``deleteReplication``, image deletions and tag removals
(one ``replicate_deletion`` job per destination, queued in the deletion's transaction: the image deleted there
when it is gone from the source, else the removed tags, the image staying). Images the pull-through cache
imported and the SBOMs the registry attaches to its scans are not replicated: the destination makes its own.

A backfill replicates the images that existed before the configuration to one destination: a job lists them
(one result per image and tag), then jobs of BACKFILL_BATCH replications run them, a stop taking effect between
batches.

A destination is either local — an account this deployment serves itself, in any region (but not the source
registry: ECR refuses a registry replicating to itself) — or served by a peer: another ecrd deployment,
configured with its URL and an access key (``ecrd replication-peer add``). A configuration naming a destination
that is neither is refused. Copying into (and deleting in) a local destination is ``replicate_locally``'s
(``ecrd.services.local_replication``).

Each service instance is one registry's (an account in a region): its configuration and backfills are that
registry's; the peers are the deployment's.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection

from ecrd.domain.manifests import Manifest, parse_manifest
from ecrd.domain.records import Repository
from ecrd.domain.registries import RegistryId
from ecrd.domain.replication import (
    COMPLETE,
    DESTINATION_NOT_CONFIGURED,
    DESTINATION_UNREACHABLE,
    FAILED,
    Backfill,
    BackfillResult,
    Destination,
    ReplicationConfiguration,
    ReplicationState,
    check_not_source,
    stored_configuration,
)
from ecrd.errors import (
    BlobUnknown,
    InvalidParameter,
    LimitExceeded,
    NotFound,
    PeerFailure,
    ReplicationBackfillInProgress,
    ReplicationBackfillInvalidStatus,
    ReplicationBackfillNotFound,
)
from ecrd.metadata import accounts as account_queries
from ecrd.metadata import jobs as job_queries
from ecrd.metadata import replication as replication_queries
from ecrd.metadata import repositories as repo_queries
from ecrd.metadata.replication import StoredPeer
from ecrd.metadata.store import MetadataStore
from ecrd.services.peer_registry import PeerConnector, PeerRegistry
from ecrd.services.registry import RegistryService
from ecrd.services.secrets import SecretBox

log = logging.getLogger("ecrd.replication")

REPLICATE_JOB: Final = "replicate_image"
DELETION_JOB: Final = "replicate_deletion"
BACKFILL_PREPARE_JOB: Final = "replication_backfill_prepare"
BACKFILL_RUN_JOB: Final = "replication_backfill_run"
# ECR: "a registry can have at most 10 replication backfills in progress at once", one per destination region.
MAX_BACKFILLS_IN_PROGRESS: Final = 10
BACKFILL_ACTIVE: Final = ("PREPARING", "IN_PROGRESS", "STOPPING")
# Replications a backfill job runs before it queues the next batch (so a stop is seen between batches).
BACKFILL_BATCH: Final = 25
# ECR: a backfill fails once half or more of its replications failed, judged after at least 100.
BACKFILL_FAILURE_FLOOR: Final = 100
CONFIGURATION_KEY: Final = "replication_configuration"
MAX_ATTEMPTS: Final = 6
# The delay before attempt n+1 is FIRST_RETRY_SECONDS · 2^(n-1): 30 s, 1, 2, 4, 8 min — about a quarter of an
# hour for a destination to come back before the replication is FAILED.
FIRST_RETRY_SECONDS: Final = 30.0
SOURCE_IMAGE_DELETED: Final = "SOURCE_IMAGE_DELETED"
SOURCE_BLOB_MISSING: Final = "SOURCE_BLOB_MISSING"
# A destination served by this deployment itself, which replication cannot copy into yet.
LOCAL_DESTINATION_UNSUPPORTED: Final = "LOCAL_DESTINATION_UNSUPPORTED"
_SECRET_CONTEXT: Final = "replication-peer-secret"


# Copies one image (and tag, if any) of the source registry into a destination this deployment serves: None when
# it is there, else the failure code the replication is FAILED with.
LocalReplicator = Callable[[Repository, str, str | None, Destination], str | None]


def refuse_local_replication(repository: Repository, digest: str, tag: str | None, destination: Destination) -> str:
    """The local replicator until registries of one deployment can copy into each other: every replication to a
    local destination fails, saying why."""
    log.warning(
        "replication of %s@%s to %s: a destination served by this deployment cannot be replicated to yet",
        repository.name,
        digest,
        destination,
    )
    return LOCAL_DESTINATION_UNSUPPORTED


# Deletes images (by digest) or removes tags in the same-named repository of a destination this deployment serves:
# None when done, else the failure code.
LocalDeleter = Callable[[Repository, list[str], Destination], str | None]


def refuse_local_deletion(repository: Repository, references: list[str], destination: Destination) -> str:
    """The local deleter of a service built without one (a test's): nothing is deleted, saying why."""
    return LOCAL_DESTINATION_UNSUPPORTED


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
        replicate_locally: LocalReplicator = refuse_local_replication,
        delete_locally: LocalDeleter = refuse_local_deletion,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.registry = registry
        self.secret_box = secret_box
        self.connector = connector
        self.account_id = account_id
        self.region = region
        # The source registry: the configuration and backfills read and written are its own.
        self.registry_id = RegistryId(account_id, region)
        self.replicate_locally = replicate_locally
        self.delete_locally = delete_locally
        self.clock = clock
        # Called in the transaction that records a replication's end (the event outbox writes its event there).
        self.on_replicated: list[
            Callable[[Connection, Repository, str, str | None, Destination, str, float], None]
        ] = []

    # -- the configuration -------------------------------------------------------------------------------

    def configuration(self) -> ReplicationConfiguration:
        with self.store.read() as conn:
            return stored_configuration(repo_queries.get_registry_setting(conn, self.registry_id, CONFIGURATION_KEY))

    def put_configuration(self, configuration: ReplicationConfiguration) -> None:
        check_not_source(configuration, region=self.region, registry_id=self.account_id)
        with self.store.write() as conn:
            for destination in configuration.all_destinations():
                if not self._is_local(conn, destination) and replication_queries.get_peer(conn, destination) is None:
                    raise InvalidParameter(
                        "Invalid parameter at 'replicationConfiguration' failed to satisfy constraint: 'No registry "
                        f"{destination.registry_id} in {destination.region} is served here: the account is not one "
                        "of this deployment's, and a destination elsewhere must be configured as a replication "
                        "peer (ecrd replication-peer add)'"
                    )
            repo_queries.set_registry_setting(conn, self.registry_id, CONFIGURATION_KEY, configuration.text())

    @staticmethod
    def _is_local(conn: Connection, destination: Destination) -> bool:
        """Whether this deployment serves the destination itself: its account is one of ours (every account is
        served in every region)."""
        return account_queries.get_account(conn, destination.registry_id) is not None

    # -- peers -------------------------------------------------------------------------------------------

    def put_peer(self, destination: Destination, url: str, access_key_id: str, secret_access_key: str) -> None:
        sealed = self.secret_box.seal(secret_access_key, context=_SECRET_CONTEXT)
        with self.store.write() as conn:
            if self._is_local(conn, destination):
                # Replication to an account of this deployment is local: a peer for it would never be asked.
                raise InvalidParameter(
                    f"The account {destination.registry_id} is served by this deployment: replication to it needs "
                    "no peer"
                )
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
        self, conn: Connection, repository: Repository, digest: str, tag: str | None, manifest: Manifest, now: float
    ) -> None:
        """The registry's hook on every push that made an image or moved a tag, in the push's transaction."""
        text = repo_queries.get_registry_setting(conn, self.registry_id, CONFIGURATION_KEY)
        if text is None:
            return
        for destination in stored_configuration(text).destinations_for(repository.name):
            replication_queries.start(conn, repository.id, digest, destination, now)
            job_queries.enqueue(conn, REPLICATE_JOB, _payload(repository.id, digest, tag, destination), now)

    def on_image_deleted(
        self, conn: Connection, repository: Repository, digest: str, tags: Sequence[str], now: float
    ) -> None:
        """The registry's hook on a deletion of an image or removal of tags, in its transaction: queued for the
        destinations of the rules that replicate deletions."""
        text = repo_queries.get_registry_setting(conn, self.registry_id, CONFIGURATION_KEY)
        if text is None:
            return
        for destination in stored_configuration(text).deletion_destinations_for(repository.name):
            payload = {**_payload(repository.id, digest, None, destination), "tags": list(tags)}
            job_queries.enqueue(conn, DELETION_JOB, payload, now)

    def run_deletion_job(self, payload: dict[str, Any]) -> None:
        """Carry one deletion to one destination: the image, when the source no longer has it; else the tags the
        source removed from it. A destination that cannot be reached is tried again, as a replication is."""
        destination = Destination(payload["region"], payload["registry_id"])
        repository_id, digest, tags = int(payload["repository_id"]), str(payload["digest"]), list(payload["tags"])
        with self.store.read() as conn:
            repository = repo_queries.get_by_id(conn, repository_id)
            local = self._is_local(conn, destination)
        if repository is None:
            return  # a deleted repository's replicas stay, as in ECR
        gone = self.registry.resolve(repository, digest=digest, tag=None) is None
        references = [digest] if gone else tags
        if local:
            code = self.delete_locally(repository, references, destination)
        else:
            code = self._delete_at_peer(repository, references, destination)
        attempts = int(payload.get("attempt", 1))
        if code == DESTINATION_UNREACHABLE and attempts < MAX_ATTEMPTS:
            with self.store.write() as conn:
                job_queries.enqueue(
                    conn,
                    DELETION_JOB,
                    {**payload, "attempt": attempts + 1},
                    self.clock(),
                    run_after=self.clock() + FIRST_RETRY_SECONDS * 2 ** (attempts - 1),
                )
        elif code is not None:
            log.warning(
                "replicating the deletion of %s@%s to %s failed: %s", repository.name, digest, destination, code
            )

    def _delete_at_peer(self, repository: Repository, references: list[str], destination: Destination) -> str | None:
        peer = self._peer_registry(destination)
        if peer is None:
            return DESTINATION_NOT_CONFIGURED
        try:
            for reference in references:
                peer.delete_manifest(repository.name, reference)
        except PeerFailure as exc:
            return exc.failure_code
        return None

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
        code = self._replicate(repository, digest, tag, destination)
        if code == DESTINATION_UNREACHABLE and attempts < MAX_ATTEMPTS:
            delay = FIRST_RETRY_SECONDS * 2 ** (attempts - 1)
            log.warning(
                "replication of %s to %s: unreachable; attempt %d in %.0f s", digest, destination, attempts + 1, delay
            )
            with self.store.write() as conn:
                job_queries.enqueue(conn, REPLICATE_JOB, payload, self.clock(), run_after=self.clock() + delay)
            return
        self._finish(repository, digest, tag, destination, code)

    def _replicate(self, repository: Repository, digest: str, tag: str | None, destination: Destination) -> str | None:
        """Push one image (and tag) to the destination; None when it is there, else the failure code."""
        with self.store.read() as conn:
            local = self._is_local(conn, destination)
        if local:
            return self.replicate_locally(repository, digest, tag, destination)
        peer = self._peer_registry(destination)
        if peer is None:
            return DESTINATION_NOT_CONFIGURED
        try:
            self._push(peer, repository, digest, tag)
        except PeerFailure as exc:
            log.warning("replication of %s to %s: %s", digest, destination, exc)
            return exc.failure_code
        except _SourceGone as gone:
            return gone.code
        return None

    def _finish(
        self, repository: Repository, digest: str, tag: str | None, destination: Destination, code: str | None
    ) -> None:
        """Record a replication's end (COMPLETE, or FAILED with ``code``), and tell ``on_replicated`` in the same
        transaction."""
        status = COMPLETE if code is None else FAILED
        with self.store.write() as conn:
            now = self.clock()
            replication_queries.finish(conn, repository.id, digest, destination, status, code, now)
            for replicated in self.on_replicated:
                replicated(conn, repository, digest, tag, destination, status, now)

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

    # -- backfills ----------------------------------------------------------------------------------------

    def start_backfill(self, destination: Destination) -> Backfill:
        """StartReplicationBackfill: the images that match the configuration's rules for ``destination`` now,
        replicated there by jobs (PREPARING while they are listed, then IN_PROGRESS)."""
        if destination not in self.configuration().all_destinations():
            raise InvalidParameter(
                "Invalid parameter at 'destination' failed to satisfy constraint: 'The destination "
                f"{destination.registry_id} in {destination.region} is not in the registry's replication "
                "configuration'"
            )
        now = self.clock()
        backfill = Backfill(str(uuid.uuid4()), destination, "PREPARING", None, 0, 0, 0, now, None)
        with self.store.write() as conn:
            # Serialized on the configuration's row, so two starts at once cannot both pass the checks below.
            repo_queries.set_registry_setting(conn, self.registry_id, CONFIGURATION_KEY, self._configuration_text(conn))
            active = replication_queries.backfills_in(conn, self.registry_id, BACKFILL_ACTIVE)
            if any(b.destination.region == destination.region for b in active):
                raise ReplicationBackfillInProgress(
                    f"A replication backfill to region {destination.region} is already in progress."
                )
            if len(active) >= MAX_BACKFILLS_IN_PROGRESS:
                raise LimitExceeded(
                    f"The registry already has {MAX_BACKFILLS_IN_PROGRESS} replication backfills in progress."
                )
            replication_queries.insert_backfill(conn, self.registry_id, backfill)
            job_queries.enqueue(conn, BACKFILL_PREPARE_JOB, {"id": backfill.id}, now)
        return backfill

    def _configuration_text(self, conn: Connection) -> str:
        return stored_configuration(repo_queries.get_registry_setting(conn, self.registry_id, CONFIGURATION_KEY)).text()

    def stop_backfill(self, backfill_id: str) -> Backfill:
        with self.store.write() as conn:
            backfill = self._backfill(conn, backfill_id, for_update=True)
            if backfill.status not in ("PREPARING", "IN_PROGRESS"):
                raise ReplicationBackfillInvalidStatus(
                    f"The replication backfill {backfill_id} is {backfill.status}: only a backfill that is "
                    "PREPARING or IN_PROGRESS can be stopped."
                )
            replication_queries.set_backfill(conn, backfill_id, status="STOPPING")
            return self._backfill(conn, backfill_id)

    def backfills(self, *, after: tuple[float, str] | None, limit: int) -> list[Backfill]:
        with self.store.read() as conn:
            return replication_queries.backfill_page(conn, self.registry_id, after=after, limit=limit)

    def backfill(self, backfill_id: str) -> tuple[Backfill, list[str]]:
        """A backfill and the distinct failure codes of its replications."""
        with self.store.read() as conn:
            return self._backfill(conn, backfill_id), replication_queries.failure_codes(conn, backfill_id)

    def backfill_results(
        self, backfill_id: str, *, status: str | None, after: int | None, limit: int
    ) -> list[BackfillResult]:
        with self.store.read() as conn:
            self._backfill(conn, backfill_id)
            return replication_queries.result_page(conn, backfill_id, status=status, after=after, limit=limit)

    def _backfill(self, conn: Connection, backfill_id: str, *, for_update: bool = False) -> Backfill:
        found = replication_queries.get_backfill(conn, self.registry_id, backfill_id, for_update=for_update)
        if found is None:
            raise ReplicationBackfillNotFound(f"The replication backfill with ID '{backfill_id}' does not exist.")
        return found

    def run_backfill_prepare(self, payload: dict[str, Any]) -> None:
        """List what the backfill replicates: every image and tag of the repositories that the configuration's
        rules naming its destination cover."""
        backfill_id = str(payload["id"])
        with self.store.read() as conn:
            backfill = replication_queries.get_backfill(conn, self.registry_id, backfill_id)
        if backfill is None or self._stopped_if_stopping(backfill):
            return
        rules = [r for r in self.configuration().rules if backfill.destination in r.destinations]
        names: dict[int, str] = {}
        after: str | None = None
        while True:
            page = self.registry.list_repositories(after=after, limit=1000)
            names.update({r.id: r.name for r in page if any(rule.covers(r.name) for rule in rules)})
            if len(page) < 1000:
                break
            after = page[-1].name
        with self.store.write() as conn:
            ids = list(names)
            total = 0
            for start in range(0, len(ids), 500):
                found = replication_queries.candidate_images(conn, ids[start : start + 500])
                rows = [(repository_id, names[repository_id], digest, tag) for repository_id, digest, tag in found]
                replication_queries.add_backfill_results(conn, backfill_id, total, rows)
                total += len(rows)
            replication_queries.set_backfill(conn, backfill_id, status="IN_PROGRESS", total=total)
            job_queries.enqueue(conn, BACKFILL_RUN_JOB, {"id": backfill_id}, self.clock())

    def run_backfill_batch(self, payload: dict[str, Any]) -> None:
        """Replicate the next batch of a backfill's images; queue the next batch, or end the backfill."""
        backfill_id = str(payload["id"])
        with self.store.read() as conn:
            backfill = replication_queries.get_backfill(conn, self.registry_id, backfill_id)
            pending = replication_queries.pending_results(conn, backfill_id, BACKFILL_BATCH)
        if backfill is None or self._stopped_if_stopping(backfill):
            return
        completed, failed = backfill.completed, backfill.failed
        for result in pending:
            code = self._backfill_one(result, backfill.destination)
            completed, failed = (completed + 1, failed) if code is None else (completed, failed + 1)
            with self.store.write() as conn:
                replication_queries.finish_result(
                    conn, backfill_id, result.number, COMPLETE if code is None else FAILED, code
                )
                replication_queries.set_backfill(conn, backfill_id, completed=completed, failed=failed)
        processed = completed + failed
        failing = processed >= BACKFILL_FAILURE_FLOOR and failed * 2 >= processed
        with self.store.write() as conn:
            if failing:
                replication_queries.set_backfill(
                    conn, backfill_id, status=FAILED, failure_code="REPLICATION_FAILURE_RATE", ended_at=self.clock()
                )
            elif len(pending) < BACKFILL_BATCH:
                replication_queries.set_backfill(conn, backfill_id, status=COMPLETE, ended_at=self.clock())
            else:
                job_queries.enqueue(conn, BACKFILL_RUN_JOB, {"id": backfill_id}, self.clock())

    def _backfill_one(self, result: BackfillResult, destination: Destination) -> str | None:
        with self.store.write() as conn:
            repository = repo_queries.get_by_id(conn, result.repository_id)
            if repository is None:
                return SOURCE_IMAGE_DELETED
            replication_queries.start(conn, repository.id, result.digest, destination, self.clock())
            replication_queries.record_attempt(conn, repository.id, result.digest, destination, self.clock())
        code = self._replicate(repository, result.digest, result.tag, destination)
        self._finish(repository, result.digest, result.tag, destination, code)
        return code

    def _stopped_if_stopping(self, backfill: Backfill) -> bool:
        if backfill.status == "STOPPING":
            with self.store.write() as conn:
                replication_queries.set_backfill(conn, backfill.id, status="STOPPED", ended_at=self.clock())
            return True
        return backfill.status not in ("PREPARING", "IN_PROGRESS")


def registry_of_replication_job(conn: Connection, kind: str, payload: dict[str, Any]) -> RegistryId | None:
    """The source registry whose service runs a replication job of ``kind`` (None once what it names is gone):
    the replicated image's repository's registry, or the backfill's. Jobs queued before registries had accounts
    and regions are routed the same way, their rows having moved to the default registry."""
    if kind == REPLICATE_JOB:
        repository = repo_queries.get_by_id(conn, int(payload["repository_id"]))
        return repository.registry if repository is not None else None
    if kind in (BACKFILL_PREPARE_JOB, BACKFILL_RUN_JOB):
        return replication_queries.backfill_source(conn, str(payload["id"]))
    raise ValueError(f"not a replication job: {kind}")


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
