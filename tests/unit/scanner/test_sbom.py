"""The CycloneDX 1.5 SBOM: the document's shape, purls per package type, the OS component, determinism."""

from __future__ import annotations

import json

from ecrd.scanner import AdvisoryIndex, OperatingSystem, Package, PackageType, build_sbom, scan_layers
from ecrd.scanner.sbom import package_url
from tests.support.layers import file, layer, openers
from tests.support.vulndata import record

DIGEST = "sha256:" + "ab" * 32
DEBIAN_11 = OperatingSystem("debian", "11", "Debian GNU/Linux 11 (bullseye)")

STATUS = """\
Package: libssl1.1
Status: install ok installed
Architecture: amd64
Source: openssl
Version: 1.1.1n-0+deb11u3

Package: openssl
Status: install ok installed
Architecture: amd64
Version: 1.1.1n-0+deb11u3
"""


def scanned() -> object:
    index = AdvisoryIndex([record("debian-dsa-dla", "DSA-5343-1")])
    blob = layer(
        file("etc/os-release", 'ID=debian\nVERSION_ID="11"\nPRETTY_NAME="Debian GNU/Linux 11 (bullseye)"\n'),
        file("var/lib/dpkg/status", STATUS),
        file(
            "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA", "Name: six\nVersion: 1.16.0\nLicense: MIT\n"
        ),
    )
    return scan_layers(openers(blob), index)


def test_the_sbom_is_a_cyclonedx_1_5_document_of_the_image() -> None:
    sbom = build_sbom(scanned(), image_digest=DIGEST, image_name="registry.example/team/app")  # type: ignore[arg-type]

    assert (sbom["bomFormat"], sbom["specVersion"], sbom["version"]) == ("CycloneDX", "1.5", 1)
    assert sbom["serialNumber"].startswith("urn:uuid:")
    image = sbom["metadata"]["component"]
    assert (image["type"], image["name"], image["version"]) == ("container", "registry.example/team/app", DIGEST)
    assert image["purl"] == f"pkg:oci/app@sha256:{'ab' * 32}?repository_url=registry.example/team/app"


def test_the_sbom_lists_the_os_and_every_package_with_its_purl() -> None:
    components = build_sbom(scanned(), image_digest=DIGEST, image_name="app")["components"]  # type: ignore[arg-type]

    assert components[0] == {
        "type": "operating-system",
        "bom-ref": "os:debian@11",
        "name": "debian",
        "version": "11",
        "description": "Debian GNU/Linux 11 (bullseye)",
    }
    assert [c["purl"] for c in components[1:]] == [
        "pkg:deb/debian/libssl1.1@1.1.1n-0%2Bdeb11u3?arch=amd64&distro=debian-11",
        "pkg:deb/debian/openssl@1.1.1n-0%2Bdeb11u3?arch=amd64&distro=debian-11",
        "pkg:pypi/six@1.16.0",
    ]
    libssl = components[1]
    assert {"name": "ecrd:package:source_name", "value": "openssl"} in libssl["properties"]
    assert components[3]["licenses"] == [{"license": {"name": "MIT"}}]


def test_findings_become_vulnerabilities_that_affect_every_binary_of_the_source_package() -> None:
    sbom = build_sbom(scanned(), image_digest=DIGEST, image_name="app")  # type: ignore[arg-type]

    (vulnerability,) = sbom["vulnerabilities"]
    assert vulnerability["id"] == "DSA-5343-1"
    assert vulnerability["ratings"] == [{"severity": "unknown"}]
    assert vulnerability["recommendation"] == "Upgrade openssl to 1.1.1n-0+deb11u4 or later"
    assert [a["ref"] for a in vulnerability["affects"]] == [
        "pkg:deb/debian/libssl1.1@1.1.1n-0%2Bdeb11u3?arch=amd64&distro=debian-11",
        "pkg:deb/debian/openssl@1.1.1n-0%2Bdeb11u3?arch=amd64&distro=debian-11",
    ]


def test_the_sbom_is_byte_for_byte_the_same_for_the_same_image() -> None:
    first = json.dumps(build_sbom(scanned(), image_digest=DIGEST, image_name="app"))  # type: ignore[arg-type]
    second = json.dumps(build_sbom(scanned(), image_digest=DIGEST, image_name="app"))  # type: ignore[arg-type]
    other = build_sbom(scanned(), image_digest="sha256:" + "cd" * 32, image_name="app")  # type: ignore[arg-type]

    assert first == second
    assert json.loads(first)["serialNumber"] != other["serialNumber"]


def test_bom_refs_are_unique_when_a_package_is_installed_twice() -> None:
    blob = layer(
        file("a/node_modules/ms/package.json", '{"name":"ms","version":"2.0.0"}'),
        file("b/node_modules/ms/package.json", '{"name":"ms","version":"2.0.0"}'),
    )

    sbom = build_sbom(scan_layers(openers(blob), AdvisoryIndex()), image_digest=DIGEST, image_name="app")

    refs = [c["bom-ref"] for c in sbom["components"]]
    assert len(refs) == len(set(refs)) == 2


def test_purls_follow_each_package_types_conventions() -> None:
    alma = OperatingSystem("almalinux", "9.2")

    assert package_url(Package(PackageType.NPM, "@babel/core", "7.0.0", "x"), None) == "pkg:npm/%40babel/core@7.0.0"
    assert package_url(Package(PackageType.PYPI, "Zope_Interface", "5.0", "x"), None) == "pkg:pypi/zope-interface@5.0"
    assert package_url(Package(PackageType.RPM, "openssl-libs", "1:3.0.7-16.el9", "x", arch="x86_64"), alma) == (
        "pkg:rpm/almalinux/openssl-libs@3.0.7-16.el9?arch=x86_64&distro=almalinux-9.2&epoch=1"
    )
    assert package_url(
        Package(PackageType.APK, "musl", "1.1.24-r2", "x", arch="x86_64"), OperatingSystem("alpine", "3.11.6")
    ) == ("pkg:apk/alpine/musl@1.1.24-r2?arch=x86_64&distro=alpine-3.11.6")
