"""Parsing and checking manifests and indexes: what a pushed manifest references and declares."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ecrd.domain import media_types as mt
from ecrd.domain.digests import Digest
from ecrd.errors import ManifestInvalid, ManifestTooLarge, UnsupportedMediaType

# The OCI distribution spec asks registries to accept manifests of at least 4 MB; ECR's ImageManifest is
# at most 4,194,304 characters (botocore model). Larger ones are refused with 413.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None
    platform: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.annotations:
            out["annotations"] = self.annotations
        if self.platform:
            out["platform"] = self.platform
        return out


@dataclass(frozen=True, slots=True)
class Manifest:
    media_type: str
    config: Descriptor | None
    layers: tuple[Descriptor, ...]
    manifests: tuple[Descriptor, ...]
    subject: Descriptor | None
    artifact_type: str | None
    annotations: dict[str, str] | None

    @property
    def is_index(self) -> bool:
        return self.media_type in mt.INDEXES

    def blob_digests(self) -> list[str]:
        """Blobs the registry must hold before accepting this manifest (config first, then layers).

        Non-distributable ("foreign") layers are fetched by clients from their ``urls``, never pushed to a
        registry (image spec), so they are not required.
        """
        layers = [layer.digest for layer in self.layers if layer.media_type not in mt.NON_DISTRIBUTABLE_LAYERS]
        found = ([self.config.digest] if self.config else []) + layers
        return list(dict.fromkeys(found))


def check_size(length: int) -> None:
    if length > MAX_MANIFEST_BYTES:
        raise ManifestTooLarge(
            f"manifest is {length} bytes; the limit is {MAX_MANIFEST_BYTES} bytes (4 MiB)",
            detail={"size": length, "limit": MAX_MANIFEST_BYTES},
        )


def parse_manifest(payload: bytes, content_type: str | None) -> Manifest:
    """Parse a manifest or index, reconciling the declared Content-Type with the body's ``mediaType``."""
    check_size(len(payload))
    declared = (content_type or "").split(";", 1)[0].strip().lower() or None
    if declared in mt.SCHEMA1:
        raise UnsupportedMediaType(
            "Docker image manifest schema 1 is not supported: push with schema 2 or OCI (docker 1.10 or later)",
            detail={"mediaType": declared},
        )
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ManifestInvalid(f"manifest is not valid JSON: {exc}") from None
    except RecursionError:
        raise ManifestInvalid("manifest is not valid JSON: nested too deeply") from None
    if not isinstance(body, dict):
        raise ManifestInvalid("manifest must be a JSON object")
    body_type = body.get("mediaType")
    if body_type is not None and not isinstance(body_type, str):
        raise ManifestInvalid("manifest mediaType must be a string")
    if body.get("schemaVersion") == 1 or body_type in mt.SCHEMA1:
        raise UnsupportedMediaType(
            "Docker image manifest schema 1 is not supported: push with schema 2 or OCI (docker 1.10 or later)"
        )
    if body.get("schemaVersion") != 2:
        raise ManifestInvalid("manifest schemaVersion must be 2")
    media_type = _reconcile_media_type(declared, body_type, body)
    if media_type in mt.INDEXES:
        return _parse_index(body, media_type)
    return _parse_image_manifest(body, media_type)


def _reconcile_media_type(declared: str | None, body_type: str | None, body: dict[str, Any]) -> str:
    # OCI image spec: mediaType in the body, when present, must match the Content-Type of the push.
    generic = declared in (None, "application/json", "application/octet-stream")
    if body_type is not None and not generic and body_type != declared:
        raise ManifestInvalid(
            f"manifest mediaType {body_type!r} does not match Content-Type {declared!r}",
            detail={"mediaType": body_type, "contentType": declared},
        )
    chosen = body_type or (None if generic else declared)
    if chosen is None:
        chosen = mt.OCI_INDEX if "manifests" in body else mt.OCI_MANIFEST
    if chosen not in mt.MANIFESTS:
        raise UnsupportedMediaType(f"unsupported manifest media type {chosen!r}", detail={"mediaType": chosen})
    return chosen


def _parse_image_manifest(body: dict[str, Any], media_type: str) -> Manifest:
    config_raw = body.get("config")
    if not isinstance(config_raw, dict):
        raise ManifestInvalid("image manifest must have a config descriptor")
    layers_raw = body.get("layers", [])
    if not isinstance(layers_raw, list):
        raise ManifestInvalid("manifest layers must be a list")
    config = _descriptor(config_raw, "config")
    layers = tuple(_descriptor(item, f"layers[{i}]") for i, item in enumerate(layers_raw))
    return _manifest(body, media_type, config=config, layers=layers)


def _parse_index(body: dict[str, Any], media_type: str) -> Manifest:
    manifests_raw = body.get("manifests")
    if not isinstance(manifests_raw, list):
        raise ManifestInvalid("index must have a manifests list")
    manifests = tuple(_descriptor(item, f"manifests[{i}]") for i, item in enumerate(manifests_raw))
    return _manifest(body, media_type, manifests=manifests)


def _manifest(
    body: dict[str, Any],
    media_type: str,
    *,
    config: Descriptor | None = None,
    layers: tuple[Descriptor, ...] = (),
    manifests: tuple[Descriptor, ...] = (),
) -> Manifest:
    """An image manifest or an index, with what both may carry: artifactType, subject and annotations."""
    artifact_type = body.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise ManifestInvalid("artifactType must be a string")
    return Manifest(
        media_type=media_type,
        config=config,
        layers=layers,
        manifests=manifests,
        subject=_subject(body),
        artifact_type=artifact_type,
        annotations=_annotations(body.get("annotations"), "annotations"),
    )


def _subject(body: dict[str, Any]) -> Descriptor | None:
    raw = body.get("subject")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ManifestInvalid("subject must be a descriptor")
    return _descriptor(raw, "subject")


def _descriptor(raw: object, where: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise ManifestInvalid(f"{where} must be a descriptor object")
    media_type = raw.get("mediaType")
    digest = raw.get("digest")
    size = raw.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise ManifestInvalid(f"{where}.mediaType must be a non-empty string")
    if not isinstance(digest, str):
        raise ManifestInvalid(f"{where}.digest must be a string")
    try:
        Digest.parse(digest)
    except Exception as exc:
        raise ManifestInvalid(f"{where}.digest: {exc}") from None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestInvalid(f"{where}.size must be a non-negative integer")
    artifact_type = raw.get("artifactType")
    platform = raw.get("platform")
    return Descriptor(
        media_type=media_type,
        digest=digest,
        size=size,
        artifact_type=artifact_type if isinstance(artifact_type, str) else None,
        annotations=_annotations(raw.get("annotations"), f"{where}.annotations"),
        platform=platform if isinstance(platform, dict) else None,
    )


def _annotations(raw: object, where: str) -> dict[str, str] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise ManifestInvalid(f"{where} must map strings to strings")
    return dict(raw)


def referrer_artifact_type(manifest: Manifest) -> str | None:
    """OCI distribution spec, referrers: artifactType, else the config's mediaType for image manifests."""
    if manifest.artifact_type:
        return manifest.artifact_type
    if manifest.config is not None:
        return manifest.config.media_type
    return None
