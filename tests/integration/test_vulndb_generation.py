"""Advisory data that every server process sees at once, and scans that never pass for clean falsely.

An import by any process (another ``ecrd serve`` worker, another node, the ``ecrd vulndb import`` command)
changes the advisory generation in the same transactions as its data, so the next scan anywhere reads the new
data instead of a cached answer. A scan against an empty advisory database says so, and may be run again at
once; so may a scan whose advisory data has been superseded by a newer import.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError
from starlette.testclient import TestClient

from ecrd.app import Registry, asgi_app, build_registry
from ecrd.cli.main import main
from ecrd.config import Settings
from ecrd.services.scanning import EMPTY_DATABASE_DESCRIPTION
from tests.conftest import ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY, basic_auth_for
from tests.integration.test_ecr_api import client_for, error_code
from tests.support.layers import file, layer
from tests.support.oci import Blob, config_blob, digest_of, image_manifest, push_blob, push_manifest
from tests.support.registry_process import EcrdProcess

LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
SITE = "usr/lib/python3/site-packages"
COMPLETED = "The scan was completed successfully."


def advisory(advisory_id: str, modified: str, package: str = "alpha", fixed: str = "1.0") -> dict[str, Any]:
    return {
        "id": advisory_id,
        "modified": modified,
        "summary": f"{package} before {fixed} is vulnerable",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": package},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
            }
        ],
    }


def data_file(path: Path, *records: dict[str, Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def python_image_layer(package: str, version: str) -> bytes:
    """A Debian 11 layer with one installed Python distribution."""
    return layer(
        file("etc/os-release", "ID=debian\nVERSION_ID=11\n"),
        file(
            f"{SITE}/{package}-{version}.dist-info/METADATA",
            f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n",
        ),
    )


def push(client: Any, name: str, tag: str, layer_bytes: bytes) -> str:
    config, blob = config_blob(), Blob(layer_bytes, LAYER_TYPE)
    for item in (config, blob):
        push_blob(client, name, item)
    manifest = image_manifest(config, [blob])
    push_manifest(client, name, tag, manifest)
    return digest_of(manifest)


def advisory_ids(ecr: Any, name: str, tag: str) -> set[str]:
    findings = ecr.describe_image_scan_findings(repositoryName=name, imageId={"imageTag": tag})
    return {f["name"] for f in findings["imageScanFindings"]["findings"]}


@pytest.fixture
def second(settings: Settings) -> Iterator[Registry]:
    """Another server process on the same metadata database and data directory, with caches of its own."""
    built = build_registry(settings)
    yield built
    built.close()


# -- every process sees an import at once ---------------------------------------------------------------


def test_an_import_in_another_process_is_seen_by_the_next_scan_at_once(
    registry: Registry, second: Registry, tmp_path: Path
) -> None:
    # Given a server process that has scanned an image while the advisory database was empty
    registry.registry.create_repository("app", scan_on_push=True)
    headers = {"Authorization": basic_auth_for(registry, ROOT_ACCESS_KEY_ID)}
    with TestClient(asgi_app(registry), base_url="http://127.0.0.1:5000", headers=headers) as client:
        first = push(client, "app", "v1", python_image_layer("alpha", "0.9"))
        assert registry.jobs.drain() == 1

        # When another process imports an advisory for the package the scan looked up
        second.vulndb.import_paths(
            [data_file(tmp_path / "alpha.jsonl", advisory("TEST-ALPHA-1", "2024-01-01T00:00:00Z"))]
        )

        # Then the next scan in the first process finds it, without waiting for any cache to expire
        later = push(client, "app", "v2", python_image_layer("alpha", "0.8"))
        assert registry.jobs.drain() == 1
    repository = registry.registry.get_repository("app")
    scan_of_later, scan_of_first = (registry.scanning.scan_record(repository, d) for d in (later, first))
    assert [f["name"] for f in scan_of_later.findings] == ["TEST-ALPHA-1"]
    assert (scan_of_later.status, scan_of_later.description) == ("COMPLETE", COMPLETED)
    assert scan_of_first.description == EMPTY_DATABASE_DESCRIPTION


def test_each_batch_of_an_import_is_seen_by_a_scan_that_starts_after_it(
    registry: Registry, second: Registry, tmp_path: Path
) -> None:
    # Given a process whose cache holds "no advisories" for two packages
    before = registry.vulndb.snapshot()
    assert before.empty
    assert before.lookup("PyPI", ["alpha", "beta"]) == []

    # When another process imports advisories for both, in several transactions
    second.vulndb.import_paths(
        [
            data_file(
                tmp_path / "two.jsonl",
                advisory("TEST-ALPHA-1", "2024-01-01T00:00:00Z"),
                advisory("TEST-BETA-1", "2024-01-02T00:00:00Z", "beta"),
            )
        ]
    )

    # Then a snapshot taken afterwards sees all of it, and the old snapshot keeps its own view
    after = registry.vulndb.snapshot()
    assert not after.empty and after.generation > before.generation
    assert [r["id"] for r in after.lookup("PyPI", ["alpha", "beta"])] == ["TEST-ALPHA-1", "TEST-BETA-1"]


# -- an empty database is not a clean bill of health ----------------------------------------------------


def test_a_scan_against_an_empty_database_says_so_and_may_be_repeated_at_once(
    endpoint: str, client: TestClient, registry: Registry, tmp_path: Path
) -> None:
    ecr = client_for(endpoint, "ecr")
    ecr.create_repository(repositoryName="empty", imageScanningConfiguration={"scanOnPush": True})
    push(client, "empty", "v1", python_image_layer("alpha", "0.9"))
    registry.jobs.drain()

    # The findings and the image's summary say the scan had no advisories to match against
    result = ecr.describe_image_scan_findings(repositoryName="empty", imageId={"imageTag": "v1"})
    assert result["imageScanStatus"] == {"status": "COMPLETE", "description": EMPTY_DATABASE_DESCRIPTION}
    assert "vulnerability database is empty" in EMPTY_DATABASE_DESCRIPTION
    assert "ecrd vulndb import" in EMPTY_DATABASE_DESCRIPTION
    assert result["imageScanFindings"]["findings"] == []
    assert "vulnerabilitySourceUpdatedAt" not in result["imageScanFindings"]
    detail = ecr.describe_images(repositoryName="empty", imageIds=[{"imageTag": "v1"}])["imageDetails"][0]
    assert detail["imageScanStatus"]["description"] == EMPTY_DATABASE_DESCRIPTION

    # A scan that could find nothing does not use up the image's daily scan
    assert (
        ecr.start_image_scan(repositoryName="empty", imageId={"imageTag": "v1"})["imageScanStatus"]["status"]
        == "IN_PROGRESS"
    )
    registry.jobs.drain()
    registry.vulndb.import_paths([data_file(tmp_path / "v1.jsonl", advisory("TEST-ALPHA-1", "2024-01-01T00:00:00Z"))])
    ecr.start_image_scan(repositoryName="empty", imageId={"imageTag": "v1"})
    registry.jobs.drain()
    assert advisory_ids(ecr, "empty", "v1") == {"TEST-ALPHA-1"}

    # A real scan does, until newer advisory data arrives
    with pytest.raises(ClientError) as quota:
        ecr.start_image_scan(repositoryName="empty", imageId={"imageTag": "v1"})
    assert error_code(quota) == "LimitExceededException"
    registry.vulndb.import_paths([data_file(tmp_path / "v2.jsonl", advisory("TEST-ALPHA-2", "2024-03-01T00:00:00Z"))])
    ecr.start_image_scan(repositoryName="empty", imageId={"imageTag": "v1"})
    registry.jobs.drain()
    assert advisory_ids(ecr, "empty", "v1") == {"TEST-ALPHA-1", "TEST-ALPHA-2"}
    with pytest.raises(ClientError) as again:
        ecr.start_image_scan(repositoryName="empty", imageId={"imageTag": "v1"})
    assert error_code(again) == "LimitExceededException"


def test_vulndb_status_says_plainly_that_an_empty_database_finds_nothing(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = ["--data-dir", str(settings.data_dir), "--database-url", settings.resolved_database_url]
    settings.data_dir.mkdir(parents=True, exist_ok=True)

    assert main(["vulndb", "status", *flags]) == 0
    text = capsys.readouterr().out
    assert "no advisories imported" in text
    assert "scans find nothing until" in text and "ecrd vulndb import" in text
    assert main(["vulndb", "status", "--json", *flags]) == 0
    assert json.loads(capsys.readouterr().out)["empty"] is True

    data = data_file(tmp_path / "one.jsonl", advisory("TEST-ALPHA-1", "2024-01-01T00:00:00Z"))
    assert main(["vulndb", "import", str(data), *flags]) == 0
    capsys.readouterr()
    assert main(["vulndb", "status", *flags]) == 0
    assert "no advisories imported" not in capsys.readouterr().out
    assert main(["vulndb", "status", "--json", *flags]) == 0
    assert json.loads(capsys.readouterr().out)["empty"] is False


# -- the same, with a real server and the real command --------------------------------------------------


def test_the_import_command_is_seen_by_a_running_server_at_once(
    settings: Settings, backend: str, tmp_path: Path
) -> None:
    database = [] if backend == "sqlite" else ["--database-url", settings.resolved_database_url]
    server = EcrdProcess(
        tmp_path / "server",
        extra_args=database,
        env={"ECRD_ROOT_ACCESS_KEY_ID": ROOT_ACCESS_KEY_ID, "ECRD_ROOT_SECRET_ACCESS_KEY": ROOT_SECRET_ACCESS_KEY},
    )
    with server:
        ecr = client_for(server.url, "ecr")
        ecr.create_repository(repositoryName="live", imageScanningConfiguration={"scanOnPush": True})
        token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
        with LiveClient(server.url, token) as client:
            # Given a scan the server ran while the advisory database was empty
            push(client, "live", "v1", python_image_layer("alpha", "0.9"))
            empty = wait_for_scan(ecr, "live", "v1")

            # When an operator imports advisories with the command, beside the running server
            data = data_file(tmp_path / "alpha.jsonl", advisory("TEST-ALPHA-1", "2024-01-01T00:00:00Z"))
            server.command("vulndb", "import", str(data))

            # Then the next scan on the server finds them, and so does a rescan of the first image
            push(client, "live", "v2", python_image_layer("alpha", "0.8"))
            later = wait_for_scan(ecr, "live", "v2")
            assert advisory_ids(ecr, "live", "v2") == {"TEST-ALPHA-1"}
            assert later["description"] == COMPLETED
            assert empty["description"] == EMPTY_DATABASE_DESCRIPTION
            ecr.start_image_scan(repositoryName="live", imageId={"imageTag": "v1"})
            assert wait_for_scan(ecr, "live", "v1")["description"] == COMPLETED
            assert advisory_ids(ecr, "live", "v1") == {"TEST-ALPHA-1"}
        status = server.command("vulndb", "status", "--json")
        assert json.loads(status.stdout)["records"] == 1


class LiveClient:
    """The OCI helpers' client shape on a real server: paths relative to its URL, logged in with an ECR token."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Basic {token}"

    def __enter__(self) -> LiveClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.session.close()

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        if "content" in kwargs:
            kwargs["data"] = kwargs.pop("content")
        return self.session.request(method, self.base_url + url, timeout=30, **kwargs)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", url, **kwargs)

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("HEAD", url, **kwargs)


def wait_for_scan(ecr: Any, name: str, tag: str, *, timeout: float = 60.0) -> dict[str, str]:
    """The image's scan status once its scan has completed (boto3's own waiter, polled each second, bounded)."""
    waiter = ecr.get_waiter("image_scan_complete")
    waiter.wait(repositoryName=name, imageId={"imageTag": tag}, WaiterConfig={"Delay": 1, "MaxAttempts": int(timeout)})
    status: dict[str, str] = ecr.describe_image_scan_findings(repositoryName=name, imageId={"imageTag": tag})[
        "imageScanStatus"
    ]
    return status
