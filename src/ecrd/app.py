"""The composition root: builds the stores, services and doors from Settings, and nothing else does."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from ecrd.aws.context import AwsServices
from ecrd.aws.door import AwsDoor
from ecrd.config import Settings
from ecrd.metadata.generations import Generations
from ecrd.metadata.store import MetadataStore
from ecrd.observability import RequestLog, lean_log_records
from ecrd.oci.context import OciServices
from ecrd.oci.door import OciDoor
from ecrd.services.access import AccessService
from ecrd.services.audit import AuditTrail
from ecrd.services.authorization import PolicyAuthorizer
from ecrd.services.iam import IdentityServices, identity_services
from ecrd.services.identity import TokenAuthenticator
from ecrd.services.jobs import JobRunner
from ecrd.services.keys import DataKeys
from ecrd.services.kms import KeyService
from ecrd.services.registry import RegistryService
from ecrd.services.repository_settings import RepositorySettingsService
from ecrd.services.scanning import SCAN_JOB, ScanningService
from ecrd.services.secrets import SecretBox
from ecrd.services.tokens import RegistryTokens
from ecrd.services.uploads import UploadService
from ecrd.services.vulndb import VulnerabilityDatabase
from ecrd.storage.blob_store import EncryptedBlobStore
from ecrd.storage.filesystem import FilesystemDriver

log = logging.getLogger("ecrd")

UPLOAD_EXPIRY_INTERVAL_SECONDS = 600.0
JOB_POLL_SECONDS = 1.0
KEY_PURGE_INTERVAL_SECONDS = 3600.0

_T = TypeVar("_T")


@dataclass
class Registry:
    """Everything one server process holds: built once, shared by all requests."""

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
    # The one clock every service and both doors read wall time from (tests pass a fake one).
    clock: Callable[[], float] = time.time

    def close(self) -> None:
        self.store.dispose()


def build_registry(settings: Settings, *, clock: Callable[[], float] = time.time) -> Registry:
    # The server's user's alone: it holds the master key, the blobs and (on SQLite) the database.
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    store = MetadataStore(settings.resolved_database_url)
    store.migrate()
    generations = Generations(store)
    blobs = EncryptedBlobStore(FilesystemDriver(settings.data_dir, clock=clock))
    secret_box = SecretBox.load(
        data_dir=settings.data_dir, master_key=settings.master_key.reveal(), master_key_file=settings.master_key_file
    )
    identity = identity_services(
        store, account_id=settings.account_id, secret_box=secret_box, generations=generations, clock=clock
    )
    tokens = RegistryTokens(
        secret_box, identity.authentication, account_id=settings.account_id, region=settings.region, clock=clock
    )
    kms = KeyService(
        store,
        account_id=settings.account_id,
        region=settings.region,
        secret_box=secret_box,
        identity=identity.documents,
        clock=clock,
    )
    keys = DataKeys(
        secret_box, region=settings.region, account_id=settings.account_id, kms=kms, generations=generations
    )
    registry = RegistryService(
        store,
        keys,
        account_id=settings.account_id,
        create_on_push=settings.create_on_push,
        generations=generations,
        clock=clock,
        blobs=blobs,
    )
    uploads = UploadService(store, blobs, keys, clock=clock)
    vulndb = VulnerabilityDatabase(store, clock=clock)
    scanning = ScanningService(store, registry, uploads, vulndb, clock=clock)
    registry.on_manifest_created.append(scanning.queue_scan_on_push)
    jobs = JobRunner(store, {SCAN_JOB: scanning.run_scan_job}, clock=clock)
    settings_service = RepositorySettingsService(store, account_id=settings.account_id)
    identity.on_principal_deleted.append(settings_service.forget_principal)
    authorizer = PolicyAuthorizer(
        store, identity.documents, account_id=settings.account_id, generations=generations, clock=clock
    )
    access = AccessService(authorizer, settings.region, settings.account_id)
    oci = OciDoor(
        OciServices(registry, uploads, access, generations, inline_reads=store.is_sqlite),
        TokenAuthenticator(tokens),
        realm=settings.resolved_public_url,
    )
    aws = AwsDoor(
        AwsServices(
            settings=settings,
            registry=registry,
            uploads=uploads,
            access=access,
            identity=identity,
            tokens=tokens,
            settings_service=settings_service,
            kms=kms,
            scanning=scanning,
        ),
        clock=clock,
    )
    return Registry(
        settings,
        store,
        blobs,
        registry,
        uploads,
        access,
        identity,
        tokens,
        oci,
        aws,
        scanning,
        vulndb,
        jobs,
        AuditTrail(store),
        clock=clock,
    )


class Application:
    """The ASGI application: /v2/ goes to the OCI door, POST / to the AWS door, /healthz answers readiness."""

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
        else:
            await PlainTextResponse("not found", status_code=404)(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        housekeeping: list[asyncio.Task[None]] = []
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.work_jobs:
                    housekeeping.append(asyncio.create_task(self._work_jobs()))
                housekeeping.append(asyncio.create_task(self._expire_uploads_periodically()))
                housekeeping.append(asyncio.create_task(self._purge_deleted_keys_periodically()))
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

    async def _expire_uploads_periodically(self) -> None:
        """Abandoned upload sessions expire after ``upload_expiry_hours`` idle. Every process runs this;
        expiring is idempotent, so several processes doing it at once is harmless."""
        max_age = self.registry.settings.upload_expiry_hours * 3600.0
        while True:
            try:
                expired = await self._in_thread(self.registry.uploads.expire_uploads, max_age)
                if expired:
                    log.info("expired %d idle upload sessions", expired)
            except Exception:
                log.exception("expiring idle upload sessions failed; will retry")
            await asyncio.sleep(UPLOAD_EXPIRY_INTERVAL_SECONDS)

    async def _purge_deleted_keys_periodically(self) -> None:
        """KMS keys past their deletion date are unusable at once; this destroys their material. Every process
        runs it; purging is idempotent."""
        while True:
            try:
                purged = await self._in_thread(self.registry.aws.services.kms.purge_deleted_keys)
                if purged:
                    log.info("destroyed %d KMS keys past their deletion date", purged)
            except Exception:
                log.exception("destroying deleted KMS keys failed; will retry")
            await asyncio.sleep(KEY_PURGE_INTERVAL_SECONDS)


def asgi_app(registry: Registry, *, work_jobs: bool = False) -> ASGIApp:
    """The application as served: every request logged, writes and denials audited."""
    return RequestLog(Application(registry, work_jobs=work_jobs), registry.audit, clock=registry.clock)


def create_app(settings: Settings | None = None) -> ASGIApp:
    """Application factory; server workers call it with the settings the serve command resolved."""
    lean_log_records()
    return asgi_app(build_registry(settings or Settings.from_serialized_environment()), work_jobs=True)
