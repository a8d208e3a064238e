"""Registry events in the shape of ECR's EventBridge events, the webhook filters that select them, the retry
schedule of their delivery and the signature a receiver verifies (pure: the clock and the randomness passed in).

Shapes: "Amazon ECR events and EventBridge" and "EventBridge events sent for enhanced scanning" in the ECR user
guide (sample events for image push and delete, image scan, pull through cache and replication actions)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ecrd.domain.arns import repository_arn
from ecrd.domain.wildcards import wildcard_matches

SOURCE = "aws.ecr"
IMAGE_ACTION = "ECR Image Action"
IMAGE_SCAN = "ECR Image Scan"
PULL_THROUGH_CACHE_ACTION = "ECR Pull Through Cache Action"
REPLICATION_ACTION = "ECR Replication Action"
DETAIL_TYPES = (IMAGE_ACTION, IMAGE_SCAN, PULL_THROUGH_CACHE_ACTION, REPLICATION_ACTION)

# The headers of a webhook delivery. The signature is HMAC-SHA256 over "<timestamp>.<body>" with the webhook's
# secret, hex, after "v1=": binding the timestamp lets a receiver refuse replays older than it tolerates.
EVENT_ID_HEADER = "X-Ecrd-Event-Id"
TIMESTAMP_HEADER = "X-Ecrd-Timestamp"
SIGNATURE_HEADER = "X-Ecrd-Signature"
SIGNATURE_VERSION = "v1"


@dataclass(frozen=True, slots=True)
class RegistryEvent:
    """One event as the outbox holds it: its envelope's id, type and repository (what filters read), its time
    and the whole envelope, serialized once."""

    event_id: str
    detail_type: str
    repository: str | None
    time: float
    body: str

    @property
    def envelope(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass(frozen=True, slots=True)
class Origin:
    """Where events come from: the registry (account and region) they name."""

    account_id: str
    region: str


def event_time(moment: float) -> str:
    """EventBridge's ``time``: UTC to the second, ``2019-11-16T01:54:34Z``."""
    return datetime.fromtimestamp(moment, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_event(
    origin: Origin,
    detail_type: str,
    detail: dict[str, Any],
    *,
    event_id: str,
    moment: float,
    repository: str | None,
) -> RegistryEvent:
    """The EventBridge envelope (version, id, detail-type, source, account, time, region, resources, detail)."""
    resources = [repository_arn(origin.region, origin.account_id, repository)] if repository else []
    envelope = {
        "version": "0",
        "id": event_id,
        "detail-type": detail_type,
        "source": SOURCE,
        "account": origin.account_id,
        "time": event_time(moment),
        "region": origin.region,
        "resources": resources,
        "detail": {key: value for key, value in detail.items() if value is not None},
    }
    return RegistryEvent(event_id, detail_type, repository, moment, json.dumps(envelope, separators=(",", ":")))


def image_action(
    action_type: str,
    repository: str,
    digest: str,
    *,
    tag: str | None,
    manifest_media_type: str | None = None,
    artifact_media_type: str | None = None,
    result: str = "SUCCESS",
) -> dict[str, Any]:
    """The detail of "ECR Image Action": a PUSH or a DELETE (lifecycle expiries are DELETEs, as ECR reports
    them). ``image-tag`` only when a tag took part; the media types only on a push."""
    return {
        "result": result,
        "repository-name": repository,
        "image-digest": digest,
        "action-type": action_type,
        "image-tag": tag,
        "manifest-media-type": manifest_media_type,
        "artifact-media-type": artifact_media_type,
    }


def image_scan(
    repository: str, digest: str, *, status: str, tags: Sequence[str], severity_counts: dict[str, int]
) -> dict[str, Any]:
    """The detail of "ECR Image Scan": ``finding-severity-counts`` names only the severities found."""
    return {
        "scan-status": status,
        "repository-name": repository,
        "finding-severity-counts": {severity: n for severity, n in severity_counts.items() if n},
        "image-digest": digest,
        "image-tags": list(tags),
    }


def pull_through_cache_action(
    *,
    prefix: str,
    repository: str,
    upstream_registry_url: str,
    tag: str | None,
    digest: str,
    status: str = "SUCCESS",
) -> dict[str, Any]:
    """The detail of "ECR Pull Through Cache Action": an image imported from the upstream of a rule."""
    return {
        "rule-version": "1",
        "sync-status": status,
        "ecr-repository-prefix": prefix,
        "repository-name": repository,
        "upstream-registry-url": upstream_registry_url,
        "image-tag": tag,
        "image-digest": digest,
    }


def replication_action(
    *, repository: str, digest: str, tag: str | None, source_account: str, source_region: str, result: str
) -> dict[str, Any]:
    """The detail of "ECR Replication Action" (replication writes it when it exists)."""
    return {
        "result": result,
        "repository-name": repository,
        "image-digest": digest,
        "source-account": source_account,
        "action-type": "REPLICATE",
        "source-region": source_region,
        "image-tag": tag,
    }


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events a webhook receives: any of ``detail_types`` (none: all) about a repository matching any of
    ``repositories`` (ECR wildcards, ``*`` any run of characters; none: all, events of no repository too)."""

    detail_types: tuple[str, ...] = ()
    repositories: tuple[str, ...] = ()

    def matches(self, detail_type: str, repository: str | None) -> bool:
        if self.detail_types and detail_type not in self.detail_types:
            return False
        if not self.repositories:
            return True
        return repository is not None and any(wildcard_matches(p, repository) for p in self.repositories)


def retry_delay(attempts: int, *, base: float, cap: float, jitter: float) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: exponential backoff (base·2ⁿ⁻¹, at most
    ``cap``) with "equal jitter" — half fixed, half scaled by ``jitter`` in [0, 1) — so receivers that failed
    together are not retried together, and none sooner than half its backoff."""
    backoff = min(cap, base * 2.0 ** max(0, attempts - 1))
    return backoff / 2.0 + backoff / 2.0 * jitter


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The value of the signature header: ``v1=`` and the hex HMAC-SHA256 of ``<timestamp>.<body>``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={mac.hexdigest()}"


def signature_valid(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    """What a receiver checks (in constant time); its tolerance of the timestamp's age is its own choice."""
    return hmac.compare_digest(signature(secret, timestamp, body), header)
