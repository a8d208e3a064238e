"""Enhanced scanning's answers match botocore's ECR model exactly: the ENHANCED configuration, the images'
ACTIVE status and summaries, and ``enhancedFindings`` with their package details, scores and remediation,
after a re-match closed one finding and opened another."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from ecrd.app import Registry
from tests.contract.test_ecr_contract import checked_ecr  # noqa: F401 (the fixture)
from tests.integration.test_continuous_scanning import data_a, data_b, python_image
from tests.integration.test_vulndb_generation import push


def test_enhanced_scanning_answers_match_the_model(
    checked_ecr: tuple[Any, list[str], set[str]],  # noqa: F811
    client: TestClient,
    registry: Registry,
    tmp_path: Path,
) -> None:
    ecr, problems, seen = checked_ecr
    registry.vulndb.import_paths([data_a(tmp_path)])
    ecr.put_registry_scanning_configuration(
        scanType="ENHANCED",
        rules=[{"scanFrequency": "CONTINUOUS_SCAN", "repositoryFilters": [{"filter": "*", "filterType": "WILDCARD"}]}],
    )
    ecr.create_repository(repositoryName="enhanced")
    push(client, "enhanced", "v1", python_image(("alpha", "0.9"), ("beta", "0.5")))
    ecr.describe_images(repositoryName="enhanced")  # PENDING before its scan
    registry.jobs.drain()
    registry.vulndb.import_paths([data_b(tmp_path)])
    registry.jobs.drain()

    found = ecr.describe_image_scan_findings(repositoryName="enhanced", imageId={"imageTag": "v1"})
    ecr.describe_image_scan_findings(repositoryName="enhanced", imageId={"imageTag": "v1"}, maxResults=1)
    ecr.describe_images(repositoryName="enhanced")
    ecr.get_registry_scanning_configuration()
    ecr.batch_get_repository_scanning_configuration(repositoryNames=["enhanced"])

    assert problems == []
    assert {"DescribeImageScanFindings", "DescribeImages", "PutRegistryScanningConfiguration"} <= seen
    statuses = [f["status"] for f in found["imageScanFindings"]["enhancedFindings"]]
    assert statuses == ["ACTIVE", "CLOSED"]
