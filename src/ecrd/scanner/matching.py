"""Matching an inventory against advisories: which installed packages an OSV record's ranges and version lists
cover, each compared by its own ecosystem's version rules, and the findings that follow.

Distribution advisories (Debian DSA/DLA, Alpine secdb) are filed under source packages, so dpkg packages are
matched by their ``Source:`` name and version and apk packages by their origin: one finding per source package,
however many of its binaries are installed, named and versioned as the source.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ecrd.domain.caches import BoundedCache
from ecrd.scanner.advisories import (
    Advisory,
    AdvisoryInvalid,
    AdvisoryLookup,
    AffectedPackage,
    Event,
    OsvRecord,
    normalize_package_name,
    parse_advisory,
)
from ecrd.scanner.inventory import OperatingSystem, Package, PackageType
from ecrd.scanner.severity import Severity, severity_of
from ecrd.scanner.versions import UnparsableVersion, VersionScheme, scheme_for


@dataclass(frozen=True)
class Finding:
    """One advisory that applies to one installed package."""

    name: str  # the CVE when the advisory is about exactly one, else the advisory id (DSA-…, GHSA-…)
    description: str
    uri: str
    severity: Severity
    package_name: str
    package_version: str
    fixed_version: str | None
    ecosystem: str
    advisory_id: str
    cvss_score: float | None
    cvss_vector: str | None
    # What enhanced findings show besides: the record's ``modified`` time, the other vulnerabilities it names,
    # its reference URLs and the severity its source gave it.
    modified: str = ""
    related: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    vendor_severity: str | None = None

    @property
    def sort_key(self) -> tuple[int, str, str, str, str]:
        return (self.severity.rank, self.name, self.package_name, self.package_version, self.advisory_id)


@dataclass(frozen=True)
class Coordinate:
    """A package as advisories name it: the ecosystem, the name they file it under, the version they compare."""

    ecosystem: str
    name: str
    version: str


@dataclass(frozen=True)
class Verdict:
    affected: bool
    fixed_version: str | None = None


def os_ecosystems(os: OperatingSystem | None, package_type: PackageType) -> tuple[str, ...]:
    """The OSV ecosystems whose advisories cover a distribution package of this OS."""
    if os is None or not os.version_id:
        return ()
    version = os.version_id
    major = version.split(".", 1)[0]
    if package_type is PackageType.DEB:
        if os.name == "debian":
            # Releases before 7 were numbered "6.0" (and so are their advisories' ecosystems).
            return tuple(dict.fromkeys((f"Debian:{major}", f"Debian:{version}")))
        if os.name == "ubuntu":
            return (f"Ubuntu:{version}", f"Ubuntu:{version}:LTS")
    if package_type is PackageType.APK and os.name == "alpine":
        # secdb branches are vMAJOR.MINOR; os-release says 3.11.6.
        return ("Alpine:v" + ".".join(version.split(".")[:2]),)
    if package_type is PackageType.RPM:
        named = {"almalinux": "AlmaLinux", "rocky": "Rocky Linux"}.get(os.name)
        if named is not None:
            return (f"{named}:{major}",)
        if os.name == "mageia":
            return (f"Mageia:{version}",)
    return ()


def coordinates(os: OperatingSystem | None, package: Package) -> list[Coordinate]:
    if package.type is PackageType.PYPI:
        return [Coordinate("PyPI", package.name, package.version)]
    if package.type is PackageType.NPM:
        return [Coordinate("npm", package.name, package.version)]
    found: list[Coordinate] = []
    source_name = package.source_name or package.name
    source_version = package.source_version or package.version
    for ecosystem in os_ecosystems(os, package.type):
        found.append(Coordinate(ecosystem, source_name, source_version))
        if package.type is PackageType.RPM and source_name != package.name:
            # RPM advisories name binary packages in some distributions and source packages in others.
            found.append(Coordinate(ecosystem, package.name, package.version))
    return found


# -- deciding whether a version is affected (OSV schema, "Evaluation") ------------------------------------


def _event_order(scheme: VersionScheme, a: Event, b: Event) -> int:
    # introduced "0" means "from the beginning": before every version.
    a_zero, b_zero = a.kind == "introduced" and a.version == "0", b.kind == "introduced" and b.version == "0"
    if a_zero or b_zero:
        return (b_zero - a_zero) if a_zero != b_zero else 0
    return scheme.compare(a.version, b.version)


def in_range(scheme: VersionScheme, events: Sequence[Event], version: str) -> Verdict:
    """Whether ``version`` falls in the range the ``events`` describe, and the fix that ends that stretch.

    The OSV algorithm: sort the events by version; walk them, becoming affected at an ``introduced`` at or below
    the version, unaffected at a ``fixed`` at or below it or a ``last_affected`` below it; a ``limit`` at or
    below it ends the walk. Raises ``UnparsableVersion`` when an event or the version cannot be ordered.
    """
    ordered = sorted(events, key=functools.cmp_to_key(functools.partial(_event_order, scheme)))
    affected = False
    for event in ordered:
        if event.kind == "introduced":
            if event.version == "0" or scheme.compare(version, event.version) >= 0:
                affected = True
        elif event.kind == "fixed":
            if scheme.compare(version, event.version) >= 0:
                affected = False
        elif event.kind == "last_affected":
            if scheme.compare(version, event.version) > 0:
                affected = False
        elif event.kind == "limit" and scheme.compare(version, event.version) >= 0:
            affected = False
            break
    if not affected:
        return Verdict(False)
    for event in ordered:
        if not (event.kind == "introduced" and event.version == "0") and scheme.compare(version, event.version) < 0:
            return Verdict(True, event.version if event.kind == "fixed" else None)
    return Verdict(True)


def evaluate(entry: AffectedPackage, version: str, notes: list[str] | None = None) -> Verdict:
    """Whether an ``affected[]`` entry covers ``version``: listed in ``versions``, or inside one of the ranges
    ordered by a known scheme (``GIT`` ranges are skipped: an image carries no commit hashes)."""
    verdict = Verdict(False)
    for range_ in entry.ranges:
        scheme = scheme_for(entry.ecosystem, range_.type)
        if scheme is None:
            continue
        try:
            found = in_range(scheme, range_.events, version)
        except UnparsableVersion as exc:
            if notes is not None:
                notes.append(f"{entry.ecosystem} {entry.name}: range not evaluated ({exc})")
            continue
        if found.affected:
            verdict = found
            if found.fixed_version is not None:
                return found
    if not verdict.affected and _listed(entry, version):
        verdict = Verdict(True)
    if verdict.affected:
        return Verdict(True, _next_fix(entry, version))
    return verdict


def _listed(entry: AffectedPackage, version: str) -> bool:
    if version in entry.versions:
        return True
    scheme = scheme_for(entry.ecosystem)
    if scheme is None or not scheme.is_valid(version):
        return False
    # "1.0" and "1.0.0" are the same PEP 440 version; a list may spell it either way.
    return any(scheme.is_valid(listed) and scheme.compare(version, listed) == 0 for listed in entry.versions)


def _next_fix(entry: AffectedPackage, version: str) -> str | None:
    """The lowest ``fixed`` version above ``version`` in any range of the entry."""
    best: str | None = None
    for range_ in entry.ranges:
        scheme = scheme_for(entry.ecosystem, range_.type)
        if scheme is None:
            continue
        for event in range_.events:
            if event.kind != "fixed":
                continue
            try:
                if scheme.compare(version, event.version) < 0 and (
                    best is None or scheme.compare(event.version, best) < 0
                ):
                    best = event.version
            except UnparsableVersion:
                continue
    return best


# -- inventory × advisories -------------------------------------------------------------------------------


def match_inventory(
    os: OperatingSystem | None, packages: Iterable[Package], advisories: AdvisoryLookup, notes: list[str] | None = None
) -> list[Finding]:
    """Every finding for the packages, deduplicated (one per advisory and package name and version) and sorted
    by severity, then name."""
    return match_inventories([(os, packages)], advisories, notes)[0]


def match_inventories(
    inventories: Sequence[tuple[OperatingSystem | None, Iterable[Package]]],
    advisories: AdvisoryLookup,
    notes: list[str] | None = None,
    *,
    known: BoundedCache[Coordinate, tuple[Finding, ...]] | None = None,
) -> list[list[Finding]]:
    """``match_inventory`` for many images at once: each ecosystem is looked up once for all of them, and each
    distinct (ecosystem, name, version) is judged once however many images hold it — images share most of
    their packages, so re-matching a registry costs about as much as its distinct packages. ``known`` keeps
    judgements across calls; its owner must drop it when the advisories change."""
    per_image: list[set[Coordinate]] = []
    by_ecosystem: dict[str, set[Coordinate]] = defaultdict(set)
    judged: dict[Coordinate, tuple[Finding, ...]] = {}
    for os, packages in inventories:
        wanted = {coordinate for package in packages for coordinate in coordinates(os, package)}
        per_image.append(wanted)
        for coordinate in wanted:
            if coordinate in judged:
                continue
            found = None if known is None else known.get(coordinate)
            if found is None:
                by_ecosystem[coordinate.ecosystem].add(coordinate)
            else:
                judged[coordinate] = found
    parsed: dict[str, Advisory | None] = {}
    for ecosystem, wanted in sorted(by_ecosystem.items()):
        names = sorted({coordinate.name for coordinate in wanted})
        by_name: dict[str, dict[str, Advisory]] = defaultdict(dict)
        for record in advisories.lookup(ecosystem, names):
            advisory = _parse_once(record, parsed)
            if advisory is None or advisory.withdrawn:
                continue
            for entry in advisory.affected:
                if entry.ecosystem == ecosystem:
                    by_name[normalize_package_name(ecosystem, entry.name)][advisory.id] = advisory
        for coordinate in sorted(wanted, key=lambda c: (c.name, c.version)):
            candidates = by_name.get(normalize_package_name(ecosystem, coordinate.name), {}).values()
            judged[coordinate] = tuple(
                finding for advisory in candidates if (finding := _finding(advisory, coordinate, notes)) is not None
            )
            if known is not None:
                known.put(coordinate, judged[coordinate])
    results: list[list[Finding]] = []
    for wanted in per_image:
        findings: dict[tuple[str, str, str, str], Finding] = {}
        for coordinate in sorted(wanted, key=lambda c: (c.ecosystem, c.name, c.version)):
            for finding in judged[coordinate]:
                key = (finding.advisory_id, coordinate.ecosystem, coordinate.name, coordinate.version)
                findings.setdefault(key, finding)
        results.append(sorted(findings.values(), key=lambda f: f.sort_key))
    return results


def _parse_once(record: OsvRecord, parsed: dict[str, Advisory | None]) -> Advisory | None:
    record_id = record.get("id")
    key = record_id if isinstance(record_id, str) else repr(record_id)
    if key not in parsed:
        try:
            parsed[key] = parse_advisory(record)
        except AdvisoryInvalid:
            parsed[key] = None
    return parsed[key]


def _finding(advisory: Advisory, coordinate: Coordinate, notes: list[str] | None) -> Finding | None:
    wanted = normalize_package_name(coordinate.ecosystem, coordinate.name)
    verdict: Verdict | None = None
    for entry in advisory.affected:
        if entry.ecosystem != coordinate.ecosystem or normalize_package_name(entry.ecosystem, entry.name) != wanted:
            continue
        found = evaluate(entry, coordinate.version, notes)
        if found.affected and (verdict is None or (verdict.fixed_version is None and found.fixed_version)):
            verdict = found
    if verdict is None:
        return None
    severity, cvss = severity_of(advisory)
    return Finding(
        name=advisory.display_name,
        description=advisory.description,
        uri=advisory.uri,
        severity=severity,
        package_name=coordinate.name,
        package_version=coordinate.version,
        fixed_version=verdict.fixed_version,
        ecosystem=coordinate.ecosystem,
        advisory_id=advisory.id,
        cvss_score=cvss.base_score if cvss else None,
        cvss_vector=cvss.vector if cvss else None,
        modified=advisory.modified,
        related=tuple(cve for cve in advisory.cve_ids if cve != advisory.display_name),
        references=tuple(dict.fromkeys(reference.url for reference in advisory.references)),
        vendor_severity=advisory.database_severity,
    )
