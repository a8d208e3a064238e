"""The scanner's entry point: layers in, inventory and findings out; scratch images; ECR's finding shape."""

from __future__ import annotations

import json

from ecrd.scanner import AdvisoryIndex, Finding, OperatingSystem, Severity, finding_to_ecr, scan_layers
from ecrd.scanner.scan import MAX_ATTRIBUTE_VALUE
from tests.support.layers import file, layer, openers, whiteout
from tests.support.vulndata import record

ALPINE_3_11 = 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.11.6\nPRETTY_NAME="Alpine Linux v3.11"\n'


def test_an_image_with_neither_os_nor_packages_is_unsupported_as_scratch_images_are() -> None:
    result = scan_layers(openers(layer(file("app/server", b"\x7fELF"))), AdvisoryIndex())

    assert result.unsupported_reason is not None and "scratch" in result.unsupported_reason
    assert (result.os, result.packages, result.findings) == (None, (), ())


def test_an_image_with_packages_but_no_os_release_is_still_scanned() -> None:
    index = AdvisoryIndex([record("npm-ghsa-sample", "GHSA-p6mc-m468-83gw")])
    blob = layer(file("app/node_modules/lodash/package.json", json.dumps({"name": "lodash", "version": "4.17.19"})))

    result = scan_layers(openers(blob), index)

    assert result.unsupported_reason is None and result.os is None
    assert [(f.name, f.package_name) for f in result.findings] == [("CVE-2020-8203", "lodash")]


def test_alpine_packages_match_real_secdb_advisories_by_origin_and_branch() -> None:
    index = AdvisoryIndex(
        record("alpine-secdb", advisory_id) for advisory_id in ("ALPINE-CVE-2019-1551", "ALPINE-CVE-2019-1547")
    )
    installed = "P:libcrypto1.1\nV:1.1.1d-r2\nA:x86_64\no:openssl\n\nP:libssl1.1\nV:1.1.1d-r2\nA:x86_64\no:openssl\n"

    result = scan_layers(
        openers(layer(file("etc/os-release", ALPINE_3_11), file("lib/apk/db/installed", installed))), index
    )

    assert result.os == OperatingSystem("alpine", "3.11.6", "Alpine Linux v3.11")
    # CVE-2019-1547 was fixed in 1.1.1d-r1, before the installed -r2; CVE-2019-1551 only in -r3.
    assert [(f.name, f.package_name, f.package_version, f.fixed_version, f.ecosystem) for f in result.findings] == [
        ("CVE-2019-1551", "openssl", "1.1.1d-r2", "1.1.1d-r3", "Alpine:v3.11")
    ]


def test_a_package_deleted_by_an_upper_layer_is_not_reported() -> None:
    index = AdvisoryIndex([record("npm-ghsa-sample", "GHSA-p6mc-m468-83gw")])
    manifest = json.dumps({"name": "lodash", "version": "4.17.19"})
    lower = layer(
        file("etc/os-release", ALPINE_3_11), file("app/node_modules/lodash/package.json", manifest), compression="zstd"
    )
    upper = layer(whiteout("app/node_modules/lodash"), compression="none")

    result = scan_layers(openers(lower, upper), index)

    assert result.packages == () and result.findings == ()


def finding(**fields: object) -> Finding:
    defaults: dict[str, object] = {
        "name": "CVE-2020-8203",
        "description": "Prototype pollution",
        "uri": "https://nvd.nist.gov/x",
        "severity": Severity.HIGH,
        "package_name": "lodash",
        "package_version": "4.17.15",
        "fixed_version": "4.17.20",
        "ecosystem": "npm",
        "advisory_id": "GHSA-p6mc-m468-83gw",
        "cvss_score": 7.4,
        "cvss_vector": "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:H/A:H",
    }
    return Finding(**{**defaults, **fields})  # type: ignore[arg-type]


def test_a_finding_in_ecr_shape_carries_package_cvss_and_fixed_version_attributes() -> None:
    assert finding_to_ecr(finding()) == {
        "name": "CVE-2020-8203",
        "description": "Prototype pollution",
        "uri": "https://nvd.nist.gov/x",
        "severity": "HIGH",
        "attributes": [
            {"key": "package_version", "value": "4.17.15"},
            {"key": "package_name", "value": "lodash"},
            {"key": "CVSS3_VECTOR", "value": "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:H/A:H"},
            {"key": "CVSS3_SCORE", "value": "7.4"},
            {"key": "fixed_version", "value": "4.17.20"},
        ],
    }


def test_ecr_attributes_name_the_cvss_version_and_drop_what_is_missing_or_unfixed() -> None:
    v2 = finding_to_ecr(finding(cvss_vector="AV:N/AC:L/Au:N/C:P/I:P/A:P", cvss_score=7.5))
    none = finding_to_ecr(finding(cvss_vector=None, cvss_score=None, severity=Severity.UNDEFINED, fixed_version=None))

    assert [a["key"] for a in v2["attributes"]] == [
        "package_version",
        "package_name",
        "CVSS2_VECTOR",
        "CVSS2_SCORE",
        "fixed_version",
    ]
    assert [a["key"] for a in none["attributes"]] == ["package_version", "package_name"]
    assert none["severity"] == "UNDEFINED"


def test_ecr_attribute_values_stay_within_the_models_limits() -> None:
    shaped = finding_to_ecr(finding(package_name="p" * 300, package_version="1." + "0" * 400))

    assert all(1 <= len(a["value"]) <= MAX_ATTRIBUTE_VALUE and 1 <= len(a["key"]) <= 128 for a in shaped["attributes"])
    assert len(shaped["attributes"]) <= 50


def test_severity_counts_list_only_severities_that_occur() -> None:
    index = AdvisoryIndex(
        [record("npm-ghsa-sample", "GHSA-p6mc-m468-83gw"), record("npm-ghsa-sample", "GHSA-xvch-5gv4-984h")]
    )
    blob = layer(
        file("n/node_modules/lodash/package.json", json.dumps({"name": "lodash", "version": "4.0.0"})),
        file("n/node_modules/minimist/package.json", json.dumps({"name": "minimist", "version": "1.2.0"})),
    )

    assert scan_layers(openers(blob), index).severity_counts == {"CRITICAL": 1, "HIGH": 1}
