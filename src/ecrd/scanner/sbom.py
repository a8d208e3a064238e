"""A CycloneDX 1.5 software bill of materials (JSON) of a scanned image: the image, its operating system, every
package with its Package URL, and the findings as CycloneDX vulnerabilities.

The output is a pure function of the scan result and the image: no clock, no random serial number (it is a
UUIDv5 of the image digest), components and vulnerabilities in a fixed order. So the same image always yields
byte-identical JSON, which makes SBOMs diffable and cacheable.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import TYPE_CHECKING, Any, Final

from packageurl import PackageURL

from ecrd import __version__
from ecrd.scanner.inventory import OperatingSystem, Package, PackageType
from ecrd.scanner.matching import coordinates
from ecrd.scanner.severity import Severity

if TYPE_CHECKING:
    from ecrd.scanner.scan import ScanResult

SPEC_VERSION: Final = "1.5"
SCHEMA_URL: Final = "http://cyclonedx.org/schema/bom-1.5.schema.json"
_SERIAL_NAMESPACE: Final = uuid.UUID("7d0c0f5e-5c7e-4d39-9a51-0c7a2f3b8e11")  # ecrd's own namespace for UUIDv5

# CycloneDX severity names (bom-1.5 "severity" enum) for ECR's.
_CDX_SEVERITY: Final = {
    Severity.CRITICAL: "critical",
    Severity.HIGH: "high",
    Severity.MEDIUM: "medium",
    Severity.LOW: "low",
    Severity.INFORMATIONAL: "info",
    Severity.UNDEFINED: "unknown",
}


def package_url(package: Package, os: OperatingSystem | None) -> str:
    """The purl of a package (purl-spec PURL-TYPES: deb, apk, rpm carry the distribution as namespace and the
    ``arch``/``distro`` qualifiers; rpm's epoch is the ``epoch`` qualifier; an npm scope is the namespace)."""
    qualifiers: dict[str, str] = {}
    namespace: str | None = None
    name, version = package.name, package.version
    if package.type in (PackageType.DEB, PackageType.APK, PackageType.RPM):
        default = {PackageType.DEB: "debian", PackageType.APK: "alpine", PackageType.RPM: "redhat"}[package.type]
        namespace = os.name if os is not None else default
        if package.arch:
            qualifiers["arch"] = package.arch
        if os is not None and os.version_id:
            qualifiers["distro"] = f"{os.name}-{os.version_id}"
        if package.type is PackageType.RPM and ":" in version:
            epoch, _, version = version.partition(":")
            qualifiers["epoch"] = epoch
    elif package.type is PackageType.NPM and name.startswith("@") and "/" in name:
        namespace, _, name = name.partition("/")
    return str(
        PackageURL(
            type=package.type.value, namespace=namespace, name=name, version=version, qualifiers=qualifiers or None
        ).to_string()
    )


def _cvss_method(vector: str) -> str:
    if vector.startswith("CVSS:3.1/"):
        return "CVSSv31"
    if vector.startswith("CVSS:3.0/"):
        return "CVSSv3"
    if vector.startswith("CVSS:4.0/"):
        return "CVSSv4"
    return "CVSSv2"


def build_sbom(result: ScanResult, *, image_digest: str, image_name: str) -> dict[str, Any]:
    """The CycloneDX 1.5 document of a scan result. ``image_name`` is the repository (``host/repo`` or ``repo``),
    ``image_digest`` the manifest digest."""
    repository = image_name.rsplit("/", 1)[-1]
    image_purl = str(
        PackageURL(
            type="oci", name=repository.lower(), version=image_digest, qualifiers={"repository_url": image_name}
        ).to_string()
    )
    image_ref = image_purl
    components: list[dict[str, Any]] = []
    refs_by_coordinate: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    if result.os is not None:
        os_component: dict[str, Any] = {
            "type": "operating-system",
            "bom-ref": f"os:{result.os.name}",
            "name": result.os.name,
        }
        if result.os.version_id:
            os_component["version"] = result.os.version_id
            os_component["bom-ref"] += f"@{result.os.version_id}"
        if result.os.pretty_name:
            os_component["description"] = result.os.pretty_name
        components.append(os_component)
    used_refs: set[str] = set()
    for package in result.packages:
        purl = package_url(package, result.os)
        ref = purl
        counter = 1
        while ref in used_refs:
            # The same package installed twice (two virtualenvs): one component each, told apart by location.
            counter += 1
            ref = f"{purl}#{counter}"
        used_refs.add(ref)
        component: dict[str, Any] = {
            "type": "library",
            "bom-ref": ref,
            "name": package.name,
            "version": package.version,
            "purl": purl,
        }
        if package.license:
            component["licenses"] = [{"license": {"name": package.license}}]
        properties = [
            {"name": "ecrd:package:type", "value": package.type.value},
            {"name": "ecrd:package:location", "value": package.location},
        ]
        if package.source_name and (package.source_name, package.source_version) != (package.name, package.version):
            properties.append({"name": "ecrd:package:source_name", "value": package.source_name})
            if package.source_version:
                properties.append({"name": "ecrd:package:source_version", "value": package.source_version})
        component["properties"] = properties
        components.append(component)
        for coordinate in coordinates(result.os, package):
            refs_by_coordinate[(coordinate.ecosystem, coordinate.name, coordinate.version)].append(ref)

    vulnerabilities: list[dict[str, Any]] = []
    for finding in result.findings:
        affects = sorted(
            set(refs_by_coordinate.get((finding.ecosystem, finding.package_name, finding.package_version), []))
        )
        rating: dict[str, Any] = {"severity": _CDX_SEVERITY[finding.severity]}
        if finding.cvss_score is not None and finding.cvss_vector:
            rating.update(
                score=finding.cvss_score, method=_cvss_method(finding.cvss_vector), vector=finding.cvss_vector
            )
        vulnerability: dict[str, Any] = {
            "bom-ref": f"{finding.advisory_id}/{finding.ecosystem}/{finding.package_name}@{finding.package_version}",
            "id": finding.name,
            "source": {"name": "OSV", "url": finding.uri},
            "ratings": [rating],
            "description": finding.description,
            "advisories": [{"url": finding.uri}],
            "affects": [{"ref": ref} for ref in affects],
        }
        if finding.name != finding.advisory_id:
            vulnerability["references"] = [
                {
                    "id": finding.advisory_id,
                    "source": {"name": "OSV", "url": f"https://osv.dev/vulnerability/{finding.advisory_id}"},
                }
            ]
        if finding.fixed_version:
            vulnerability["recommendation"] = f"Upgrade {finding.package_name} to {finding.fixed_version} or later"
        vulnerabilities.append(vulnerability)

    document: dict[str, Any] = {
        "$schema": SCHEMA_URL,
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": f"urn:uuid:{uuid.uuid5(_SERIAL_NAMESPACE, image_digest)}",
        "version": 1,
        "metadata": {
            "tools": {"components": [{"type": "application", "name": "ecrd", "version": __version__}]},
            "component": {
                "type": "container",
                "bom-ref": image_ref,
                "name": image_name,
                "version": image_digest,
                "purl": image_purl,
            },
        },
        "components": components,
        "dependencies": [{"ref": image_ref, "dependsOn": [c["bom-ref"] for c in components]}],
    }
    if vulnerabilities:
        document["vulnerabilities"] = vulnerabilities
    return document
