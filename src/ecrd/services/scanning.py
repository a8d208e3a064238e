"""Image scanning: scan-on-push and manual scans run as jobs, findings stored in ECR's basic-scan shape, and an
SBOM attached to the image as an OCI referrer.

A push that should be scanned queues its scan in the same transaction that stores the manifest, so a crash
can lose neither; the job runs in the background on any process (``JobRunner``), never slowing the push.

A scan against an empty advisory database could find nothing, so it must not read as a clean bill of health.
It keeps basic scanning's ``COMPLETE`` status (ECR's basic scans use only IN_PROGRESS, COMPLETE, FAILED and
UNSUPPORTED_IMAGE, and ``aws ecr wait image-scan-complete`` waits for COMPLETE; FINDINGS_UNAVAILABLE would leave
that waiter polling until it gives up, hiding the reason) with a status description that says what happened,
and no ``vulnerabilitySourceUpdatedAt``. Such a scan does not count against the once-a-day quota, nor does one
whose advisory data a later import has superseded: repeating those is the only way to get a true answer.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

from sqlalchemy import Connection

from ecrd.domain import media_types as mt
from ecrd.domain.digests import Digest
from ecrd.domain.manifests import Manifest, parse_manifest
from ecrd.domain.records import Repository, ScanRecord, ScanSummary
from ecrd.domain.registries import RegistryId
from ecrd.domain.wildcards import wildcard_matches
from ecrd.errors import BlobUnknown, EcrdError, LimitExceeded, ScanNotFound
from ecrd.metadata import inventories as inventory_queries
from ecrd.metadata import jobs as job_queries
from ecrd.metadata import repositories as repo_queries
from ecrd.metadata import vulndb as vulndb_queries
from ecrd.metadata.generations import GenerationCache, Generations
from ecrd.metadata.inventories import SCANNING_CONFIGURATION_KEY
from ecrd.metadata.store import MetadataStore
from ecrd.services.referrers import attach_artifact
from ecrd.services.registry import RegistryService
from ecrd.services.uploads import UploadService
from ecrd.services.vulndb import REMATCH_JOB, AdvisorySnapshot, VulnerabilityDatabase

log = logging.getLogger("ecrd.scanning")

SCAN_JOB = "scan-image"
# ECR: "A basic image scan can only be started once per 24 hours on an individual image", push scans included.
SCAN_QUOTA_SECONDS = 24 * 3600.0
SBOM_ARTIFACT_TYPE = "application/vnd.cyclonedx+json"
IMAGE_CONFIG_TYPES = frozenset(
    {"application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"}
)
DEFAULT_CONFIGURATION: dict[str, Any] = {"scanType": "BASIC", "rules": []}
CONTINUOUS_SCAN = "CONTINUOUS_SCAN"
ENHANCED = "ENHANCED"
# How enhanced scanning (Amazon Inspector) reports a scanned image: ACTIVE while it is monitored, PENDING before
# its first scan; FAILED and UNSUPPORTED_IMAGE as basic scanning does.
ENHANCED_STATUSES = {"COMPLETE": "ACTIVE", "IN_PROGRESS": "PENDING"}
ENHANCED_DESCRIPTIONS = {
    CONTINUOUS_SCAN: "Continuous scan is selected for image.",
    "SCAN_ON_PUSH": "Scan on push is selected for image.",
    "MANUAL": "Manual scan is selected for image.",
}
PENDING_DESCRIPTION = "The image is queued for its first scan."
# Repositories read per query when finding those a continuous rule covers.
REPOSITORY_PAGE = 1000
COMPLETED_DESCRIPTION = "The scan was completed successfully."
EMPTY_DATABASE_DESCRIPTION = (
    "The vulnerability database is empty: no advisories have been imported, so this scan "
    "could find no vulnerabilities. Run `ecrd vulndb import` with OSV data, then scan the "
    "image again."
)


@dataclass(frozen=True, slots=True)
class FindingsChange:
    """An image whose findings a re-match changed: the names of the findings it opened and closed."""

    repository: str
    repository_id: int
    digest: str
    opened: tuple[str, ...]
    closed: tuple[str, ...]
    severity_counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class RepositoryScanning:
    """BatchGetRepositoryScanningConfiguration's view of one repository."""

    scan_on_push: bool
    scan_frequency: str
    applied_filters: list[dict[str, str]]


class ScanningService:
    def __init__(
        self,
        store: MetadataStore,
        registry: RegistryService,
        uploads: UploadService,
        vulndb: VulnerabilityDatabase,
        *,
        clock: Callable[[], float] = time.time,
        generations: Generations | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.uploads = uploads
        self.vulndb = vulndb
        self.clock = clock
        # The registry's configuration, read once per access generation (a change of registry_settings moves
        # it), so listings can show each image's status as its scan type has it without a query per page.
        self._configuration: GenerationCache[None, str | None] = GenerationCache(generations, capacity=1)
        # Called with the status of every scan stored (COMPLETE, FAILED, …), after its transaction: the
        # metrics count outcomes here without the service knowing of them.
        self.on_scan_completed: list[Callable[[str], None]] = []
        # Called inside the transaction that stores a scan's outcome (repository, digest, status, severity
        # counts, time): the event outbox writes its "ECR Image Scan" event there.
        self.on_scan_stored: list[Callable[[Connection, Repository, str, str, dict[str, int], float], None]] = []
        # Called inside the transaction that changed an image's findings without a scan (a re-match against new
        # advisories, ``ecrd.services.rematch``), with its time: the event outbox writes its event there.
        self.on_findings_changed: list[Callable[[Connection, FindingsChange, float], None]] = []
        # Stores a layer a repository lacks but can fetch (the pull-through cache's); None: a missing layer fails.
        self.fetch_missing_blob: Callable[[Repository, str], None] | None = None

    # -- configuration -----------------------------------------------------------------------------------

    def registry_configuration(self) -> dict[str, Any]:
        text = self._configuration.get(None, self._read_configuration)
        return json.loads(text) if text else dict(DEFAULT_CONFIGURATION)

    def _read_configuration(self) -> str | None:
        with self.store.read() as conn:
            return repo_queries.get_registry_setting(conn, self.registry.registry_id, SCANNING_CONFIGURATION_KEY)

    def reported_status(self, repository: Repository, status: str, description: str) -> tuple[str, str]:
        """A stored scan's ``imageScanStatus`` as the registry's scan type reports it: unchanged under BASIC;
        under ENHANCED, ACTIVE (with the repository's scan frequency) once scanned and PENDING before. A scan
        against an empty advisory database keeps its description, which says so."""
        configuration = self.registry_configuration()
        if configuration.get("scanType") != ENHANCED or status not in ENHANCED_STATUSES:
            return status, description
        if status == "IN_PROGRESS":
            return ENHANCED_STATUSES[status], PENDING_DESCRIPTION
        if description == EMPTY_DATABASE_DESCRIPTION:
            return ENHANCED_STATUSES[status], description
        frequency = self.repository_scanning(repository, configuration).scan_frequency
        return ENHANCED_STATUSES[status], ENHANCED_DESCRIPTIONS[frequency]

    def enhanced(self) -> bool:
        return self.registry_configuration().get("scanType") == ENHANCED

    def put_registry_configuration(self, scan_type: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
        configuration = {"scanType": scan_type, "rules": rules}
        with self.store.write() as conn:
            repo_queries.set_registry_setting(
                conn, self.registry.registry_id, SCANNING_CONFIGURATION_KEY, json.dumps(configuration)
            )
            if inventory_queries.continuous_scanning_configured(conn):
                # Images newly under a continuous rule are matched against the advisories of now.
                job_queries.enqueue(conn, REMATCH_JOB, {"after": None}, self.clock())
        return configuration

    def repository_scanning(
        self, repository: Repository, configuration: dict[str, Any] | None = None
    ) -> RepositoryScanning:
        configuration = configuration or self.registry_configuration()
        for rule in configuration.get("rules", []):
            filters = [f for f in rule.get("repositoryFilters", []) if wildcard_matches(f["filter"], repository.name)]
            if filters:
                frequency = rule["scanFrequency"]
                return RepositoryScanning(
                    frequency in ("SCAN_ON_PUSH", "CONTINUOUS_SCAN") or repository.scan_on_push, frequency, filters
                )
        # No registry rule matches: the repository's own (deprecated, still honoured) scanOnPush decides.
        if repository.scan_on_push:
            return RepositoryScanning(True, "SCAN_ON_PUSH", [])
        return RepositoryScanning(False, "MANUAL", [])

    def registry_of(self, repository_id: int) -> RegistryId | None:
        """The registry of every repository this service answers for: its own."""
        return self.registry.registry_id

    def continuous_repositories(self) -> dict[int, str]:
        """id → name of every repository an ENHANCED configuration's CONTINUOUS_SCAN rule covers (the first
        rule whose filter matches decides, as for scan on push); none under BASIC scanning."""
        configuration = self.registry_configuration()
        rules = configuration.get("rules", [])
        if configuration.get("scanType") != "ENHANCED" or not any(
            rule.get("scanFrequency") == CONTINUOUS_SCAN for rule in rules
        ):
            return {}
        found: dict[int, str] = {}
        after: str | None = None
        with self.store.read() as conn:
            while True:
                page = repo_queries.list_repositories(
                    conn, self.registry.registry_id, names=None, after=after, limit=REPOSITORY_PAGE
                )
                for repository in page:
                    if self.repository_scanning(repository, configuration).scan_frequency == CONTINUOUS_SCAN:
                        found[repository.id] = repository.name
                if len(page) < REPOSITORY_PAGE:
                    return found
                after = page[-1].name

    # -- queueing ----------------------------------------------------------------------------------------

    def queue_scan_on_push(
        self, conn: Connection, repository: Repository, digest: str, manifest: Manifest, now: float
    ) -> None:
        """The registry's hook on every new manifest: queue a scan when this repository scans on push."""
        if manifest.is_index or manifest.subject is not None:
            return  # indexes are scanned through their images; referrers (signatures, SBOMs) are not images
        text = repo_queries.get_registry_setting(conn, self.registry.registry_id, SCANNING_CONFIGURATION_KEY)
        configuration = json.loads(text) if text else DEFAULT_CONFIGURATION
        if self.repository_scanning(repository, configuration).scan_on_push:
            self._queue(conn, repository, digest, now)

    def _queue(self, conn: Connection, repository: Repository, digest: str, now: float) -> None:
        job_queries.start_scan(conn, repository.id, digest, now)
        job_queries.enqueue(conn, SCAN_JOB, {"repository_id": repository.id, "digest": digest}, now)

    def start_image_scan(self, repository: Repository, digest: str) -> None:
        """StartImageScan: at most one basic scan per image per 24 hours."""
        now = self.clock()
        with self.store.write() as conn:
            previous = job_queries.get_scan(conn, repository.id, digest)
            if (
                previous is not None
                and now - previous.started_at < SCAN_QUOTA_SECONDS
                and not _superseded(conn, previous)
            ):
                raise LimitExceeded("The scan quota per image has been exceeded. Wait and try again.")
            self._queue(conn, repository, digest, now)

    # -- results -----------------------------------------------------------------------------------------

    def scan_record(self, repository: Repository, digest: str) -> ScanRecord:
        with self.store.read() as conn:
            found = job_queries.get_scan(conn, repository.id, digest)
        if found is None:
            raise ScanNotFound(
                f"Image scan does not exist for the image with '{{imageDigest:'{digest}'}}' in the repository "
                f"with name '{repository.name}' in the registry with id '{self.registry.account_id}'"
            )
        return found

    def scan_summaries(self, repository: Repository, digests: list[str]) -> dict[str, ScanSummary]:
        """The scan state and severity counts of a batch of images (a listing's page), without their findings."""
        with self.store.read() as conn:
            return job_queries.scan_summaries_of(conn, repository.id, digests)

    def sbom(self, repository: Repository, digest: str) -> dict[str, Any]:
        """The SBOM the last scan attached to the image."""
        record = self.scan_record(repository, digest)
        if record.sbom_digest is None:
            raise ScanNotFound(f"No SBOM has been produced for image {digest} in repository '{repository.name}'")
        manifest = self.registry.get_manifest(repository, record.sbom_digest, record_pull=False)
        layer = parse_manifest(manifest.payload, manifest.media_type).layers[0]
        with self._open_layer(repository, layer.digest)() as fh:
            document: dict[str, Any] = json.loads(fh.read())
        return document

    # -- the job -----------------------------------------------------------------------------------------

    def run_scan_job(self, payload: dict[str, Any]) -> None:
        # The scanner and its libraries load with the first scan, not in every server process at start (~5 MB).
        from ecrd.scanner.enhanced import inventory_document, observe
        from ecrd.scanner.scan import build_sbom, finding_to_ecr

        repository_id, digest = int(payload["repository_id"]), str(payload["digest"])
        with self.store.read() as conn:
            repository = repo_queries.get_by_id(conn, repository_id)
        if repository is None:
            return  # the repository was deleted meanwhile: nothing to scan, nowhere to report
        # One generation for the whole scan: an import finishing mid-scan is seen by the next one.
        advisories = self.vulndb.snapshot()
        try:
            status, description, result = self._scan(repository, digest, advisories)
        except EcrdError as exc:
            status, description, result = "FAILED", exc.message, None
        counts: dict[str, int] = {}
        findings: list[dict[str, Any]] = []
        sbom_digest = None
        if result is not None:
            counts = result.severity_counts
            findings = [finding_to_ecr(f) for f in result.findings]
            sbom_digest = self._attach_sbom(
                repository, digest, build_sbom(result, image_digest=digest, image_name=repository.name)
            )
        with self.store.write() as conn:
            now = self.clock()
            enhanced: list[dict[str, Any]] = []
            if result is not None:
                # The inventory is kept for continuous scanning, and the findings observed against the previous
                # scan's, so an enhanced finding keeps its first observation across scans.
                previous = job_queries.get_scan(conn, repository.id, digest)
                enhanced = observe(
                    previous.enhanced_findings if previous else [], result.findings, result.os, result.packages, now
                )
                inventory = json.dumps(inventory_document(result.os, result.packages), separators=(",", ":"))
                inventory_queries.store_inventory(conn, repository.id, digest, inventory, advisories.generation)
            job_queries.complete_scan(
                conn,
                repository.id,
                digest,
                status=status,
                description=description,
                now=now,
                source_updated_at=advisories.newest_modified,
                severity_counts=counts,
                findings=findings,
                sbom_digest=sbom_digest,
                enhanced_findings=enhanced,
            )
            for stored in self.on_scan_stored:
                stored(conn, repository, digest, status, counts, now)
        log.info("scanned %s@%s: %s, %d findings", repository.name, digest, status, len(findings))
        for hook in self.on_scan_completed:
            hook(status)

    def _scan(self, repository: Repository, digest: str, advisories: AdvisorySnapshot) -> tuple[str, str, Any]:
        try:
            stored = self.registry.get_manifest(repository, digest, record_pull=False)
        except EcrdError:
            return "FAILED", "The image no longer exists in the repository.", None
        from ecrd.scanner.scan import scan_layers

        manifest = parse_manifest(stored.payload, stored.media_type)
        if manifest.config is None or manifest.config.media_type not in IMAGE_CONFIG_TYPES:
            return "UNSUPPORTED_IMAGE", "UnsupportedImageError: the artifact is not a container image.", None
        result = scan_layers([self._open_layer(repository, layer.digest) for layer in manifest.layers], advisories)
        if result.unsupported_reason is not None:
            return "UNSUPPORTED_IMAGE", result.unsupported_reason, None
        return "COMPLETE", EMPTY_DATABASE_DESCRIPTION if advisories.empty else COMPLETED_DESCRIPTION, result

    def _open_layer(self, repository: Repository, digest: str) -> Callable[[], BinaryIO]:
        def opener() -> BinaryIO:
            try:
                return self.registry.open_blob(repository, digest).open()
            except BlobUnknown:
                if self.fetch_missing_blob is None:
                    raise
            # An image the pull-through cache imported holds only the layers pulled so far: the rest are fetched.
            self.fetch_missing_blob(repository, digest)
            return self.registry.open_blob(repository, digest).open()

        return opener

    def _attach_sbom(self, repository: Repository, subject_digest: str, document: dict[str, Any]) -> str:
        """Store the SBOM as an OCI artifact whose subject is the image, so the referrers API lists it."""
        subject = self.registry.get_manifest(repository, subject_digest, record_pull=False)
        sbom_bytes = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
        empty = b"{}"
        manifest = {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "artifactType": SBOM_ARTIFACT_TYPE,
            "config": {"mediaType": mt.OCI_EMPTY_CONFIG, "digest": str(Digest.of(empty)), "size": len(empty)},
            "layers": [
                {"mediaType": SBOM_ARTIFACT_TYPE, "digest": str(Digest.of(sbom_bytes)), "size": len(sbom_bytes)}
            ],
            "subject": {"mediaType": subject.media_type, "digest": subject_digest, "size": subject.size},
            "annotations": {
                "org.opencontainers.image.created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock())),
                "dev.ecrd.sbom.generator": "ecrd scanner",
            },
        }
        payload = json.dumps(manifest, separators=(",", ":")).encode()
        return attach_artifact(self.registry, self.uploads, repository, [empty, sbom_bytes], payload)


def _superseded(conn: Connection, scan: ScanRecord) -> bool:
    """Whether a finished scan's answer is out of date by what it was matched against: it ran against an empty
    advisory database (no source time), or advisories newer than its source time have been imported since."""
    if scan.status != "COMPLETE":
        return False  # in progress (a repeat would queue a duplicate), failed or unsupported: the quota holds
    if scan.vulnerability_source_updated_at is None:
        return True
    newest = vulndb_queries.newest_modified(conn)
    return newest is not None and newest > scan.vulnerability_source_updated_at
