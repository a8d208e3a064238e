"""The scanner's entry point: layers in, inventory and findings out, and the shapes ECR and CycloneDX give them.

``scan_layers`` is pure analysis: it reads the blobs it is handed and asks ``advisories`` about the packages it
found; it stores nothing and knows nothing of repositories or jobs.
"""

from __future__ import annotations

import functools
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final

from ecrd.scanner import sbom
from ecrd.scanner.advisories import AdvisoryLookup
from ecrd.scanner.inventory import OperatingSystem, Package, build_inventory, wanted_size
from ecrd.scanner.layers import collect_files
from ecrd.scanner.matching import Finding, match_inventory
from ecrd.scanner.severity import Severity

# ECR's troubleshooting guide: "Amazon ECR does not support scanning images built from the Docker scratch image".
UNSUPPORTED_NOTHING_FOUND: Final = (
    "UnsupportedImageError: no operating system and no package database were found in the image "
    "(images built from scratch cannot be scanned)"
)

# ImageScanFinding (botocore model): attributes 0–50 items, key 1–128 and value 1–256 characters.
MAX_ATTRIBUTES: Final = 50
MAX_ATTRIBUTE_KEY: Final = 128
MAX_ATTRIBUTE_VALUE: Final = 256


@dataclass(frozen=True)
class ScanResult:
    os: OperatingSystem | None
    packages: tuple[Package, ...]
    findings: tuple[Finding, ...]  # sorted by severity, then name
    unsupported_reason: str | None
    # What the scan could not read or decide (an oversized file, a version no scheme accepts); for logs.
    notes: tuple[str, ...] = ()

    @property
    def severity_counts(self) -> dict[str, int]:
        return severity_counts(self.findings)


def severity_counts(findings: Iterable[Finding]) -> dict[str, int]:
    """ECR's ``findingSeverityCounts``: only severities that occur."""
    counts = Counter(finding.severity for finding in findings)
    return {severity.value: counts[severity] for severity in Severity if counts[severity]}


def scan_layers(layers: Iterable[Callable[[], BinaryIO]], advisories: AdvisoryLookup) -> ScanResult:
    """Scan an image given its layers in order, each a callable opening the blob as stored (compressed).

    Raises ``ecrd.errors.LayerUnreadable`` when a layer is not a tar archive in gzip, zstd or no compression.
    """
    with tempfile.TemporaryDirectory(prefix="ecrd-scan-") as scratch_dir:
        scratch = Path(scratch_dir)
        files = collect_files(layers, wanted_size, scratch)
        inventory = build_inventory(files, scratch)
    notes = list(inventory.notes)
    if inventory.os is None and not inventory.packages:
        return ScanResult(None, (), (), UNSUPPORTED_NOTHING_FOUND, tuple(notes))
    findings = match_inventory(inventory.os, inventory.packages, advisories, notes)
    return ScanResult(inventory.os, inventory.packages, tuple(findings), None, tuple(dict.fromkeys(notes)))


def _attribute(key: str, value: str | None) -> dict[str, str] | None:
    if not value:
        return None
    return {"key": key[:MAX_ATTRIBUTE_KEY], "value": value[:MAX_ATTRIBUTE_VALUE]}


@functools.lru_cache(maxsize=4096)
def finding_to_ecr(f: Finding) -> dict[str, Any]:
    """ECR's basic ``ImageScanFinding``: name, description, uri, severity and attributes (package_version,
    package_name, and CVSS<n>_VECTOR / CVSS<n>_SCORE for the version of the reported vector), and last, when an
    advisory names one, the version that fixes it (fixed_version, as ECR's enhanced findings' fixedInVersion).
    Cached: a finding of a re-match is shared by every image holding its package; callers must not change the dict."""
    cvss_version = "2"
    if f.cvss_vector and f.cvss_vector.startswith("CVSS:"):
        cvss_version = f.cvss_vector[5]
    candidates = [
        _attribute("package_version", f.package_version),
        _attribute("package_name", f.package_name),
        _attribute(f"CVSS{cvss_version}_VECTOR", f.cvss_vector),
        _attribute(f"CVSS{cvss_version}_SCORE", None if f.cvss_score is None else f"{f.cvss_score:.1f}"),
        _attribute("fixed_version", f.fixed_version),
    ]
    attributes = [attribute for attribute in candidates if attribute is not None][:MAX_ATTRIBUTES]
    return {
        "name": f.name,
        "description": f.description,
        "uri": f.uri,
        "severity": f.severity.value,
        "attributes": attributes,
    }


def build_sbom(result: ScanResult, *, image_digest: str, image_name: str) -> dict[str, Any]:
    """The CycloneDX 1.5 SBOM of a scan result (see ``ecrd.scanner.sbom``)."""
    return sbom.build_sbom(result, image_digest=image_digest, image_name=image_name)
