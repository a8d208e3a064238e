"""Matching: OSV ranges (introduced / fixed / last_affected / limit), explicit version lists, withdrawn records,
and how findings are named, deduplicated and sorted — on synthetic records and on the real advisory data."""

from __future__ import annotations

from typing import Any

import pytest

from ecrd.scanner.advisories import AdvisoryIndex, AffectedPackage, Event, Range, parse_advisory
from ecrd.scanner.inventory import OperatingSystem, Package, PackageType
from ecrd.scanner.matching import Finding, Verdict, coordinates, evaluate, in_range, match_inventory, os_ecosystems
from ecrd.scanner.severity import Severity
from ecrd.scanner.versions import scheme_for
from tests.support.vulndata import record

PYPI = scheme_for("PyPI")
assert PYPI is not None


def events(*pairs: tuple[str, str]) -> list[Event]:
    return [Event(kind, version) for kind, version in pairs]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("0.9", Verdict(False)),
        ("1.0", Verdict(True, "1.5")),
        ("1.4.9", Verdict(True, "1.5")),
        ("1.5", Verdict(False)),
        ("1.9", Verdict(False)),
        ("2.0", Verdict(True, "2.1")),
        ("2.1", Verdict(False)),
        ("3.0", Verdict(True, None)),  # introduced again at 3.0, never fixed
    ],
)
def test_a_range_with_several_introduced_and_fixed_events(version: str, expected: Verdict) -> None:
    # Events in no particular order: OSV says to sort them by version before walking them.
    range_events = events(
        ("fixed", "2.1"), ("introduced", "1.0"), ("introduced", "3.0"), ("fixed", "1.5"), ("introduced", "2.0")
    )

    assert in_range(PYPI, range_events, version) == expected


@pytest.mark.parametrize(("version", "affected"), [("0.1", True), ("1.5.1", True), ("1.5.2", False)])
def test_last_affected_is_inclusive(version: str, affected: bool) -> None:
    assert in_range(PYPI, events(("introduced", "0"), ("last_affected", "1.5.1")), version).affected is affected


@pytest.mark.parametrize(("version", "affected"), [("1.0", True), ("1.9", True), ("2.0", False), ("3.0", False)])
def test_limit_ends_the_range(version: str, affected: bool) -> None:
    assert in_range(PYPI, events(("introduced", "1.0"), ("limit", "2.0")), version).affected is affected


def affected_entry(**fields: Any) -> AffectedPackage:
    defaults: dict[str, Any] = {"ecosystem": "PyPI", "name": "demo", "ranges": (), "versions": ()}
    return AffectedPackage(**{**defaults, **fields})


def test_a_version_in_the_explicit_list_is_affected_with_the_next_fix() -> None:
    entry = affected_entry(
        ranges=(
            Range("GIT", (Event("introduced", "abc123"), Event("fixed", "def456"))),
            Range("ECOSYSTEM", (Event("introduced", "0"), Event("fixed", "2.0"))),
        ),
        versions=("1.0", "1.1.0"),
    )

    # 1.1 is listed as "1.1.0": the same PEP 440 version.
    assert evaluate(entry, "1.1") == Verdict(True, "2.0")


def test_git_only_ranges_are_decided_by_the_version_list_alone() -> None:
    entry = affected_entry(
        ranges=(Range("GIT", (Event("introduced", "0"), Event("fixed", "def456"))),), versions=("1.0",)
    )

    assert evaluate(entry, "1.0") == Verdict(True, None)
    assert evaluate(entry, "1.1") == Verdict(False)


def test_a_range_whose_versions_cannot_be_ordered_is_skipped_and_noted() -> None:
    entry = affected_entry(ranges=(Range("ECOSYSTEM", (Event("introduced", "0"), Event("fixed", "not-a-version"))),))
    notes: list[str] = []

    assert evaluate(entry, "1.0", notes) == Verdict(False)
    assert notes and "not evaluated" in notes[0]


def osv(advisory_id: str, *, name: str = "demo", fixed: str = "2.0", **extra: Any) -> dict[str, Any]:
    return {
        "id": advisory_id,
        "modified": "2024-01-01T00:00:00Z",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": name},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
            }
        ],
        **extra,
    }


def pypi(name: str, version: str) -> Package:
    return Package(PackageType.PYPI, name, version, f"site-packages/{name}-{version}.dist-info/METADATA")


def test_withdrawn_records_are_skipped() -> None:
    index = AdvisoryIndex([osv("PYSEC-1", withdrawn="2024-02-01T00:00:00Z"), osv("PYSEC-2")])

    findings = match_inventory(None, [pypi("demo", "1.0")], index)

    assert [f.advisory_id for f in findings] == ["PYSEC-2"]


def test_pypi_names_match_after_pep_503_normalization() -> None:
    index = AdvisoryIndex([osv("PYSEC-1", name="Zope.Interface")])

    findings = match_inventory(None, [pypi("zope_interface", "1.0")], index)

    assert [(f.advisory_id, f.package_name) for f in findings] == [("PYSEC-1", "zope_interface")]


def test_a_finding_is_named_by_its_only_cve_else_by_the_advisory_id() -> None:
    index = AdvisoryIndex(
        [
            osv("PYSEC-1", aliases=["GHSA-aaaa-bbbb-cccc", "CVE-2024-0001"]),
            osv("PYSEC-2", aliases=["CVE-2024-0002", "CVE-2024-0003"]),
            osv("PYSEC-3"),
        ]
    )

    names = {f.advisory_id: f.name for f in match_inventory(None, [pypi("demo", "1.0")], index)}

    assert names == {"PYSEC-1": "CVE-2024-0001", "PYSEC-2": "PYSEC-2", "PYSEC-3": "PYSEC-3"}


def test_findings_are_sorted_by_severity_then_name() -> None:
    critical = [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]
    low = [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:L/A:N"}]
    index = AdvisoryIndex(
        [
            osv("PYSEC-B", severity=low),
            osv("PYSEC-C"),
            osv("PYSEC-A", severity=critical),
            osv("PYSEC-D", severity=critical),
        ]
    )

    findings = match_inventory(None, [pypi("demo", "1.0")], index)

    assert [(f.severity, f.name) for f in findings] == [
        (Severity.CRITICAL, "PYSEC-A"),
        (Severity.CRITICAL, "PYSEC-D"),
        (Severity.LOW, "PYSEC-B"),
        (Severity.UNDEFINED, "PYSEC-C"),
    ]


def test_one_finding_per_advisory_and_package_even_when_installed_twice() -> None:
    index = AdvisoryIndex([osv("PYSEC-1")])
    twice = [pypi("demo", "1.0"), Package(PackageType.PYPI, "demo", "1.0", "venv/demo-1.0.dist-info/METADATA")]

    assert len(match_inventory(None, twice, index)) == 1


# -- distribution packages -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("os", "package_type", "expected"),
    [
        (OperatingSystem("debian", "11"), PackageType.DEB, ("Debian:11",)),
        (OperatingSystem("debian", "6.0"), PackageType.DEB, ("Debian:6", "Debian:6.0")),
        (OperatingSystem("alpine", "3.11.6"), PackageType.APK, ("Alpine:v3.11",)),
        (OperatingSystem("ubuntu", "22.04"), PackageType.DEB, ("Ubuntu:22.04", "Ubuntu:22.04:LTS")),
        (OperatingSystem("almalinux", "9.2"), PackageType.RPM, ("AlmaLinux:9",)),
        (OperatingSystem("debian", None), PackageType.DEB, ()),
        (None, PackageType.DEB, ()),
    ],
)
def test_distribution_packages_are_matched_in_their_release_ecosystem(
    os: OperatingSystem | None, package_type: PackageType, expected: tuple[str, ...]
) -> None:
    assert os_ecosystems(os, package_type) == expected


def test_dpkg_packages_are_matched_by_source_name_and_version() -> None:
    package = Package(
        PackageType.DEB, "libssl1.1", "1.1.1n-0+deb11u3", "var/lib/dpkg/status", "openssl", "1.1.1n-0+deb11u3"
    )

    assert [(c.ecosystem, c.name, c.version) for c in coordinates(OperatingSystem("debian", "11"), package)] == [
        ("Debian:11", "openssl", "1.1.1n-0+deb11u3")
    ]


def debian_openssl(version: str) -> list[Package]:
    return [
        Package(PackageType.DEB, binary, version, "var/lib/dpkg/status", "openssl", version, "amd64")
        for binary in ("openssl", "libssl1.1")
    ]


def test_real_debian_security_advisories_match_an_old_bullseye_openssl() -> None:
    index = AdvisoryIndex(
        record("debian-dsa-dla", advisory_id) for advisory_id in ("DSA-5343-1", "DSA-5169-1", "DSA-5139-1")
    )

    findings = match_inventory(OperatingSystem("debian", "11"), debian_openssl("1.1.1n-0+deb11u3"), index)

    # DSA-5343-1 fixes five CVEs, so the finding keeps the DSA's name; DSA-5169-1 was fixed in this very version.
    assert [(f.name, f.package_name, f.package_version, f.fixed_version, f.ecosystem) for f in findings] == [
        ("DSA-5343-1", "openssl", "1.1.1n-0+deb11u3", "1.1.1n-0+deb11u4", "Debian:11")
    ]
    assert findings[0].uri == "https://security-tracker.debian.org/tracker/DSA-5343-1"
    assert findings[0].severity is Severity.UNDEFINED


def test_real_debian_advisories_do_not_match_the_fixed_version_or_another_release() -> None:
    index = AdvisoryIndex([record("debian-dsa-dla", "DSA-5343-1")])

    assert match_inventory(OperatingSystem("debian", "11"), debian_openssl("1.1.1n-0+deb11u4"), index) == []
    assert match_inventory(OperatingSystem("debian", "12"), debian_openssl("1.1.1n-0+deb11u3"), index) == []


def test_real_npm_advisories_choose_the_range_of_the_installed_branch() -> None:
    index = AdvisoryIndex(
        [record("npm-ghsa-sample", "GHSA-xvch-5gv4-984h"), record("npm-ghsa-sample", "GHSA-p6mc-m468-83gw")]
    )
    installed = [
        Package(PackageType.NPM, "minimist", "1.2.5", "a"),
        Package(PackageType.NPM, "minimist", "0.0.8", "b"),
        Package(PackageType.NPM, "lodash", "4.17.21", "c"),
    ]

    findings = match_inventory(None, installed, index)

    assert [(f.name, f.package_version, f.fixed_version, f.severity) for f in findings] == [
        ("CVE-2021-44906", "0.0.8", "0.2.4", Severity.CRITICAL),
        ("CVE-2021-44906", "1.2.5", "1.2.6", Severity.CRITICAL),
    ]


def test_a_finding_carries_the_cvss_vector_and_base_score() -> None:
    index = AdvisoryIndex([record("npm-ghsa-sample", "GHSA-p6mc-m468-83gw")])

    (finding,) = match_inventory(None, [Package(PackageType.NPM, "lodash", "4.17.15", "x")], index)

    advisory = parse_advisory(record("npm-ghsa-sample", "GHSA-p6mc-m468-83gw"))
    assert finding == Finding(
        name="CVE-2020-8203",
        description=advisory.details,
        uri="https://nvd.nist.gov/vuln/detail/CVE-2020-8203",
        severity=Severity.HIGH,
        package_name="lodash",
        package_version="4.17.15",
        fixed_version="4.17.20",
        ecosystem="npm",
        advisory_id="GHSA-p6mc-m468-83gw",
        cvss_score=7.4,
        cvss_vector="CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:H/A:H",
        modified=advisory.modified,
        references=tuple(dict.fromkeys(reference.url for reference in advisory.references)),
        vendor_severity="HIGH",
    )
