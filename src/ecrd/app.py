"""The composition root: builds the stores, services and doors from Settings, and nothing else does."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio
from sqlalchemy import Connection, select
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from ecrd.aws.context import AwsServices
from ecrd.aws.door import AwsDoor
from ecrd.aws.upstream_ecr import UpstreamEcrLogin
from ecrd.config import Settings, multiprocess_metrics_dir
from ecrd.console import Console, ConsoleServices, is_console_path
from ecrd.domain.registries import RegistryId, registry_from_host
from ecrd.metadata import inventories as inventory_queries
from ecrd.metadata import replication_tables
from ecrd.metadata import repositories as repo_queries
from ecrd.metadata.generations import Generations
from ecrd.metadata.inventories import SCANNING_CONFIGURATION_KEY
from ecrd.metadata.store import MetadataStore
from ecrd.metrics import METRICS_PATH, MetricsEndpoint, RegistryMetrics
from ecrd.observability import RequestLog, lean_log_records
from ecrd.oci.context import OciServices
from ecrd.oci.door import OciDoor
from ecrd.services.access import AccessService
from ecrd.services.accounts import AccountService
from ecrd.services.archive import SETTLE_JOB, ArchiveAwareBlobStore, ArchiveService
from ecrd.services.audit import AuditTrail
from ecrd.services.authorization import PolicyAuthorizer
from ecrd.services.console_sessions import ConsoleSessions
from ecrd.services.creation_templates import CreationTemplateService
from ecrd.services.events import EventOutbox
from ecrd.services.gc import GarbageCollector
from ecrd.services.iam import IdentityServices, identity_services
from ecrd.services.iam.passwords import LoginProfileService
from ecrd.services.identity import RegistryAuthenticator, TokenAuthenticator
from ecrd.services.jobs import JobRunner
from ecrd.services.keys import DataKeys
from ecrd.services.kms import KeyService
from ecrd.services.lifecycle import PREVIEW_JOB, RUN_JOB, LifecycleService
from ecrd.services.local_replication import LocalRegistry, LocalReplication
from ecrd.services.peer_registry import PeerConnector
from ecrd.services.pull_policy import PullPolicyService
from ecrd.services.pull_through_cache import PullThroughCacheService
from ecrd.services.registry import RegistryService
from ecrd.services.registry_overview import RegistryOverview
from ecrd.services.rematch import FindingsRematch
from ecrd.services.replication import (
    BACKFILL_PREPARE_JOB,
    BACKFILL_RUN_JOB,
    DELETION_JOB,
    REPLICATE_JOB,
    ReplicationService,
)
from ecrd.services.repository_settings import RepositorySettingsService
from ecrd.services.scanning import SCAN_JOB, FindingsChange, ScanningService
from ecrd.services.secrets import SecretBox
from ecrd.services.secrets_manager import SecretsManagerService
from ecrd.services.signing import SIGN_JOB, SigningService
from ecrd.services.tokens import RegistryTokens
from ecrd.services.uploads import UploadService
from ecrd.services.upstream_registry import UpstreamConnector
from ecrd.services.usage import RegistryUsage
from ecrd.services.vulndb import REMATCH_JOB, VulnerabilityDatabase
from ecrd.services.webhooks import WebhookDispatcher, WebhookService
from ecrd.storage.blob_store import EncryptedBlobStore
from ecrd.storage.driver import BlobDriver
from ecrd.storage.filesystem import FilesystemDriver

log = logging.getLogger("ecrd")

UPLOAD_EXPIRY_INTERVAL_SECONDS = 600.0
JOB_POLL_SECONDS = 1.0
KEY_PURGE_INTERVAL_SECONDS = 3600.0
# How often each process asks whether the lifecycle policies are due to run.
LIFECYCLE_POLL_SECONDS = 60.0
# How often each process asks whether a scheduled garbage collection is due (one process of a cluster runs it).
GC_POLL_SECONDS = 60.0
# How soon each process looks again for events to deliver when none was due, and how often it prunes old ones.
EVENT_POLL_SECONDS = 1.0
EVENT_PRUNE_INTERVAL_SECONDS = 3600.0

_T = TypeVar("_T")
JobHandler = Callable[[dict[str, Any]], None]


@dataclass
class RegistryServices:
    """The services of one registry (an account in a region), built on its first use and kept: they answer for
    their account and region only, over the deployment's one metadata store and blob store."""

    registry_id: RegistryId
    identity: IdentityServices
    registry: RegistryService
    uploads: UploadService
    access: AccessService
    tokens: RegistryTokens
    scanning: ScanningService
    lifecycle: LifecycleService
    archive: ArchiveService
    replication: ReplicationService
    signing: SigningService
    templates: CreationTemplateService
    events: EventOutbox
    aws: AwsServices
    oci: OciServices
    authenticator: TokenAuthenticator


@dataclass
class Registry:
    """Everything one server process holds: built once, shared by all requests. The per-registry services
    (``registry``, ``aws``, ``scanning``…) here are the default registry's; ``registries`` has every other's."""

    settings: Settings
    store: MetadataStore
    blobs: EncryptedBlobStore
    registry: RegistryService
    uploads: UploadService
    access: AccessService
    identity: IdentityServices
    tokens: RegistryTokens
    oci: OciDoor
    aws: AwsDoor
    scanning: ScanningService
    vulndb: VulnerabilityDatabase
    jobs: JobRunner
    audit: AuditTrail
    gc: GarbageCollector
    lifecycle: LifecycleService
    # The archive storage class, and the store its blobs move to.
    archive: ArchiveService
    archive_blobs: EncryptedBlobStore
    metrics: RegistryMetrics
    metrics_endpoint: MetricsEndpoint
    replication: ReplicationService
    # Events written with their causes, and their delivery to the operator's webhooks.
    events: EventOutbox
    webhooks: WebhookService
    dispatcher: WebhookDispatcher
    registries: Registries
    # The web console at /console (None with --no-console).
    console: Console | None = None
    # The one clock every service and both doors read wall time from (tests pass a fake one).
    clock: Callable[[], float] = time.time

    def close(self) -> None:
        self.store.dispose()


def blob_driver(settings: Settings, *, clock: Callable[[], float] = time.time) -> BlobDriver:
    """Where blobs live: files under the data directory, or the object store of ``--storage-url s3://…``."""
    if not settings.storage_url:
        return FilesystemDriver(settings.data_dir, clock=clock)
    # Imported only for s3:// storage: the S3 client (botocore's, with its endpoints and S3 model) is megabytes
    # in every worker that a registry on the filesystem never uses.
    from ecrd.storage.s3 import S3Driver
    from ecrd.storage.s3_client import S3Options

    options = S3Options(
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region or settings.region,
        path_style=settings.s3_path_style,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=settings.s3_secret_access_key.reveal(),
    )
    return S3Driver.from_url(settings.storage_url, options)


@dataclass
class _Shared:
    """What every registry's services share: the stores, the master key, the one policy engine."""

    settings: Settings
    store: MetadataStore
    generations: Generations
    blobs: EncryptedBlobStore
    archive_blobs: EncryptedBlobStore
    secret_box: SecretBox
    vulndb: VulnerabilityDatabase
    authorizer: PolicyAuthorizer
    metrics: RegistryMetrics
    clock: Callable[[], float]


class Registries:
    """The registries of the deployment: each account it serves, in each region it serves, with its services
    made on first use (under a lock: two first requests at once build one set)."""

    def __init__(self, shared: _Shared, identity: IdentityServices) -> None:
        self._shared = shared
        self.settings = shared.settings
        self.store = shared.store
        self.accounts = AccountService(shared.store, secret_box=shared.secret_box, clock=shared.clock)
        self.default_id = shared.settings.default_registry
        self.regions = shared.settings.served_regions
        self._built: dict[RegistryId, RegistryServices] = {}
        self._identities: dict[str, IdentityServices] = {self.default_id.account_id: identity}
        self._lock = threading.Lock()
        # Accounts found in the accounts table (an account is never deleted, so a found one stays found).
        self._known_accounts: set[str] = {self.default_id.account_id}
        self.hooks: list[Callable[[RegistryServices], None]] = []

    def known(self, registry: RegistryId) -> bool:
        """Whether ``registry`` is served, as far as this process knows without asking the store."""
        return registry.region in self.regions and registry.account_id in self._known_accounts

    def serves(self, registry: RegistryId) -> bool:
        """Whether ``registry`` is one of this deployment's: an account it has, in a region it serves."""
        if registry.region not in self.regions:
            return False
        if registry.account_id not in self._known_accounts:
            if not self.accounts.exists(registry.account_id):
                return False
            self._known_accounts.add(registry.account_id)
        return True

    def get(self, registry: RegistryId) -> RegistryServices:
        """The services of a registry the caller knows to be served (``serves``)."""
        found = self._built.get(registry)
        if found is not None:
            return found
        with self._lock:
            found = self._built.get(registry)
            if found is None:
                first = all(built.account_id != registry.account_id for built in self._built)
                found = _registry_services(
                    self._shared,
                    registry,
                    self._identity(registry.account_id),
                    self.local_registry,
                    first_of_account=first,
                )
                for hook in self.hooks:
                    hook(found)
                self._built[registry] = found
            return found

    @property
    def default(self) -> RegistryServices:
        return self.get(self.default_id)

    def local_registry(self, registry: RegistryId) -> LocalRegistry | None:
        """A registry of this deployment as a replication's destination (None when it serves none such)."""
        if not self.serves(registry):
            return None
        services = self.get(registry)
        return LocalRegistry(services.registry, services.templates)

    def built(self) -> list[RegistryServices]:
        return list(self._built.values())

    def of_repository(self, repository_id: int) -> RegistryServices | None:
        """The services of the registry a repository (by id) lives in; None when it is gone."""
        with self._shared.store.read() as conn:
            repository = repo_queries.get_by_id(conn, repository_id)
        return None if repository is None else self.get(repository.registry)

    def identity(self, account_id: str) -> IdentityServices | None:
        """The IAM of an account the deployment has (IAM is global: no region); None for any other id."""
        if not self.serves(RegistryId(account_id, self.default_id.region)):
            return None
        with self._lock:
            return self._identity(account_id)

    def _identity(self, account_id: str) -> IdentityServices:
        identity = self._identities.get(account_id)
        if identity is None:
            shared = self._shared
            identity = identity_services(
                shared.store,
                account_id=account_id,
                secret_box=shared.secret_box,
                generations=shared.generations,
                clock=shared.clock,
            )
            self._identities[account_id] = identity
        return identity


def _registry_services(
    shared: _Shared,
    registry_id: RegistryId,
    identity: IdentityServices,
    local_registry: Callable[[RegistryId], LocalRegistry | None],
    *,
    first_of_account: bool,
) -> RegistryServices:
    """One registry's services, wired together; ``first_of_account``: the first of its account's to be built."""
    settings, store, clock, generations = shared.settings, shared.store, shared.clock, shared.generations
    account_id, region = registry_id.account_id, registry_id.region
    tokens = RegistryTokens(
        shared.secret_box, identity.authentication, account_id=account_id, region=region, clock=clock
    )
    kms = KeyService(
        store,
        account_id=account_id,
        region=region,
        secret_box=shared.secret_box,
        identity=identity.documents,
        clock=clock,
    )
    secrets_manager = SecretsManagerService(
        store, kms, account_id=account_id, region=region, identity=identity.documents, clock=clock
    )
    keys = DataKeys(shared.secret_box, region=region, account_id=account_id, kms=kms, generations=generations)
    registry = RegistryService(
        store, keys, account_id=account_id, region=region, generations=generations, clock=clock, blobs=shared.blobs
    )
    uploads = UploadService(store, shared.blobs, keys, clock=clock)
    scanning = ScanningService(store, registry, uploads, shared.vulndb, clock=clock, generations=generations)
    registry.on_manifest_created.append(scanning.queue_scan_on_push)
    archive_service = ArchiveService(store, shared.blobs, shared.archive_blobs, account_id=account_id, clock=clock)
    registry.on_manifest_created.append(archive_service.on_manifest_created)
    lifecycle = LifecycleService(store, registry, account_id=account_id, archiver=archive_service, clock=clock)
    local_replication = LocalReplication(registry, local_registry, shared.authorizer)
    replication = ReplicationService(
        store,
        registry,
        shared.secret_box,
        PeerConnector(ca_file=settings.upstream_ca_file, clock=clock),
        account_id=account_id,
        region=region,
        clock=clock,
        replicate_locally=local_replication,
        delete_locally=local_replication.delete,
    )
    signing = SigningService(
        store, registry, uploads, shared.secret_box, kms, account_id=account_id, region=region, clock=clock
    )
    registry.on_image_pushed.append(replication.on_image_pushed)
    registry.on_image_deleted.append(replication.on_image_deleted)
    registry.on_manifest_created.append(signing.queue_signing_on_push)
    metrics = shared.metrics
    scanning.on_scan_completed.append(metrics.scan_completed)
    replication.on_replicated.append(
        lambda _conn, _repository, _digest, _tag, _destination, status, _now: metrics.replication_ended(status)
    )
    events = EventOutbox(store, account_id=account_id, region=region, clock=clock)
    registry.on_image_pushed.append(events.image_pushed)
    registry.on_image_deleted.append(events.image_deleted)
    scanning.on_scan_stored.append(events.scan_stored)
    scanning.on_findings_changed.append(events.findings_changed)
    replication.on_replicated.append(events.image_replicated)
    settings_service = RepositorySettingsService(store, account_id=account_id, region=region)
    if first_of_account:
        # These rewrite the policies of every registry that names the principal: once per account is enough.
        identity.on_principal_deleted.append(settings_service.forget_principal)
        identity.on_principal_deleted.append(secrets_manager.forget_principal)
        identity.on_principal_deleted.append(kms.forget_principal)
    access = AccessService(shared.authorizer, region, account_id)
    templates = CreationTemplateService(
        store, registry, access, kms, identity.principals, account_id=account_id, region=region, clock=clock
    )
    registry.create_on_push = templates.create_on_push
    if first_of_account:
        identity.on_principal_deleted.append(templates.forget_principal)
    if settings.create_on_push:
        templates.install_create_on_push_root()
    pull_through = PullThroughCacheService(
        store,
        registry,
        uploads,
        access,
        templates,
        secrets_manager,
        UpstreamConnector(ca_file=settings.upstream_ca_file, insecure_hosts=settings.insecure_upstream_hosts),
        ecr_login=UpstreamEcrLogin(
            region=region,
            ca_file=settings.upstream_ca_file,
            insecure_hosts=settings.insecure_upstream_hosts,
            clock=clock,
        ),
        account_id=account_id,
        region=region,
        check_interval_seconds=settings.upstream_check_minutes * 60.0,
        clock=clock,
    )
    pull_through.on_image_imported.append(events.image_imported)
    pull_policy = PullPolicyService(store, signing, templates, account_id=account_id)
    scanning.fetch_missing_blob = pull_through.cache_blob
    oci = OciServices(
        registry,
        uploads,
        access,
        generations,
        inline_reads=store.is_sqlite,
        pull_through=pull_through,
        pull_policy=pull_policy,
    )
    aws = AwsServices(
        settings=settings,
        registry_id=registry_id,
        registry=registry,
        uploads=uploads,
        access=access,
        identity=identity,
        tokens=tokens,
        settings_service=settings_service,
        kms=kms,
        scanning=scanning,
        lifecycle=lifecycle,
        archive=archive_service,
        templates=templates,
        secrets_manager=secrets_manager,
        pull_through=pull_through,
        replication=replication,
        signing=signing,
        pull_policy=pull_policy,
        generations=generations,
        inline_reads=store.is_sqlite,
    )
    return RegistryServices(
        registry_id,
        identity,
        registry,
        uploads,
        access,
        tokens,
        scanning,
        lifecycle,
        archive_service,
        replication,
        signing,
        templates,
        events,
        aws,
        oci,
        TokenAuthenticator(tokens, generations),
    )


def build_registry(
    settings: Settings,
    *,
    clock: Callable[[], float] = time.time,
    migrate: bool = True,
    metrics_dir: Path | None = None,
) -> Registry:
    """The registry of ``settings``; ``migrate=False`` when the schema is known to be current (a server worker:
    its serve command migrated before starting it), which spares the worker loading the migrations.
    ``metrics_dir``: where the server's processes keep their metrics (none: this process's alone)."""
    # The server's user's alone: it holds the master key, the blobs and (on SQLite) the database.
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    store = MetadataStore(settings.resolved_database_url)
    if migrate:
        store.migrate(default_account_id=settings.account_id, default_region=settings.region)
    generations = Generations(store)
    # Blobs of archived images move to the archive location; reads and uploads find them there too.
    archive_blobs = EncryptedBlobStore(FilesystemDriver(settings.resolved_archive_dir, clock=clock))
    blobs = ArchiveAwareBlobStore(blob_driver(settings, clock=clock), archive_blobs)
    secret_box = SecretBox.load(
        data_dir=settings.data_dir, master_key=settings.master_key.reveal(), master_key_file=settings.master_key_file
    )
    AccountService(store, secret_box=secret_box, clock=clock).ensure(settings.account_id)
    # The default account's IAM; its authenticator and policy documents serve callers of every account.
    identity = identity_services(
        store, account_id=settings.account_id, secret_box=secret_box, generations=generations, clock=clock
    )
    vulndb = VulnerabilityDatabase(store, clock=clock)
    authorizer = PolicyAuthorizer(
        store, identity.documents, account_id=settings.account_id, generations=generations, clock=clock
    )
    job_kinds = (
        SCAN_JOB,
        REMATCH_JOB,
        RUN_JOB,
        PREVIEW_JOB,
        SETTLE_JOB,
        REPLICATE_JOB,
        DELETION_JOB,
        BACKFILL_PREPARE_JOB,
        BACKFILL_RUN_JOB,
        SIGN_JOB,
    )
    usage = RegistryUsage(store, clock=clock)
    metrics = RegistryMetrics(usage, job_kinds=job_kinds, multiprocess_dir=metrics_dir)
    shared = _Shared(settings, store, generations, blobs, archive_blobs, secret_box, vulndb, authorizer, metrics, clock)
    registries = Registries(shared, identity)
    default = registries.default
    jobs = JobRunner(store, metrics.counting_jobs(_job_handlers(registries, store, vulndb, clock)), clock=clock)
    webhooks = WebhookService(store, secret_box, clock=clock)
    dispatcher = WebhookDispatcher(
        store,
        webhooks,
        max_attempts=settings.webhook_max_attempts,
        timeout_seconds=settings.webhook_timeout_seconds,
        retention_seconds=settings.event_retention_hours * 3600.0,
        clock=clock,
    )
    dispatcher.on_attempt.append(metrics.webhook_attempted)
    oci = OciDoor(_OciRegistries(registries, settings.registry_domain), realm=settings.resolved_public_url)
    metrics_endpoint = MetricsEndpoint(metrics, default.authenticator, default.access, public=settings.metrics_public)
    aws = AwsDoor(_AwsRegistries(registries), clock=clock)
    audit = AuditTrail(store)
    gc = GarbageCollector(
        store,
        (blobs, archive_blobs),
        default.uploads,
        grace_seconds=settings.gc_grace_minutes * 60.0,
        upload_expiry_seconds=settings.upload_expiry_hours * 3600.0,
        audit=audit,
        clock=clock,
    )
    console = None
    if settings.console:

        def login_profiles(account_id: str) -> LoginProfileService | None:
            found = registries.identity(account_id)
            if found is None:
                # An account this deployment does not have has no users: its sign-in fails after the same
                # password check as an unknown user's, so the time it takes does not tell which accounts exist.
                return LoginProfileService(store, account_id=account_id, clock=clock)
            return found.login_profiles

        sessions = ConsoleSessions(
            store,
            identity.authentication,
            login_profiles,
            session_seconds=settings.console_session_minutes * 60.0,
            clock=clock,
        )
        console = Console(ConsoleServices(settings, aws, sessions, RegistryOverview(store, clock=clock), audit))
    return Registry(
        settings,
        store,
        blobs,
        default.registry,
        default.uploads,
        default.access,
        identity,
        default.tokens,
        oci,
        aws,
        default.scanning,
        vulndb,
        jobs,
        audit,
        gc,
        default.lifecycle,
        default.archive,
        archive_blobs,
        metrics,
        metrics_endpoint,
        default.replication,
        default.events,
        webhooks,
        dispatcher,
        registries,
        console=console,
        clock=clock,
    )


def _job_handlers(
    registries: Registries, store: MetadataStore, vulndb: VulnerabilityDatabase, clock: Callable[[], float]
) -> dict[str, JobHandler]:
    """The job queue is the deployment's: each job runs in the services of the registry its repository (or its
    backfill) lives in."""

    def of_repository(
        run: Callable[[RegistryServices], Callable[[dict[str, Any]], None]],
    ) -> Callable[[dict[str, Any]], None]:
        def handler(payload: dict[str, Any]) -> None:
            services = registries.of_repository(int(payload["repository_id"]))
            if services is not None:  # the repository is gone, and its job with it
                run(services)(payload)

        return handler

    def of_backfill(
        run: Callable[[RegistryServices], Callable[[dict[str, Any]], None]],
    ) -> Callable[[dict[str, Any]], None]:
        def handler(payload: dict[str, Any]) -> None:
            registry = _backfill_registry(store, str(payload["id"]))
            if registry is not None:
                run(registries.get(registry))(payload)

        return handler

    return {
        SCAN_JOB: of_repository(lambda services: services.scanning.run_scan_job),
        REMATCH_JOB: FindingsRematch(store, AllRegistriesScanning(registries), vulndb, clock=clock).run_job,
        RUN_JOB: of_repository(lambda services: services.lifecycle.run_job),
        PREVIEW_JOB: of_repository(lambda services: services.lifecycle.run_preview_job),
        SETTLE_JOB: of_repository(lambda services: services.archive.run_job),
        REPLICATE_JOB: of_repository(lambda services: services.replication.run_job),
        DELETION_JOB: of_repository(lambda services: services.replication.run_deletion_job),
        BACKFILL_PREPARE_JOB: of_backfill(lambda services: services.replication.run_backfill_prepare),
        BACKFILL_RUN_JOB: of_backfill(lambda services: services.replication.run_backfill_batch),
        SIGN_JOB: of_repository(lambda services: services.signing.run_signing_job),
    }


class _AwsRegistries:
    """The registries as the AWS door finds them (ecrd.aws.context.AwsRegistries)."""

    def __init__(self, registries: Registries) -> None:
        self._registries = registries
        self.regions = registries.regions

    @property
    def default(self) -> AwsServices:
        return self._registries.default.aws

    def serves(self, registry: RegistryId) -> bool:
        return self._registries.serves(registry)

    def aws(self, registry: RegistryId) -> AwsServices:
        return self._registries.get(registry).aws


class _OciRegistries:
    """The registries as the /v2/ door finds them (ecrd.oci.context.OciRegistries): by host name."""

    def __init__(self, registries: Registries, domain: str) -> None:
        self._registries = registries
        self._domain = domain
        self._default = registries.default_id

    def registry_of_host(self, host: str) -> RegistryId | None:
        return self._of_host(host, self._registries.serves)

    def known_registry_of_host(self, host: str) -> RegistryId | None:
        return self._of_host(host, self._registries.known)

    def _of_host(self, host: str, served: Callable[[RegistryId], bool]) -> RegistryId | None:
        named = registry_from_host(host, self._domain) if self._domain else None
        if named is None:
            return self._default
        return named if served(named) else None

    def oci(self, registry: RegistryId) -> tuple[OciServices, RegistryAuthenticator]:
        services = self._registries.get(registry)
        return services.oci, services.authenticator


def _backfill_registry(store: MetadataStore, backfill_id: str) -> RegistryId | None:
    """The registry whose images a replication backfill copies (None once it is gone)."""
    table = replication_tables.replication_backfills
    with store.read() as conn:
        row = conn.execute(select(table.c.account_id, table.c.source_region).where(table.c.id == backfill_id)).first()
    return None if row is None else RegistryId(row.account_id, row.source_region)


class AllRegistriesScanning:
    """The scanning of every registry, as the advisory re-match (a job of the whole deployment) sees it: the
    repositories under a continuous rule in any registry, and each change reported to its own registry's
    hooks (its events name its account and region)."""

    def __init__(self, registries: Registries) -> None:
        self.registries = registries
        self._owners: dict[int, RegistryServices] = {}
        self.on_findings_changed: list[Callable[[Connection, FindingsChange, float], None]] = [self._changed]

    def continuous_repositories(self) -> dict[int, str]:
        found: dict[int, str] = {}
        owners: dict[int, RegistryServices] = {}
        with self.registries.store.read() as conn:
            configured = repo_queries.registry_setting_values(conn, SCANNING_CONFIGURATION_KEY)
        for registry, text in configured.items():
            if not inventory_queries.continuous(text) or not self.registries.serves(registry):
                continue
            services = self.registries.get(registry)
            for repository_id, name in services.scanning.continuous_repositories().items():
                found[repository_id] = name
                owners[repository_id] = services
        self._owners = owners
        return found

    def registry_of(self, repository_id: int) -> RegistryId | None:
        services = self._owners.get(repository_id)
        return None if services is None else services.registry_id

    def _changed(self, conn: Connection, change: FindingsChange, now: float) -> None:
        services = self._owners.get(change.repository_id)
        if services is not None:
            for hook in services.scanning.on_findings_changed:
                hook(conn, change, now)


class Application:
    """The ASGI application: /v2/ goes to the OCI door, POST / to the AWS door, /console to the web console,
    /healthz answers readiness."""

    def __init__(self, registry: Registry, *, work_jobs: bool = False) -> None:
        self.registry = registry
        # A served process works the job queue; in-process tests run jobs themselves (``registry.jobs``).
        self.work_jobs = work_jobs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path == "/v2" or path.startswith("/v2/"):
            await self.registry.oci(scope, receive, send)
        elif path == "/":
            try:
                response = await self.registry.aws.handle(Request(scope, receive))
            except ClientDisconnect:
                return
            await response(scope, receive, send)
        elif path == "/healthz":
            await JSONResponse({"status": "ok"})(scope, receive, send)
        elif path == METRICS_PATH:
            await self.registry.metrics_endpoint(scope, receive, send)
        elif self.registry.console is not None and is_console_path(path):
            await self.registry.console(scope, receive, send)
        else:
            await PlainTextResponse("not found", status_code=404)(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        housekeeping: list[asyncio.Task[None]] = []
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.work_jobs:
                    housekeeping.append(asyncio.create_task(self._work_jobs()))
                    housekeeping.append(asyncio.create_task(self._deliver_events()))
                housekeeping.append(asyncio.create_task(self._expire_uploads_periodically()))
                housekeeping.append(asyncio.create_task(self._purge_deleted_keys_periodically()))
                if self.registry.settings.gc_interval_minutes:
                    housekeeping.append(asyncio.create_task(self._collect_garbage_periodically()))
                if self.work_jobs and self.registry.settings.lifecycle_interval_minutes:
                    housekeeping.append(asyncio.create_task(self._schedule_lifecycle_runs()))
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in housekeeping:
                    task.cancel()
                # Each task ends once the thread it started has returned (``_in_thread``): disposing the engine
                # before then would strand that thread's connection outside any pool, open.
                await asyncio.gather(*housekeeping, return_exceptions=True)
                self.registry.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    @staticmethod
    async def _in_thread(func: Callable[..., _T], *args: object) -> _T:
        """``func`` in a worker thread, run to its end even when this task is cancelled, which then ends only
        after it: a thread cannot be interrupted, and cancellation alone would leave it running unseen."""
        work = asyncio.ensure_future(anyio.to_thread.run_sync(func, *args))
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            await asyncio.wait([work])
            if not work.cancelled():
                work.exception()  # seen here: shutting down, the task ends cancelled whatever the work's outcome
            raise

    async def _work_jobs(self) -> None:
        """Every server process works the job queue (scans); with nothing ready it looks again shortly."""
        while True:
            try:
                ran = await self._in_thread(self.registry.jobs.run_once)
            except Exception:
                log.exception("the job runner failed; will retry")
                ran = False
            if not ran:
                await asyncio.sleep(JOB_POLL_SECONDS)

    async def _deliver_events(self) -> None:
        """Every server process delivers events to the webhooks (each delivery claimed by one of them), and now
        and then forgets events past their retention."""
        dispatcher = self.registry.dispatcher
        pruned_at: float | None = None
        while True:
            tried = 0
            try:
                now = self.registry.clock()
                if pruned_at is None or now - pruned_at >= EVENT_PRUNE_INTERVAL_SECONDS:
                    pruned_at = now
                    await self._in_thread(dispatcher.prune)
                tried = await self._in_thread(dispatcher.run_once)
            except Exception:
                log.exception("delivering events failed; will retry")
            if not tried:
                await asyncio.sleep(EVENT_POLL_SECONDS)

    async def _expire_uploads_periodically(self) -> None:
        """Abandoned upload sessions expire after ``upload_expiry_hours`` idle. Every process runs this;
        expiring is idempotent, so several processes doing it at once is harmless."""
        max_age = self.registry.settings.upload_expiry_hours * 3600.0
        while True:
            try:
                expired = await self._in_thread(self.registry.uploads.expire_uploads, max_age)
                if expired:
                    log.info("expired %d idle upload sessions", expired)
                # Puts that a killed process left unfinished (an object store's multipart uploads) are as
                # abandoned as the sessions once they are as old.
                swept = await self._in_thread(
                    self.registry.blobs.sweep_incomplete_writes, self.registry.clock() - max_age
                )
                if swept:
                    log.info("discarded %d unfinished writes of the blob store", swept)
            except Exception:
                log.exception("expiring idle upload sessions failed; will retry")
            await asyncio.sleep(UPLOAD_EXPIRY_INTERVAL_SECONDS)

    async def _purge_deleted_keys_periodically(self) -> None:
        """KMS keys and secrets past their deletion date are gone at once for every reader; this destroys their
        rows (key material, secret versions), and rotates the material of KMS keys whose automatic rotation is
        due. Every process runs it; purging is idempotent, and each due rotation is made by one process."""
        while True:
            try:
                rotated = await self._in_thread(self.registry.aws.services.kms.rotate_due_keys)
                if rotated:
                    log.info("rotated the material of %d KMS keys", rotated)
                purged = await self._in_thread(self.registry.aws.services.kms.purge_deleted_keys)
                if purged:
                    log.info("destroyed %d KMS keys past their deletion date", purged)
                purged = await self._in_thread(self.registry.aws.services.secrets_manager.purge_deleted_secrets)
                if purged:
                    log.info("destroyed %d secrets past their deletion date", purged)
            except Exception:
                log.exception("rotating or destroying KMS keys, or destroying secrets, failed; will retry")
            await asyncio.sleep(KEY_PURGE_INTERVAL_SECONDS)

    async def _collect_garbage_periodically(self) -> None:
        """Every ``gc_interval_minutes`` one process of those sharing the database collects garbage: each asks
        now and then, and the one that moves the schedule on runs it."""
        interval = self.registry.settings.gc_interval_minutes * 60.0
        while True:
            try:
                report = await self._in_thread(self.registry.gc.collect_if_due, interval)
            except Exception:
                self.registry.metrics.gc_failed()
                log.exception("garbage collection failed; will retry")
            else:
                if report is not None:
                    self.registry.metrics.gc_collected(report.blobs, report.bytes)
            await asyncio.sleep(min(GC_POLL_SECONDS, interval))

    async def _schedule_lifecycle_runs(self) -> None:
        """Every ``lifecycle_interval_minutes`` one process of those sharing the database queues a run of each
        repository's lifecycle policy (the schedule's row decides which); any process's job runner works them."""
        interval = self.registry.settings.lifecycle_interval_minutes * 60.0
        while True:
            try:
                await self._in_thread(self.registry.lifecycle.schedule_runs, self.registry.jobs.worker_id, interval)
            except Exception:
                log.exception("scheduling lifecycle policy runs failed; will retry")
            await asyncio.sleep(min(LIFECYCLE_POLL_SECONDS, interval))


def asgi_app(registry: Registry, *, work_jobs: bool = False) -> ASGIApp:
    """The application as served: every request logged, writes and denials audited."""
    return RequestLog(
        Application(registry, work_jobs=work_jobs), registry.audit, clock=registry.clock, observer=registry.metrics
    )


def create_app(settings: Settings | None = None) -> ASGIApp:
    """Application factory; server workers call it with the settings the serve command resolved."""
    lean_log_records()
    # The serve command migrated the database before it started any worker.
    # Under the serve command the workers share one metrics directory, which it named in the environment.
    registry = build_registry(
        settings or Settings.from_serialized_environment(), migrate=False, metrics_dir=multiprocess_metrics_dir()
    )
    return asgi_app(registry, work_jobs=True)
