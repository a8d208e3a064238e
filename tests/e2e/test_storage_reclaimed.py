"""Storage really stops growing: 20 images of distinct layers pushed by docker, 15 expired by a lifecycle policy
(``ecrd lifecycle run``), then ``ecrd gc``: the data directory shrinks by the expired images' exclusive bytes,
within a few per cent (the database's pages and the encryption's few bytes per MiB are the difference)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.clients import TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY, ecr_client, ecr_registry_credentials
from tests.support.dockerd import DockerDaemon
from tests.support.images import MiB, build_image
from tests.support.registry_process import EcrdProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

IMAGES = 20
KEPT = 5
LAYER_SIZES = (2 * MiB, 1 * MiB)
TOLERANCE = 0.03
POLICY = {
    "rules": [
        {
            "rulePriority": 1,
            "description": f"keep the {KEPT} newest images",
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": KEPT},
            "action": {"type": "expire"},
        }
    ]
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EcrdProcess]:
    """A registry of its own, so that its data directory holds only this test's images. No grace period for
    unreferenced blobs and no scheduled runs: the test runs both commands itself."""
    process = EcrdProcess(
        tmp_path / "registry",
        env={
            "ECRD_ROOT_ACCESS_KEY_ID": TEST_ACCESS_KEY_ID,
            "ECRD_ROOT_SECRET_ACCESS_KEY": TEST_SECRET_ACCESS_KEY,
            "ECRD_GC_GRACE_MINUTES": "0",
            "ECRD_GC_INTERVAL_MINUTES": "0",
            "ECRD_LIFECYCLE_INTERVAL_MINUTES": "0",
        },
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


def bytes_under(directory: Path) -> int:
    return sum(entry.stat().st_size for entry in directory.rglob("*") if entry.is_file())


def test_expiring_15_of_20_images_and_collecting_frees_their_exclusive_bytes(
    server: EcrdProcess, dockerd: DockerDaemon, tmp_path: Path
) -> None:
    # given 20 images of distinct layers pushed by docker, one after another
    ecr: Any = ecr_client(server.url)
    ecr.create_repository(repositoryName="ci")
    docker = dockerd.client(tmp_path / "docker-config")
    docker.login_with(server.host, ecr_registry_credentials(ecr))
    seed = int.from_bytes(os.urandom(3), "big") * 100
    digests = []
    for n in range(IMAGES):
        reference = f"{server.host}/ci:build-{n}"
        docker.load_image(build_image(LAYER_SIZES, seed=seed + n), reference, tmp_path / "images")
        digests.append(docker.push(reference))
        docker.remove_images(reference)
    details = {d["imageDigest"]: d for d in ecr.describe_images(repositoryName="ci")["imageDetails"]}
    expired = digests[:-KEPT]
    # An image's size is its config and layers as stored; none of them is shared, so all of it is exclusive.
    exclusive = sum(details[d]["imageSizeInBytes"] for d in expired)
    ecr.put_lifecycle_policy(repositoryName="ci", lifecyclePolicyText=json.dumps(POLICY))
    before = bytes_under(server.data_dir)

    # when the policy runs and garbage is collected, beside the running server
    ran = server.command("lifecycle", "run").stdout
    collected = server.command("gc").stdout
    after = bytes_under(server.data_dir)

    # then exactly the 15 oldest images are gone, and the data directory shrank by their bytes (within a few %)
    assert f"expired {len(expired)} images" in ran, ran
    left = {i["imageDigest"] for i in ecr.list_images(repositoryName="ci")["imageIds"]}
    assert left == set(digests[-KEPT:])
    freed = before - after
    assert abs(freed - exclusive) <= TOLERANCE * exclusive, (freed, exclusive, collected)
    # and the images kept still pull whole
    for n in range(IMAGES - KEPT, IMAGES):
        docker("pull", f"{server.host}/ci:build-{n}")
