"""What enhanced scanning keeps between scans: an image's inventory as a document, and its findings as
observations that open, stay and close as the advisory data changes.

A scan stores the inventory it read from the layers, so a later re-match needs no layer again: the document
holds the operating system and every package as the scanner found them. An observation is one finding of one
image with the times enhanced scanning reports (``firstObservedAt``, ``lastObservedAt``, ``updatedAt``) and a
status: ``ACTIVE`` while the finding holds, ``CLOSED`` once a scan or re-match no longer finds it (Amazon
Inspector's finding states). Closed observations are dropped after ``CLOSED_RETENTION_SECONDS``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from typing import Any, Final

from ecrd.scanner.inventory import OperatingSystem, Package, PackageType
from ecrd.scanner.matching import Finding, coordinates

ACTIVE: Final = "ACTIVE"
CLOSED: Final = "CLOSED"
# How long a closed observation stays listed (then dropped at the image's next write): long enough to see what closed.
CLOSED_RETENTION_SECONDS: Final = 7 * 24 * 3600.0
# Amazon Inspector's packageManager of each kind of package the scanner reads.
PACKAGE_MANAGERS: Final = {
    PackageType.DEB: "OS",
    PackageType.APK: "OS",
    PackageType.RPM: "OS",
    PackageType.PYPI: "PYTHONPKG",
    PackageType.NPM: "NODEPKG",
}
INVENTORY_FORMAT: Final = 1


# -- the stored inventory ---------------------------------------------------------------------------------


def inventory_document(os: OperatingSystem | None, packages: Iterable[Package]) -> dict[str, Any]:
    """The inventory as JSON-ready data; ``inventory_from_document`` reads it back."""
    return {
        "format": INVENTORY_FORMAT,
        "os": None if os is None else {**asdict(os), "id_like": list(os.id_like)},
        "packages": [{**asdict(p), "type": p.type.value} for p in packages],
    }


def inventory_from_document(document: Mapping[str, Any]) -> tuple[OperatingSystem | None, tuple[Package, ...]]:
    os_fields = document.get("os")
    os = None
    if os_fields is not None:
        os = OperatingSystem(**{**os_fields, "id_like": tuple(os_fields.get("id_like") or ())})
    packages = tuple(Package(**{**fields, "type": PackageType(fields["type"])}) for fields in document["packages"])
    return os, packages


# -- observations -----------------------------------------------------------------------------------------


def observation_key(finding: Mapping[str, Any]) -> str:
    """One observation per advisory and package (as the advisory names it) and version."""
    return " ".join((finding["advisory_id"], finding["ecosystem"], finding["package_name"], finding["package_version"]))


def _epoch_and_version(package: Package) -> tuple[int | None, str, str | None]:
    """dpkg and RPM versions as Inspector splits them: epoch, version, release (``1:2.3-4`` → 1, 2.3, 4)."""
    version = package.version
    if package.type not in (PackageType.DEB, PackageType.RPM):
        return None, version, None
    epoch = None
    head, colon, rest = version.partition(":")
    if colon and head.isdigit():
        epoch, version = int(head), rest
    base, dash, release = version.rpartition("-")
    return (epoch, base, release) if dash and base else (epoch, version, None)


@functools.lru_cache(maxsize=4096)
def _package_details(package: Package, fixed_version: str | None) -> dict[str, Any]:
    """ECR's ``VulnerablePackage`` of an installed package. Cached: images share packages, and a re-match builds
    these for thousands of images; callers must not change the dict."""
    epoch, version, release = _epoch_and_version(package)
    details: dict[str, Any] = {
        "name": package.name,
        "version": version,
        "packageManager": PACKAGE_MANAGERS[package.type],
        "filePath": package.location,
    }
    optional = {"epoch": epoch, "release": release, "arch": package.arch, "fixedInVersion": fixed_version}
    details.update({key: value for key, value in optional.items() if value is not None})
    return details


@functools.lru_cache(maxsize=4096)
def _finding_fields(finding: Finding) -> dict[str, Any]:
    """A finding as stored in an observation (JSON-ready). Cached like ``_package_details``: a finding of a
    re-match is shared by every image holding its package."""
    return {
        "name": finding.name,
        "description": finding.description,
        "uri": finding.uri,
        "severity": finding.severity.value,
        "package_name": finding.package_name,
        "package_version": finding.package_version,
        "fixed_version": finding.fixed_version,
        "ecosystem": finding.ecosystem,
        "advisory_id": finding.advisory_id,
        "cvss_score": finding.cvss_score,
        "cvss_vector": finding.cvss_vector,
        "modified": finding.modified,
        "related": list(finding.related),
        "references": list(finding.references),
        "vendor_severity": finding.vendor_severity,
    }


def _packages_by_coordinate(
    os: OperatingSystem | None, packages: Iterable[Package]
) -> dict[tuple[str, str, str], list[Package]]:
    """The installed packages each advisory coordinate (ecosystem, name, version) stands for: a distribution
    advisory filed under a source package covers each of its installed binaries."""
    found: dict[tuple[str, str, str], list[Package]] = {}
    for package in packages:
        for c in coordinates(os, package):
            found.setdefault((c.ecosystem, c.name, c.version), []).append(package)
    return found


def observe(
    previous: Sequence[Mapping[str, Any]],
    findings: Sequence[Finding],
    os: OperatingSystem | None,
    packages: Sequence[Package],
    now: float,
) -> list[dict[str, Any]]:
    """The observations after a scan or re-match found ``findings``: a finding seen before keeps its first
    observation time (and its update time unless it changed or was closed); one no longer found is closed now;
    a closed one past its retention is dropped. Active observations come first, in the findings' order."""
    before = {record["key"]: record for record in previous}
    installed = _packages_by_coordinate(os, packages)
    current: list[dict[str, Any]] = []
    for finding in findings:
        fields = _finding_fields(finding)
        key = observation_key(fields)
        coordinate = (finding.ecosystem, finding.package_name, finding.package_version)
        packages_of = [_package_details(p, finding.fixed_version) for p in installed.get(coordinate, ())]
        earlier = before.pop(key, None)
        unchanged = (
            earlier is not None
            and earlier["status"] == ACTIVE
            and earlier["finding"] == fields
            and earlier["packages"] == packages_of
        )
        current.append(
            {
                "key": key,
                "status": ACTIVE,
                "first_observed_at": now if earlier is None else earlier["first_observed_at"],
                "last_observed_at": now,
                "updated_at": earlier["updated_at"] if unchanged and earlier is not None else now,
                "finding": fields,
                "packages": packages_of,
            }
        )
    for record in before.values():
        if record["status"] == ACTIVE:
            current.append({**record, "status": CLOSED, "updated_at": now})
        elif now - record["updated_at"] < CLOSED_RETENTION_SECONDS:
            current.append(dict(record))
    return current


def active_keys(observations: Iterable[Mapping[str, Any]]) -> frozenset[str]:
    return frozenset(record["key"] for record in observations if record["status"] == ACTIVE)
