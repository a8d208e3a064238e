"""The vulnerability database on SQLite and PostgreSQL, loaded with the real OSV data in tests/data/vulndata, and
scans against it: this machine's own dpkg status, os-release and Python distributions, and synthetic Debian 11,
Alpine and npm images.

Importing all the data (about 17 MiB, 14,464 records) takes a second or two per back end, so the read-only tests
share one import per back end (module scope); tests that change the data get a fresh database each.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from packaging.version import Version

from ecrd.cli.main import main
from ecrd.config import Settings
from ecrd.errors import VulnerabilityDataInvalid
from ecrd.metadata.store import MetadataStore
from ecrd.scanner import Finding, OperatingSystem, PackageType, ScanResult, build_sbom, scan_layers
from ecrd.services.vulndb import ImportReport, VulnerabilityDatabase
from tests.support.databases import BACKENDS, database_url
from tests.support.layers import file, layer, machine_image_layer, openers
from tests.support.vulndata import DATA_FILES, record

RECORDS_IN_DATA = 2661 + 3 + 461 + 2437 + 8902  # per tests/data/vulndata/README.md


@dataclass
class Loaded:
    store: MetadataStore
    database: VulnerabilityDatabase
    report: ImportReport


@pytest.fixture(scope="module", params=BACKENDS)
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    with database_url(str(request.param), tmp_path_factory.mktemp("vulndb")) as url:
        store = MetadataStore(url)
        store.migrate()
        database = VulnerabilityDatabase(store)
        report = database.import_paths(DATA_FILES)
        yield Loaded(store, database, report)
        store.dispose()


@pytest.fixture
def fresh(settings: Settings) -> Iterator[VulnerabilityDatabase]:
    store = MetadataStore(settings.resolved_database_url)
    store.migrate()
    yield VulnerabilityDatabase(store, batch_size=2)
    store.dispose()


def findings_by_advisory(result: ScanResult) -> dict[str, Finding]:
    return {finding.advisory_id: finding for finding in result.findings}


# -- importing the real data ------------------------------------------------------------------------------


def test_importing_all_shared_data_stores_every_record(loaded: Loaded) -> None:
    report = loaded.report

    assert (report.records, report.inserted, report.updated, report.skipped) == (RECORDS_IN_DATA, RECORDS_IN_DATA, 0, 0)
    assert report.errors == ()


def test_status_counts_records_per_ecosystem(loaded: Loaded) -> None:
    status = loaded.database.status()
    ecosystems = {entry.ecosystem: entry.records for entry in status.ecosystems}

    assert status.records == RECORDS_IN_DATA
    assert ecosystems["PyPI"] == 2661
    assert ecosystems["npm"] == 3 + 461
    assert set(ecosystems) >= {"Debian:11", "Debian:3.0", "Alpine:v3.11", "Alpine:v3.3"}
    assert "Debian:12" not in ecosystems
    # The newest record in the data is a PyPI advisory of 2024-10-10, the day of its snapshot.
    assert status.newest_modified is not None
    assert datetime.fromtimestamp(status.newest_modified, UTC).date().isoformat() == "2024-10-10"
    assert status.last_import_at is not None and status.last_import_source is not None


def test_importing_the_same_data_again_changes_nothing(loaded: Loaded) -> None:
    before = loaded.database.status()

    again = loaded.database.import_paths(DATA_FILES)

    assert (again.records, again.inserted, again.updated, again.unchanged) == (RECORDS_IN_DATA, 0, 0, RECORDS_IN_DATA)
    after = loaded.database.status()
    assert (after.records, after.ecosystems, after.newest_modified) == (
        before.records,
        before.ecosystems,
        before.newest_modified,
    )


def test_lookup_normalizes_pypi_names_and_returns_each_record_once(loaded: Loaded) -> None:
    records = loaded.database.lookup("PyPI", ["Pip", "pip", "SetupTools"])
    ids = [r["id"] for r in records]

    assert "PYSEC-2023-228" in ids and "PYSEC-2022-43012" in ids
    assert len(ids) == len(set(ids)) and ids == sorted(ids)
    assert loaded.database.lookup("PyPI", ["no-such-package-anywhere"]) == []


# -- scanning against it ----------------------------------------------------------------------------------


def installed_dpkg_packages() -> set[str]:
    """Package names of installed packages in this machine's status file, read independently of the scanner."""
    names: set[str] = set()
    for paragraph in Path("/var/lib/dpkg/status").read_text().split("\n\n"):
        package = re.search(r"^Package: (\S+)$", paragraph, re.MULTILINE)
        status = re.search(r"^Status: .* installed$", paragraph, re.MULTILINE)
        if package and status:
            names.add(package.group(1))
    return names


@pytest.mark.skipif(not Path("/var/lib/dpkg/status").exists(), reason="needs a Debian machine")
def test_this_machines_real_packages_match_the_real_advisories(loaded: Loaded) -> None:
    os_release = dict(re.findall(r'^(\w+)="?([^"\n]*)"?$', Path("/etc/os-release").read_text(), re.MULTILINE))

    result = scan_layers(openers(machine_image_layer()), loaded.database)

    assert result.os == OperatingSystem(os_release["ID"], os_release["VERSION_ID"], os_release["PRETTY_NAME"])
    assert {p.name for p in result.packages if p.type is PackageType.DEB} == installed_dpkg_packages()
    findings = findings_by_advisory(result)
    # The README's matches, decided by the versions installed here (pip 23.2.1 and setuptools 65.5.0 on CI).
    for distribution, advisory_id, cve, fixed in (
        ("pip", "PYSEC-2023-228", "CVE-2023-5752", "23.3"),
        ("setuptools", "PYSEC-2022-43012", "CVE-2022-40897", "65.5.1"),
    ):
        installed = importlib.metadata.version(distribution)
        if Version(installed) < Version(fixed):
            finding = findings[advisory_id]
            assert (
                finding.name,
                finding.package_name,
                finding.package_version,
                finding.fixed_version,
                finding.ecosystem,
            ) == (cve, distribution, installed, fixed, "PyPI")
        else:
            assert advisory_id not in findings
    assert result.findings == tuple(sorted(result.findings, key=lambda f: f.sort_key))


def test_pip_23_2_1_on_this_machine_has_the_mercurial_injection_advisory(loaded: Loaded) -> None:
    if importlib.metadata.version("pip") != "23.2.1":
        pytest.skip("the README's pip match is for pip 23.2.1")

    result = scan_layers(openers(machine_image_layer()), loaded.database)

    finding = findings_by_advisory(result)["PYSEC-2023-228"]
    assert (finding.name, finding.fixed_version, finding.severity.value, finding.cvss_score) == (
        "CVE-2023-5752",
        "23.3",
        "LOW",
        3.3,
    )


DEBIAN_11_STATUS = """\
Package: libssl1.1
Status: install ok installed
Architecture: amd64
Source: openssl
Version: 1.1.1n-0+deb11u3

Package: openssl
Status: install ok installed
Architecture: amd64
Version: 1.1.1n-0+deb11u3

Package: xserver-common
Status: install ok installed
Architecture: all
Source: xorg-server
Version: 2:1.20.11-1+deb11u5

Package: base-files
Status: install ok installed
Architecture: amd64
Version: 11.1+deb11u6
"""


def test_a_bullseye_image_matches_real_debian_security_advisories_by_source_package(loaded: Loaded) -> None:
    blob = layer(
        file("etc/os-release", 'ID=debian\nVERSION_ID="11"\n'),
        file("var/lib/dpkg/status", DEBIAN_11_STATUS),
        compression="zstd",
    )

    result = scan_layers(openers(blob), loaded.database)

    found = {(f.advisory_id, f.package_name, f.package_version, f.fixed_version) for f in result.findings}
    assert ("DSA-5343-1", "openssl", "1.1.1n-0+deb11u3", "1.1.1n-0+deb11u4") in found
    assert ("DSA-5380-1", "xorg-server", "2:1.20.11-1+deb11u5", "2:1.20.11-1+deb11u6") in found
    # DSA-5169-1 was fixed in exactly the installed version.
    assert not any(f.advisory_id == "DSA-5169-1" for f in result.findings)
    assert {f.ecosystem for f in result.findings} == {"Debian:11"}
    # One finding per advisory and source package, though two openssl binaries are installed.
    assert sum(1 for f in result.findings if f.advisory_id == "DSA-5343-1") == 1
    assert findings_by_advisory(result)["DSA-5380-1"].name == "CVE-2023-1393"


def test_the_fixed_bullseye_openssl_has_no_openssl_findings(loaded: Loaded) -> None:
    status = DEBIAN_11_STATUS.replace("1.1.1n-0+deb11u3", "1.1.1n-0+deb11u4")
    blob = layer(file("etc/os-release", 'ID=debian\nVERSION_ID="11"\n'), file("var/lib/dpkg/status", status))

    result = scan_layers(openers(blob), loaded.database)

    assert not [f for f in result.findings if f.package_name == "openssl"]


def test_an_alpine_image_matches_real_secdb_advisories_of_its_branch(loaded: Loaded) -> None:
    installed = "P:libcrypto1.1\nV:1.1.1d-r2\nA:x86_64\no:openssl\n\nP:musl\nV:1.1.24-r0\nA:x86_64\no:musl\n"
    blob = layer(file("etc/os-release", "ID=alpine\nVERSION_ID=3.11.3\n"), file("lib/apk/db/installed", installed))

    result = scan_layers(openers(blob), loaded.database)

    findings = findings_by_advisory(result)
    assert (findings["ALPINE-CVE-2019-1551"].name, findings["ALPINE-CVE-2019-1551"].fixed_version) == (
        "CVE-2019-1551",
        "1.1.1d-r3",
    )
    assert "ALPINE-CVE-2019-1547" not in findings  # fixed in 1.1.1d-r1
    assert {f.ecosystem for f in result.findings} == {"Alpine:v3.11"}


def test_an_npm_image_matches_the_real_github_advisories(loaded: Loaded) -> None:
    blob = layer(
        file("srv/app/node_modules/lodash/package.json", json.dumps({"name": "lodash", "version": "4.17.15"})),
        file("srv/app/node_modules/minimist/package.json", json.dumps({"name": "minimist", "version": "1.2.5"})),
    )

    result = scan_layers(openers(blob), loaded.database)

    findings = findings_by_advisory(result)
    assert (
        findings["GHSA-p6mc-m468-83gw"].name,
        findings["GHSA-p6mc-m468-83gw"].fixed_version,
        findings["GHSA-p6mc-m468-83gw"].severity.value,
    ) == ("CVE-2020-8203", "4.17.20", "HIGH")
    assert (
        findings["GHSA-xvch-5gv4-984h"].name,
        findings["GHSA-xvch-5gv4-984h"].fixed_version,
        findings["GHSA-xvch-5gv4-984h"].severity.value,
    ) == ("CVE-2021-44906", "1.2.6", "CRITICAL")
    assert {f.package_name for f in result.findings} == {"lodash", "minimist"}
    sbom = build_sbom(result, image_digest="sha256:" + "0" * 64, image_name="app")
    assert {v["id"] for v in sbom["vulnerabilities"]} >= {"CVE-2020-8203", "CVE-2021-44906"}


# -- changing the data ------------------------------------------------------------------------------------


def osv(advisory_id: str, modified: str, package: str, fixed: str) -> dict[str, object]:
    return {
        "id": advisory_id,
        "modified": modified,
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": package},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
            }
        ],
    }


def write_jsonl(path: Path, *records: dict[str, object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_a_newer_record_replaces_the_stored_one_and_an_older_one_does_not(
    fresh: VulnerabilityDatabase, tmp_path: Path
) -> None:
    fresh.import_paths([write_jsonl(tmp_path / "v1.jsonl", osv("TEST-1", "2024-01-01T00:00:00Z", "alpha", "1.0"))])
    assert [r["id"] for r in fresh.lookup("PyPI", ["alpha"])] == ["TEST-1"]

    # When a newer version moves the record to another package
    newer = fresh.import_paths(
        [write_jsonl(tmp_path / "v2.jsonl", osv("TEST-1", "2024-02-01T00:00:00.5Z", "beta", "2.0"))]
    )
    older = fresh.import_paths(
        [write_jsonl(tmp_path / "v0.jsonl", osv("TEST-1", "2023-12-01T00:00:00Z", "gamma", "3.0"))]
    )

    # Then it is updated in place, found only under its new package, and the older version is ignored
    assert (newer.updated, newer.inserted, older.unchanged, older.updated) == (1, 0, 1, 0)
    assert fresh.lookup("PyPI", ["alpha"]) == [] and fresh.lookup("PyPI", ["gamma"]) == []
    (stored,) = fresh.lookup("PyPI", ["beta"])
    assert stored["affected"][0]["ranges"][0]["events"][1] == {"fixed": "2.0"}
    assert fresh.status().records == 1


def test_zip_archives_json_files_and_folders_import_recursively(fresh: VulnerabilityDatabase, tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "all.zip", "w") as archive:
        for advisory_id in ("GHSA-p6mc-m468-83gw", "GHSA-xvch-5gv4-984h", "GHSA-c2qf-rxjj-qqgw"):
            archive.writestr(f"{advisory_id}.json", json.dumps(record("npm-ghsa-sample", advisory_id)))
        archive.writestr("README.txt", "not a record")
    nested = tmp_path / "tree" / "PyPI" / "pip"
    nested.mkdir(parents=True)
    (nested / "PYSEC-2023-228.json").write_text(json.dumps(record("pypi", "PYSEC-2023-228")))
    (tmp_path / "tree" / "notes.md").write_text("ignored: not a data file")

    report = fresh.import_paths([tmp_path / "all.zip", tmp_path / "tree"])

    assert (report.records, report.inserted, report.skipped) == (4, 4, 0)
    assert {e.ecosystem: e.records for e in fresh.status().ecosystems} == {"npm": 3, "PyPI": 1}


def test_unreadable_records_are_skipped_and_reported(fresh: VulnerabilityDatabase, tmp_path: Path) -> None:
    data = tmp_path / "mixed.jsonl"
    data.write_text(
        json.dumps(osv("TEST-1", "2024-01-01T00:00:00Z", "alpha", "1.0")) + "\n"
        "{not json\n" + json.dumps({"id": "TEST-2"}) + "\n" + json.dumps("a string") + "\n"
    )

    report = fresh.import_paths([data])

    assert (report.records, report.inserted, report.skipped) == (2, 1, 3)
    assert any(":2: not JSON" in error for error in report.errors)
    assert any("missing modified time" in error for error in report.errors)


def test_a_missing_path_is_refused_before_anything_is_imported(fresh: VulnerabilityDatabase, tmp_path: Path) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", osv("TEST-1", "2024-01-01T00:00:00Z", "alpha", "1.0"))

    with pytest.raises(VulnerabilityDataInvalid, match="no such file"):
        fresh.import_paths([good, tmp_path / "missing.jsonl"])

    assert fresh.status().records == 0


# -- the command line -------------------------------------------------------------------------------------


def test_the_cli_imports_and_reports_status(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_jsonl(tmp_path / "one.jsonl", osv("TEST-1", "2024-01-01T00:00:00Z", "alpha", "1.0"))
    settings.data_dir.mkdir(parents=True)  # the registry's data directory: admin commands refuse a missing one
    flags = ["--data-dir", str(settings.data_dir), "--database-url", settings.resolved_database_url]

    assert main(["vulndb", "import", str(data), *flags]) == 0
    assert "1 new" in capsys.readouterr().out
    assert main(["vulndb", "status", "--json", *flags]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["records"], status["ecosystems"], status["newestModified"]) == (
        1,
        {"PyPI": 1},
        "2024-01-01T00:00:00Z",
    )
    assert main(["vulndb", "status", *flags]) == 0
    assert "PyPI" in capsys.readouterr().out
    assert main(["vulndb", "import", str(tmp_path / "missing.jsonl"), *flags]) == 2
