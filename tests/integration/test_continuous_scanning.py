"""Enhanced scanning with CONTINUOUS_SCAN rules: an advisory import re-matches the stored inventories of the
images under a continuous rule — no layer is read again — and only their findings change, audited and reported.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from sqlalchemy import update
from starlette.testclient import TestClient

from ecrd.app import Registry, build_registry
from ecrd.config import Settings
from ecrd.metadata import inventories as inventory_queries
from ecrd.metadata.inventories import ReplacedFindings
from ecrd.metadata.jobs_tables import image_scans
from ecrd.services.jobs import JobRunner
from ecrd.services.rematch import FINDINGS_CHANGED_ACTION, REMATCH_PRINCIPAL, FindingsRematch
from ecrd.services.scanning import FindingsChange
from ecrd.services.vulndb import REMATCH_JOB
from tests.integration.test_ecr_api import error_code
from tests.integration.test_vulndb_generation import advisory, data_file, push
from tests.support.layers import file, layer

SITE = "usr/lib/python3/site-packages"
CONTINUOUS = "Continuous scan is selected for image."


def python_image(*packages: tuple[str, str]) -> bytes:
    """A Debian 11 layer with the given installed Python distributions."""
    entries = [file("etc/os-release", "ID=debian\nVERSION_ID=11\n")]
    entries += [
        file(
            f"{SITE}/{name}-{version}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        )
        for name, version in packages
    ]
    return layer(*entries)


def enhanced_configuration(ecr: Any) -> None:
    ecr.put_registry_scanning_configuration(
        scanType="ENHANCED",
        rules=[
            {"scanFrequency": "CONTINUOUS_SCAN", "repositoryFilters": [{"filter": "cont-*", "filterType": "WILDCARD"}]},
            {"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "push-*", "filterType": "WILDCARD"}]},
        ],
    )


def enhanced(ecr: Any, name: str, tag: str = "v1") -> dict[str, Any]:
    return dict(ecr.describe_image_scan_findings(repositoryName=name, imageId={"imageTag": tag}))


def statuses(result: dict[str, Any]) -> dict[str, str]:
    return {
        f["packageVulnerabilityDetails"]["vulnerabilityId"]: f["status"]
        for f in result["imageScanFindings"]["enhancedFindings"]
    }


def data_a(tmp_path: Path) -> Path:
    return data_file(tmp_path / "a.jsonl", advisory("TEST-ALPHA-1", "2024-01-01T00:00:00Z", "alpha", "1.0"))


def data_b(tmp_path: Path) -> Path:
    """Withdraws TEST-ALPHA-1 and adds TEST-BETA-1, which the images' beta 0.5 falls under."""
    withdrawn = {
        **advisory("TEST-ALPHA-1", "2024-02-01T00:00:00Z", "alpha", "1.0"),
        "withdrawn": "2024-02-01T00:00:00Z",
    }
    beta = advisory("TEST-BETA-1", "2024-02-02T00:00:00Z", "beta", "2.0")
    beta["severity"] = [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]
    return data_file(tmp_path / "b.jsonl", withdrawn, beta)


def test_an_import_changes_the_findings_of_continuously_scanned_images_only(
    ecr: Any, client: TestClient, registry: Registry, settings: Settings, tmp_path: Path
) -> None:
    # Given an ENHANCED registry, one image under a continuous rule and one scanned on push only
    registry.vulndb.import_paths([data_a(tmp_path)])
    enhanced_configuration(ecr)
    for name in ("cont-app", "push-app"):
        ecr.create_repository(repositoryName=name)
        push(client, name, "v1", python_image(("alpha", "0.9"), ("beta", "0.5")))
    assert registry.jobs.drain() == 3  # the two scans, and the re-match the configuration queued (nothing to do)
    first = enhanced(ecr, "cont-app")
    assert first["imageScanStatus"] == {"status": "ACTIVE", "description": CONTINUOUS}
    assert statuses(first) == {"TEST-ALPHA-1": "ACTIVE"}
    before_push_app = enhanced(ecr, "push-app")
    changes: list[FindingsChange] = []
    registry.scanning.on_findings_changed.append(lambda _conn, change, _now: changes.append(change))

    # When new advisory data is imported, with no layer left to read
    shutil.rmtree(settings.data_dir / "blobs")
    registry.vulndb.import_paths([data_b(tmp_path)])
    assert registry.jobs.drain() == 1

    # Then the continuous image's findings follow it: the withdrawn advisory closed, the new one open
    after = enhanced(ecr, "cont-app")
    assert statuses(after) == {"TEST-BETA-1": "ACTIVE", "TEST-ALPHA-1": "CLOSED"}
    beta = after["imageScanFindings"]["enhancedFindings"][0]
    assert beta["fixAvailable"] == "YES"
    assert beta["score"] == 9.8 and beta["severity"] == "CRITICAL"
    packages = beta["packageVulnerabilityDetails"]["vulnerablePackages"]
    assert [(p["name"], p["version"], p["fixedInVersion"], p["packageManager"]) for p in packages] == [
        ("beta", "0.5", "2.0", "PYTHONPKG")
    ]
    assert beta["firstObservedAt"] == beta["updatedAt"]
    alpha = after["imageScanFindings"]["enhancedFindings"][1]
    assert alpha["firstObservedAt"] == first["imageScanFindings"]["enhancedFindings"][0]["firstObservedAt"]
    assert after["imageScanFindings"]["findingSeverityCounts"] == {"CRITICAL": 1}
    assert after["imageScanStatus"]["status"] == "ACTIVE"

    # And the image scanned on push only is as it was
    assert enhanced(ecr, "push-app")["imageScanFindings"] == before_push_app["imageScanFindings"]

    # And the change is audited and reported, for the continuous image alone
    events = registry.audit.events(action=FINDINGS_CHANGED_ACTION)
    assert [(e.principal, e.repository) for e in events] == [(REMATCH_PRINCIPAL, "cont-app")]
    assert [(c.repository, c.opened, c.closed) for c in changes] == [("cont-app", ("TEST-BETA-1",), ("TEST-ALPHA-1",))]
    # and written to the event outbox as an "ECR Image Scan" event with the new counts, in the same transaction
    # (the newest of the repository's scan events; its push's scan wrote the first)
    scan_event = registry.events.recent(detail_type="ECR Image Scan", repository="cont-app")[0]
    assert scan_event.envelope["detail"]["finding-severity-counts"] == {"CRITICAL": 1}
    assert scan_event.envelope["detail"]["image-tags"] == ["v1"]

    # And importing the same data again changes nothing and queues nothing
    registry.vulndb.import_paths([data_b(tmp_path)])
    assert registry.jobs.drain() == 0


def test_re_matching_resumes_after_a_restart_at_the_batch_it_reached(
    ecr: Any, client: TestClient, registry: Registry, settings: Settings, tmp_path: Path
) -> None:
    # Given five continuously scanned images
    registry.vulndb.import_paths([data_a(tmp_path)])
    enhanced_configuration(ecr)
    ecr.create_repository(repositoryName="cont-many")
    for n in range(5):
        push(client, "cont-many", f"v{n}", python_image(("alpha", "0.9"), ("beta", f"0.{n}")))
    registry.jobs.drain()
    registry.vulndb.import_paths([data_b(tmp_path)])

    # When a process re-matches one batch of two and stops
    small = FindingsRematch(registry.store, registry.scanning, registry.vulndb, batch_size=2)
    assert JobRunner(registry.store, {REMATCH_JOB: small.run_job}).run_once()
    assert len(registry.audit.events(action=FINDINGS_CHANGED_ACTION)) == 2
    registry.close()

    # Then a new process on the same data re-matches the rest from there, each image once
    restarted = build_registry(settings)
    try:
        assert restarted.jobs.drain() == 1
        events = restarted.audit.events(action=FINDINGS_CHANGED_ACTION)
        assert len(events) == 5
        repository = restarted.registry.get_repository("cont-many")
        records = [
            restarted.scanning.scan_record(repository, d)
            for d, _tag in restarted.registry.image_ids(repository, tag_status="TAGGED", after=None, limit=10)
        ]
        assert len(records) == 5
        assert {f["name"] for r in records for f in r.findings} == {"TEST-BETA-1"}
    finally:
        restarted.close()


def test_continuous_scan_needs_enhanced_scanning(ecr: Any, registry: Registry, tmp_path: Path) -> None:
    rules = [{"scanFrequency": "CONTINUOUS_SCAN", "repositoryFilters": [{"filter": "*", "filterType": "WILDCARD"}]}]
    with pytest.raises(ClientError) as refused:
        ecr.put_registry_scanning_configuration(scanType="BASIC", rules=rules)
    assert error_code(refused) == "InvalidParameterException"

    ecr.put_registry_scanning_configuration(scanType="ENHANCED", rules=rules)
    configuration = ecr.get_registry_scanning_configuration()["scanningConfiguration"]
    assert configuration == {"scanType": "ENHANCED", "rules": rules}
    ecr.create_repository(repositoryName="any")
    scanning = ecr.batch_get_repository_scanning_configuration(repositoryNames=["any"])["scanningConfigurations"]
    assert (scanning[0]["scanFrequency"], scanning[0]["scanOnPush"]) == ("CONTINUOUS_SCAN", True)


def test_a_basic_registry_is_not_re_matched(ecr: Any, client: TestClient, registry: Registry, tmp_path: Path) -> None:
    registry.vulndb.import_paths([data_a(tmp_path)])
    ecr.create_repository(repositoryName="basic", imageScanningConfiguration={"scanOnPush": True})
    push(client, "basic", "v1", python_image(("alpha", "0.9"), ("beta", "0.5")))
    registry.jobs.drain()
    registry.vulndb.import_paths([data_b(tmp_path)])
    assert registry.jobs.drain() == 0
    result = ecr.describe_image_scan_findings(repositoryName="basic", imageId={"imageTag": "v1"})
    assert result["imageScanStatus"]["status"] == "COMPLETE"
    assert [f["name"] for f in result["imageScanFindings"]["findings"]] == ["TEST-ALPHA-1"]
    assert "enhancedFindings" not in result["imageScanFindings"]


def test_a_scan_that_finished_meanwhile_keeps_its_findings(
    ecr: Any, client: TestClient, registry: Registry, tmp_path: Path
) -> None:
    # Given a continuously scanned image whose findings a re-match has read
    registry.vulndb.import_paths([data_a(tmp_path)])
    enhanced_configuration(ecr)
    ecr.create_repository(repositoryName="cont-race")
    push(client, "cont-race", "v1", python_image(("alpha", "0.9")))
    registry.jobs.drain()
    repository = registry.registry.get_repository("cont-race")
    with registry.store.read() as conn:
        (read,) = inventory_queries.batch_to_rematch(conn, [repository.id], 10**9, None, 10)

    # When a scan completes before the re-match writes
    with registry.store.write() as conn:
        conn.execute(
            update(image_scans)
            .where(image_scans.c.repository_id == repository.id, image_scans.c.digest == read.digest)
            .values(completed_at=read.completed_at + 1.0)
        )
        replaced = ReplacedFindings(repository.id, read.digest, read.completed_at, 0.0, None, {}, [], [])
        written = inventory_queries.replace_findings(conn, [replaced])

    # Then the re-match writes nothing over it
    assert written == set()
    assert [f["name"] for f in registry.scanning.scan_record(repository, read.digest).findings] == ["TEST-ALPHA-1"]


def test_the_import_command_queues_the_re_match_and_says_so(
    ecr: Any, registry: Registry, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ecrd.cli.main import main

    flags = ["--data-dir", str(settings.data_dir), "--database-url", settings.resolved_database_url]
    assert main(["vulndb", "import", "--json", str(data_a(tmp_path)), *flags]) == 0
    assert json.loads(capsys.readouterr().out)["rematch_queued"] is False
    enhanced_configuration(ecr)
    registry.jobs.drain()

    assert main(["vulndb", "import", str(data_b(tmp_path)), *flags]) == 0
    assert "re-matched against the new advisories in the background" in capsys.readouterr().out
    assert registry.jobs.drain() == 1
