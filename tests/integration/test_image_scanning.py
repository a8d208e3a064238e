"""Scan on push, StartImageScan and the findings API, with the real advisory data and this machine's packages."""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from packaging.version import Version
from starlette.testclient import TestClient

from ecrd.app import Registry, build_registry
from ecrd.config import Settings
from tests.integration.test_ecr_api import client_for, error_code
from tests.integration.test_vulndb_and_scan import machine_image_layer
from tests.support.layers import file, layer
from tests.support.live_server import live_server
from tests.support.oci import Blob, config_blob, digest_of, image_manifest, push_blob, push_manifest
from tests.support.vulndata import VULNDATA

LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"


@pytest.fixture
def endpoint(registry: Registry) -> Iterator[str]:
    registry.vulndb.import_paths([VULNDATA / "pypi.osv.jsonl"])
    with live_server(registry) as url:
        yield url


def _push(client: TestClient, name: str, tag: str, layer_bytes: bytes) -> str:
    config, blob = config_blob(), Blob(layer_bytes, LAYER_TYPE)
    for item in (config, blob):
        push_blob(client, name, item)
    manifest = image_manifest(config, [blob])
    push_manifest(client, name, tag, manifest)
    return digest_of(manifest)


def _findings(ecr: Any, name: str, tag: str) -> dict[str, Any]:
    pages = list(
        ecr.get_paginator("describe_image_scan_findings").paginate(
            repositoryName=name, imageId={"imageTag": tag}, PaginationConfig={"PageSize": 50}
        )
    )
    merged = pages[0]
    merged["imageScanFindings"]["findings"] = [f for p in pages for f in p["imageScanFindings"]["findings"]]
    return merged


@pytest.mark.skipif(not Path("/var/lib/dpkg/status").exists(), reason="needs a Debian machine")
def test_scan_on_push_reports_real_advisories_of_this_machine(
    endpoint: str, client: TestClient, registry: Registry
) -> None:
    ecr = client_for(endpoint, "ecr")
    ecr.create_repository(repositoryName="scanned", imageScanningConfiguration={"scanOnPush": True})
    digest = _push(client, "scanned", "v1", machine_image_layer())
    status = ecr.describe_images(repositoryName="scanned")["imageDetails"][0]["imageScanStatus"]["status"]
    assert status == "IN_PROGRESS"  # queued with the push, not run by it

    assert registry.jobs.drain() == 1

    result = _findings(ecr, "scanned", "v1")
    assert result["imageScanStatus"] == {"status": "COMPLETE", "description": "The scan was completed successfully."}
    findings = {f["name"]: f for f in result["imageScanFindings"]["findings"]}
    pip = importlib.metadata.version("pip")
    if Version(pip) < Version("23.3"):
        attributes = {a["key"]: a["value"] for a in findings["CVE-2023-5752"]["attributes"]}
        assert attributes["package_name"] == "pip"
        assert attributes["package_version"] == pip
    counts = result["imageScanFindings"]["findingSeverityCounts"]
    assert sum(counts.values()) == len(findings) or sum(counts.values()) >= len(findings)
    detail = ecr.describe_images(repositoryName="scanned", imageIds=[{"imageDigest": digest}])["imageDetails"][0]
    assert detail["imageScanFindingsSummary"]["findingSeverityCounts"] == counts
    referrers = client.get(f"/v2/scanned/referrers/{digest}?artifactType=application/vnd.cyclonedx%2Bjson").json()
    assert len(referrers["manifests"]) == 1
    sbom = registry.scanning.sbom(registry.registry.get_repository("scanned"), digest)
    assert sbom["bomFormat"] == "CycloneDX"
    assert sbom["specVersion"] == "1.5"
    assert any(c.get("name") == "pip" for c in sbom["components"])


def test_scratch_image_is_unsupported(endpoint: str, client: TestClient, registry: Registry) -> None:
    ecr = client_for(endpoint, "ecr")
    ecr.create_repository(repositoryName="scratch", imageScanningConfiguration={"scanOnPush": True})
    _push(client, "scratch", "v1", layer(file("hello", b"just a static binary")))
    registry.jobs.drain()
    status = _findings(ecr, "scratch", "v1")["imageScanStatus"]
    assert status["status"] == "UNSUPPORTED_IMAGE"
    assert "scratch" in status["description"]


def test_manual_scan_once_a_day_and_findings_need_a_scan(endpoint: str, client: TestClient, registry: Registry) -> None:
    ecr = client_for(endpoint, "ecr")
    ecr.create_repository(repositoryName="manual")
    _push(client, "manual", "v1", layer(file("etc/os-release", "ID=alpine\nVERSION_ID=3.11.6\n")))
    with pytest.raises(ClientError) as none_yet:
        ecr.describe_image_scan_findings(repositoryName="manual", imageId={"imageTag": "v1"})
    assert error_code(none_yet) == "ScanNotFoundException"
    started = ecr.start_image_scan(repositoryName="manual", imageId={"imageTag": "v1"})
    assert started["imageScanStatus"]["status"] == "IN_PROGRESS"
    with pytest.raises(ClientError) as again:
        ecr.start_image_scan(repositoryName="manual", imageId={"imageTag": "v1"})
    assert error_code(again) == "LimitExceededException"
    registry.jobs.drain()
    assert _findings(ecr, "manual", "v1")["imageScanStatus"]["status"] == "COMPLETE"


def test_registry_rules_decide_scan_on_push(endpoint: str, client: TestClient, registry: Registry) -> None:
    ecr = client_for(endpoint, "ecr")
    ecr.put_registry_scanning_configuration(
        scanType="BASIC",
        rules=[
            {"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "prod-*", "filterType": "WILDCARD"}]}
        ],
    )
    for name in ("prod-api", "dev-api"):
        ecr.create_repository(repositoryName=name)
    configurations = ecr.batch_get_repository_scanning_configuration(repositoryNames=["prod-api", "dev-api"])
    by_name = {c["repositoryName"]: c for c in configurations["scanningConfigurations"]}
    assert by_name["prod-api"]["scanFrequency"] == "SCAN_ON_PUSH"
    assert by_name["dev-api"]["scanFrequency"] == "MANUAL"
    for name in ("prod-api", "dev-api"):
        _push(client, name, "v1", layer(file("etc/os-release", "ID=alpine\nVERSION_ID=3.11.6\n")))
    assert registry.jobs.drain() == 1


def test_a_queued_scan_survives_a_restart(settings: Settings, client: TestClient, registry: Registry) -> None:
    registry.registry.create_repository("durable", scan_on_push=True)
    _push(client, "durable", "v1", layer(file("etc/os-release", "ID=alpine\nVERSION_ID=3.11.6\n")))
    # The process that queued the scan stops before running it; a new one starts on the same data.
    registry.close()
    restarted = build_registry(settings)
    try:
        assert restarted.jobs.drain() == 1
        repository = restarted.registry.get_repository("durable")
        digests = [
            digest for digest, _tag in restarted.registry.image_ids(repository, tag_status="ANY", after=None, limit=10)
        ]
        records = restarted.scanning.scan_summaries(repository, digests)
        assert [r.status for r in records.values()] == ["COMPLETE"]
    finally:
        restarted.close()


def test_findings_pages_do_not_repeat(endpoint: str, client: TestClient, registry: Registry) -> None:
    ecr = client_for(endpoint, "ecr")
    ecr.create_repository(repositoryName="paged", imageScanningConfiguration={"scanOnPush": True})
    site = "usr/lib/python3/site-packages"
    old = [("django", "1.2"), ("requests", "2.0.0"), ("urllib3", "1.20"), ("jinja2", "2.0"), ("pyyaml", "3.10")]
    entries = [file("etc/os-release", "ID=debian\nVERSION_ID=11\n")]
    entries += [
        file(f"{site}/{n}-{v}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {n}\nVersion: {v}\n") for n, v in old
    ]
    _push(client, "paged", "v1", layer(*entries))
    registry.jobs.drain()
    first = ecr.describe_image_scan_findings(repositoryName="paged", imageId={"imageTag": "v1"}, maxResults=5)
    names = [f["name"] + f["attributes"][0]["value"] for f in first["imageScanFindings"]["findings"]]
    assert len(names) == 5 and first.get("nextToken")
    rest = _findings(ecr, "paged", "v1")["imageScanFindings"]["findings"]
    assert len(rest) > 5
    assert json.dumps(rest[:5], sort_keys=True) == json.dumps(first["imageScanFindings"]["findings"], sort_keys=True)


def test_the_cli_prints_the_sbom_of_a_scanned_image(
    settings: Settings, client: TestClient, registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    from ecrd.cli.main import main

    registry.registry.create_repository("cli", scan_on_push=True)
    entries = [
        file("etc/os-release", "ID=alpine\nVERSION_ID=3.11.6\n"),
        file("lib/apk/db/installed", "P:musl\nV:1.1.24-r2\no:musl\n\n"),
    ]
    digest = _push(client, "cli", "v1", layer(*entries))
    registry.jobs.drain()
    flags = ["--data-dir", str(settings.data_dir), "--database-url", settings.resolved_database_url]
    assert main(["sbom", "--repository-name", "cli", "--image", "v1", *flags]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["bomFormat"] == "CycloneDX"
    assert any(c.get("name") == "musl" for c in document["components"])
    assert digest in json.dumps(document)
    assert main(["sbom", "--repository-name", "cli", "--image", "nope", *flags]) == 1
