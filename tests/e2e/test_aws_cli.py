"""The README workflow with the real AWS CLI and docker: create a repository, log docker in with
``aws ecr get-login-password``, push and pull, then see the images through describe-images, list-images,
batch-get-image, batch-delete-image and delete-repository. Images cross the two doors both ways: put through
the ECR layer API and pulled by docker, pushed by docker and read through the API."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.clients import TEST_ACCOUNT_ID, TEST_REGION, AwsCli, put_image_through_api
from tests.support.dockerd import DockerClient, DockerDaemon
from tests.support.images import MiB, build_image, sha256_digest
from tests.support.registry_process import RegistryUnderTest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

LAYER_SIZES = (1 * MiB, 4 * 1024)
README_REPOSITORY_SETTINGS = (
    "--image-tag-mutability", "IMMUTABLE",
    "--image-scanning-configuration", "scanOnPush=true",
    "--encryption-configuration", "encryptionType=KMS",
)  # fmt: skip
"""The flags of the README's ``aws ecr create-repository``."""
DOCKER_MANIFEST_TYPES = {
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
}


def pushed_image(
    docker: DockerClient, registry: RegistryUnderTest, repository: str, tag: str, tmp_path: Path, seed: int
) -> str:
    """Load a fresh image as ``HOST/REPOSITORY:TAG``, push it, and return the digest docker reports."""
    reference = registry.reference(repository, tag)
    docker.load_image(build_image(LAYER_SIZES, seed=seed), reference, tmp_path)
    return docker.push(reference)


def test_create_repository_answers_with_the_settings_it_was_given(
    aws: AwsCli, registry: RegistryUnderTest, repository_name: str
) -> None:
    # given the README's create-repository command line
    before = time.time()

    # when the CLI runs it
    created = aws.json("ecr", "create-repository", "--repository-name", repository_name, *README_REPOSITORY_SETTINGS)

    # then the repository it prints carries those settings, ECR's ARN and a URI docker can use
    repository: dict[str, Any] = created["repository"]
    assert repository["repositoryName"] == repository_name
    assert repository["repositoryArn"] == f"arn:aws:ecr:{TEST_REGION}:{TEST_ACCOUNT_ID}:repository/{repository_name}"
    assert repository["registryId"] == TEST_ACCOUNT_ID
    assert repository["repositoryUri"] == f"{registry.host}/{repository_name}"
    assert repository["imageTagMutability"] == "IMMUTABLE"
    assert repository["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repository["encryptionConfiguration"]["encryptionType"] == "KMS"
    assert before - 5 <= repository["createdAt"] <= time.time() + 5
    # and describe-repositories shows the same repository
    [described] = aws.json("ecr", "describe-repositories", "--repository-names", repository_name)["repositories"]
    assert described == repository


def test_get_login_password_piped_into_docker_login_lets_docker_push_and_pull(
    aws: AwsCli,
    dockerd: DockerDaemon,
    registry: RegistryUnderTest,
    repository_name: str,
    tmp_path: Path,
    image_seed: int,
) -> None:
    # given the README's repository, and a docker client that never logged in to the registry
    aws("ecr", "create-repository", "--repository-name", repository_name, *README_REPOSITORY_SETTINGS)
    docker = dockerd.client(tmp_path / "docker-config")

    # when `aws ecr get-login-password | docker login --username AWS --password-stdin HOST:PORT` runs
    login = docker.login_from_command(registry.host, aws.argv("ecr", "get-login-password"), env=aws.env)

    # then docker is logged in, and tags, pushes and pulls back the very same image
    assert "Login Succeeded" in login.stdout, login.stdout + login.stderr
    image = build_image(LAYER_SIZES, seed=image_seed)
    local = f"ecrd-e2e/readme:{image_seed}"
    reference = registry.reference(repository_name, "latest")
    docker.load_image(image, local, tmp_path)
    docker("tag", local, reference)
    digest = docker.push(reference)
    docker.remove_images(local, reference)
    assert not docker.has_image(reference)
    docker("pull", reference)
    assert docker.image_id(reference) == image.config_digest
    assert f"{registry.host}/{repository_name}@{digest}" in docker.repo_digests(reference)


def test_describe_images_lists_a_pushed_image_with_its_tag_and_digest(
    aws: AwsCli,
    docker: DockerClient,
    registry: RegistryUnderTest,
    repository: str,
    tmp_path: Path,
    image_seed: int,
) -> None:
    # given an image pushed by docker
    digest = pushed_image(docker, registry, repository, "v1", tmp_path, image_seed)

    # when the CLI describes the repository's images
    details = aws.json("ecr", "describe-images", "--repository-name", repository)["imageDetails"]

    # then the one image is there, under its tag and the digest docker reported
    [detail] = details
    assert detail["registryId"] == TEST_ACCOUNT_ID
    assert detail["repositoryName"] == repository
    assert detail["imageDigest"] == digest
    assert detail["imageTags"] == ["v1"]
    assert detail["imageManifestMediaType"] in DOCKER_MANIFEST_TYPES
    assert detail["imageSizeInBytes"] > LAYER_SIZES[0] // 2
    # and asking for it by tag finds the same image
    by_tag = aws.json("ecr", "describe-images", "--repository-name", repository, "--image-ids", "imageTag=v1")
    assert [d["imageDigest"] for d in by_tag["imageDetails"]] == [digest]


def test_repository_uri_from_describe_repositories_is_a_reference_docker_pushes_to(
    aws: AwsCli,
    docker: DockerClient,
    registry: RegistryUnderTest,
    repository: str,
    tmp_path: Path,
    image_seed: int,
) -> None:
    # given an image in the engine
    image = build_image(LAYER_SIZES, seed=image_seed)
    local = f"ecrd-e2e/uri:{image_seed}"
    docker.load_image(image, local, tmp_path)

    # when it is tagged with $(aws ecr describe-repositories … --query 'repositories[0].repositoryUri'):TAG
    uri = aws(
        "ecr", "describe-repositories", "--repository-names", repository,
        "--query", "repositories[0].repositoryUri", "--output", "text",
    ).stdout.strip()  # fmt: skip
    docker("tag", local, f"{uri}:from-uri")
    digest = docker.push(f"{uri}:from-uri")

    # then the URI is HOST:PORT/NAME, and the image landed in that repository under that tag
    assert uri == f"{registry.host}/{repository}"
    found = aws.json("ecr", "describe-images", "--repository-name", repository, "--image-ids", "imageTag=from-uri")
    assert [d["imageDigest"] for d in found["imageDetails"]] == [digest]
    docker.remove_images(local, f"{uri}:from-uri")


def test_batch_delete_image_removes_one_tag_and_list_images_shows_the_rest(
    aws: AwsCli,
    docker: DockerClient,
    registry: RegistryUnderTest,
    repository: str,
    tmp_path: Path,
    image_seed: int,
) -> None:
    # given one image pushed under two tags
    digest = pushed_image(docker, registry, repository, "keep", tmp_path, image_seed)
    docker("tag", registry.reference(repository, "keep"), registry.reference(repository, "drop"))
    assert docker.push(registry.reference(repository, "drop")) == digest
    listed = aws.json("ecr", "list-images", "--repository-name", repository)["imageIds"]
    assert sorted(listed, key=lambda i: i["imageTag"]) == [
        {"imageDigest": digest, "imageTag": "drop"},
        {"imageDigest": digest, "imageTag": "keep"},
    ]

    # when batch-delete-image deletes one of the tags
    deleted = aws.json("ecr", "batch-delete-image", "--repository-name", repository, "--image-ids", "imageTag=drop")

    # then only that tag went; the image stays under the other, and docker no longer finds the deleted one
    assert deleted == {"imageIds": [{"imageDigest": digest, "imageTag": "drop"}], "failures": []}
    remaining = aws.json("ecr", "list-images", "--repository-name", repository)["imageIds"]
    assert remaining == [{"imageDigest": digest, "imageTag": "keep"}]
    docker.remove_images(registry.reference(repository, "keep"), registry.reference(repository, "drop"))
    missing = docker("pull", registry.reference(repository, "drop"), check=False)
    assert missing.returncode != 0
    assert "manifest unknown" in missing.stderr.lower(), missing.stderr


def test_delete_repository_with_force_removes_a_repository_holding_images(
    aws: AwsCli,
    docker: DockerClient,
    registry: RegistryUnderTest,
    repository: str,
    tmp_path: Path,
    image_seed: int,
) -> None:
    # given a repository holding an image, which delete-repository without --force refuses to delete
    pushed_image(docker, registry, repository, "v1", tmp_path, image_seed)
    refused = aws.error("ecr", "delete-repository", "--repository-name", repository)
    assert refused.code == "RepositoryNotEmptyException", refused

    # when it is deleted with --force
    deleted = aws.json("ecr", "delete-repository", "--repository-name", repository, "--force")

    # then the CLI prints the repository, which is gone for the API and for docker
    assert deleted["repository"]["repositoryName"] == repository
    missing = aws.error("ecr", "describe-repositories", "--repository-names", repository)
    assert missing.code == "RepositoryNotFoundException"
    assert missing.message == (
        f"The repository with name '{repository}' does not exist in the registry with id '{TEST_ACCOUNT_ID}'"
    )
    docker.remove_images(registry.reference(repository, "v1"))
    pull = docker("pull", registry.reference(repository, "v1"), check=False)
    assert pull.returncode != 0
    assert "name unknown" in pull.stderr.lower(), pull.stderr


def test_image_put_through_the_ecr_api_is_pulled_by_docker(
    ecr: Any, docker: DockerClient, registry: RegistryUnderTest, repository: str, image_seed: int
) -> None:
    # given an OCI image whose layers and config went up through the layer API, and its manifest through PutImage
    image = build_image(LAYER_SIZES, seed=image_seed)
    put = put_image_through_api(ecr, repository, image, "from-api")
    assert put["imageId"] == {"imageDigest": image.manifest_digest, "imageTag": "from-api"}

    # when docker pulls the tag
    reference = registry.reference(repository, "from-api")
    output = docker("pull", reference).stdout

    # then it receives that manifest and assembles that very image
    assert f"Digest: {image.manifest_digest}" in output
    assert docker.image_id(reference) == image.config_digest
    docker.remove_images(reference)


def test_image_pushed_by_docker_is_returned_by_batch_get_image(
    aws: AwsCli,
    docker: DockerClient,
    registry: RegistryUnderTest,
    repository: str,
    tmp_path: Path,
    image_seed: int,
) -> None:
    # given an image pushed by docker
    image = build_image(LAYER_SIZES, seed=image_seed)
    reference = registry.reference(repository, "v1")
    docker.load_image(image, reference, tmp_path)
    digest = docker.push(reference)

    # when the CLI asks for it with batch-get-image
    got = aws.json("ecr", "batch-get-image", "--repository-name", repository, "--image-ids", "imageTag=v1")

    # then the manifest is the one docker pushed, byte for byte, naming the image's config and its layers
    assert got["failures"] == []
    [found] = got["images"]
    assert found["imageId"] == {"imageDigest": digest, "imageTag": "v1"}
    assert found["repositoryName"] == repository
    assert found["registryId"] == TEST_ACCOUNT_ID
    assert sha256_digest(found["imageManifest"].encode()) == digest
    manifest = json.loads(found["imageManifest"])
    assert found["imageManifestMediaType"] == manifest["mediaType"]
    assert manifest["config"]["digest"] == image.config_digest
    assert len(manifest["layers"]) == len(LAYER_SIZES)
    docker.remove_images(reference)


def test_put_account_setting_narrows_the_registry_policy_scope_and_get_account_setting_reads_it(aws: AwsCli) -> None:
    # given a registry on ECR's default scope for new registries
    assert aws.json("ecr", "get-account-setting", "--name", "REGISTRY_POLICY_SCOPE") == {
        "name": "REGISTRY_POLICY_SCOPE",
        "value": "V2",
    }
    try:
        # when the CLI narrows it to V1
        put = aws.json("ecr", "put-account-setting", "--name", "REGISTRY_POLICY_SCOPE", "--value", "V1")

        # then it answers the setting, and reads it back
        assert put == {"name": "REGISTRY_POLICY_SCOPE", "value": "V1"}
        assert aws.json("ecr", "get-account-setting", "--name", "REGISTRY_POLICY_SCOPE")["value"] == "V1"
    finally:
        # The registry is shared by the session's tests: leave it as it was.
        aws("ecr", "put-account-setting", "--name", "REGISTRY_POLICY_SCOPE", "--value", "V2")
