"""The registry's stored things as plain values: repositories, images, uploads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ecrd.domain.pull_policy import PullPolicy
from ecrd.domain.registries import RegistryId


@dataclass(frozen=True, slots=True)
class MutabilityExclusion:
    filter_type: str
    filter: str


@dataclass(frozen=True, slots=True)
class Repository:
    id: int
    # The account and region it lives in.
    registry: RegistryId
    name: str
    created_at: float
    image_tag_mutability: str
    mutability_exclusions: tuple[MutabilityExclusion, ...]
    scan_on_push: bool
    encryption_type: str
    kms_key: str | None
    # The data key sealing this repository's manifests, wrapped by the repository's key.
    manifest_key: bytes | None = None
    # What a pull through /v2/ must satisfy beyond authorization (decision 0030); None for most repositories.
    pull_policy: PullPolicy | None = None


@dataclass(frozen=True, slots=True)
class StoredManifest:
    repository_id: int
    digest: str
    media_type: str
    artifact_type: str | None
    subject_digest: str | None
    payload: bytes
    size: int
    image_size: int
    pushed_at: float
    last_pulled_at: float | None
    # ECR's imageStatus (ACTIVE, ARCHIVED, ACTIVATING) and the times of its last moves to and from the archive.
    image_status: str = "ACTIVE"
    last_archived_at: float | None = None
    last_activated_at: float | None = None


@dataclass(frozen=True, slots=True)
class Upload:
    id: str
    repository_id: int
    size: int
    created_at: float
    updated_at: float
    # The upload's data key, wrapped by the repository's key.
    wrapped_key: bytes


@dataclass(frozen=True, slots=True)
class ScanSummary:
    """What a listing shows of an image's scan (DescribeImages): its state and severity counts, not its findings,
    which may run to megabytes per image."""

    status: str
    description: str
    completed_at: float | None
    vulnerability_source_updated_at: float | None
    severity_counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class ScanRecord:
    status: str
    description: str
    started_at: float
    completed_at: float | None
    vulnerability_source_updated_at: float | None
    severity_counts: dict[str, int]
    findings: list[dict[str, Any]]
    sbom_digest: str | None
    # Enhanced scanning's observations of the image's findings, open and closed (``ecrd.scanner.enhanced``).
    enhanced_findings: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    time: float
    request_id: str
    principal: str
    action: str
    repository: str | None
    outcome: str  # "allowed" | "denied" | "failed"
    status: int
    error_code: str | None
    source_ip: str
    # The registry the request was answered in (the resource's account and region); None when none was known
    # (a request refused before its registry was found, the deployment's own work).
    registry: RegistryId | None = None
