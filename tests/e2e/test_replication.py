"""Replication between two `ecrd serve` processes on this machine: a central registry and an edge site (its own
account and region), the peer configured with `ecrd replication-peer add`, the configuration with the AWS API, the
image pushed by docker to the centre and pulled by docker from the edge."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_docker import load_image, push
from tests.support.clients import (
    TEST_ACCESS_KEY_ID,
    TEST_SECRET_ACCESS_KEY,
    AwsCredentials,
    aws_client,
    ecr_registry_credentials,
    run_tool,
)
from tests.support.dockerd import DockerDaemon
from tests.support.images import build_image
from tests.support.registry_process import EcrdProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

EDGE_ACCOUNT, EDGE_REGION = "111122223333", "eu-west-1"
EDGE_KEY, EDGE_SECRET = "AKIAEDGEROOT00000001", "edge/root/secret/0000000000000000000000000"
REPLICATION_DEADLINE = 120.0


def _ecrd(workdir: Path, key: str, secret: str, *extra: str) -> EcrdProcess:
    return EcrdProcess(
        workdir,
        extra_args=list(extra),
        env={"ECRD_ROOT_ACCESS_KEY_ID": key, "ECRD_ROOT_SECRET_ACCESS_KEY": secret},
    )


@pytest.fixture
def sites(tmp_path: Path) -> Iterator[tuple[EcrdProcess, EcrdProcess]]:
    centre = _ecrd(tmp_path / "centre", TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY)
    edge = _ecrd(tmp_path / "edge", EDGE_KEY, EDGE_SECRET, "--account-id", EDGE_ACCOUNT, "--region", EDGE_REGION)
    with centre, edge:
        yield centre, edge


def test_an_image_pushed_by_docker_to_the_centre_is_pulled_by_docker_from_the_edge(
    sites: tuple[EcrdProcess, EcrdProcess], dockerd: DockerDaemon, tmp_path: Path, image_seed: int
) -> None:
    centre, edge = sites
    centre_ecr = aws_client("ecr", centre.url, AwsCredentials(TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY))
    edge_ecr = aws_client("ecr", edge.url, AwsCredentials(EDGE_KEY, EDGE_SECRET), region=EDGE_REGION)
    # given the edge known to the centre as a peer (the secret on standard input), and a rule sending apps/ there
    run_tool(
        [
            *centre.argv()[:3],
            "replication-peer",
            "add",
            "--destination-registry-id",
            EDGE_ACCOUNT,
            "--destination-region",
            EDGE_REGION,
            "--url",
            edge.url,
            "--access-key-id",
            EDGE_KEY,
            "--secret-access-key-stdin",
            "--data-dir",
            str(centre.data_dir),
        ],
        input=EDGE_SECRET + "\n",
        env=centre.environment(),
        redact=[EDGE_SECRET],
    )
    destination = {"region": EDGE_REGION, "registryId": EDGE_ACCOUNT}
    centre_ecr.put_replication_configuration(
        replicationConfiguration={
            "rules": [
                {
                    "destinations": [destination],
                    "repositoryFilters": [{"filter": "apps/", "filterType": "PREFIX_MATCH"}],
                }
            ]
        }
    )
    assert centre_ecr.describe_registry()["replicationConfiguration"]["rules"][0]["destinations"] == [destination]
    centre_ecr.create_repository(repositoryName="apps/web")

    # when docker pushes an image to the centre
    docker = dockerd.client(tmp_path / "docker-config")
    docker.login_with(centre.host, ecr_registry_credentials(centre_ecr))
    docker.login_with(edge.host, ecr_registry_credentials(edge_ecr))
    image = build_image((3000, 90_000), seed=image_seed)
    at_centre = f"{centre.host}/apps/web:v1"
    load_image(docker, tmp_path, image, at_centre)
    digest, _ = push(docker, at_centre)

    # then the replication completes in the background
    deadline = time.monotonic() + REPLICATION_DEADLINE
    while True:
        [status] = centre_ecr.describe_image_replication_status(repositoryName="apps/web", imageId={"imageTag": "v1"})[
            "replicationStatuses"
        ]
        if status["status"] != "IN_PROGRESS" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status == {**destination, "status": "COMPLETE"}

    # and docker pulls the very same image from the edge, where the repository belongs to the edge's account
    at_edge = f"{edge.host}/apps/web:v1"
    docker("pull", at_edge)
    assert docker.image_id(at_edge) == image.config_digest
    assert f"{edge.host}/apps/web@{digest}" in docker.repo_digests(at_edge)
    [repository] = edge_ecr.describe_repositories(repositoryNames=["apps/web"])["repositories"]
    assert repository["repositoryArn"] == f"arn:aws:ecr:{EDGE_REGION}:{EDGE_ACCOUNT}:repository/apps/web"
    docker.remove_images(at_centre, at_edge)
