"""The docker engine against the registry: push, pull by tag and by digest, cross-repository mounts, login."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.clients import Credentials
from tests.support.dockerd import DockerClient, DockerDaemon
from tests.support.images import Image, MiB, build_image, write_docker_archive
from tests.support.registry_process import RegistryUnderTest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

LAYER_SIZES = (2 * MiB, 512 * 1024, 4 * 1024)

PUSHED_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64}) size: \d+")


def load_image(docker: DockerClient, tmp_path: Path, image: Image, name: str) -> None:
    """Load ``image`` into the engine as ``name`` from a docker archive written locally (no pulls)."""
    archive = tmp_path / "image.tar"
    write_docker_archive(archive, image, repo_tags=[name])
    docker.load(archive)
    assert docker.image_id(name) == image.config_digest


def push(docker: DockerClient, reference: str) -> tuple[str, str]:
    """``docker push`` → (the manifest digest it reports, its whole output)."""
    output = docker("push", reference).stdout
    found = PUSHED_DIGEST.search(output)
    assert found, f"docker push printed no digest:\n{output}"
    return found.group(1), output


def test_pushed_image_pulls_back_with_the_same_image_id_and_digest(
    docker: DockerClient, registry: RegistryUnderTest, repository: str, tmp_path: Path, image_seed: int
) -> None:
    # given an image with three layers, loaded locally and tagged for the registry
    image = build_image(LAYER_SIZES, seed=image_seed)
    reference = registry.reference(repository, "v1")
    load_image(docker, tmp_path, image, reference)

    # when it is pushed, removed locally and pulled again
    digest, output = push(docker, reference)
    assert output.count("Pushed") == len(LAYER_SIZES), output
    docker.remove_images(reference)
    assert not docker.has_image(reference)
    docker("pull", reference)

    # then the engine holds the very same image (id = digest of the config) under the pushed digest
    assert docker.image_id(reference) == image.config_digest
    assert f"{registry.host}/{repository}@{digest}" in docker.repo_digests(reference)


def test_image_pulls_by_digest(
    docker: DockerClient, registry: RegistryUnderTest, repository: str, tmp_path: Path, image_seed: int
) -> None:
    # given a pushed image, no longer present locally
    image = build_image(LAYER_SIZES, seed=image_seed)
    reference = registry.reference(repository, "by-digest")
    load_image(docker, tmp_path, image, reference)
    digest, _ = push(docker, reference)
    docker.remove_images(reference)

    # when it is pulled by its manifest digest
    by_digest = registry.reference(repository, digest)
    output = docker("pull", by_digest).stdout

    # then that exact manifest arrives
    assert f"Digest: {digest}" in output
    assert docker.image_id(by_digest) == image.config_digest


def test_push_of_the_same_layers_to_a_second_repository_mounts_them_from_the_first(
    docker: DockerClient,
    registry: RegistryUnderTest,
    repository: str,
    create_repository: Callable[[str], str],
    tmp_path: Path,
    image_seed: int,
) -> None:
    # given an image pushed to one repository, and a second, empty repository in the same registry
    image = build_image(LAYER_SIZES, seed=image_seed)
    first = registry.reference(repository, "v1")
    load_image(docker, tmp_path, image, first)
    first_digest, _ = push(docker, first)
    other_repository = create_repository(f"{repository}-copy")
    second = registry.reference(other_repository, "v1")
    docker("tag", first, second)

    # when the same image is pushed to the second repository
    second_digest, output = push(docker, second)

    # then no layer is uploaded again: each is mounted across repositories (POST ?mount=&from=)
    assert output.count(f"Mounted from {repository}") == len(LAYER_SIZES), output
    assert second_digest == first_digest
    docker.remove_images(first, second)
    docker("pull", second)
    assert docker.image_id(second) == image.config_digest


def test_pull_of_an_unknown_tag_fails_with_manifest_unknown(
    docker: DockerClient, registry: RegistryUnderTest, repository: str
) -> None:
    # given an empty repository
    # when a tag that was never pushed is pulled
    result = docker("pull", registry.reference(repository, "never-pushed"), check=False)

    # then docker reports the registry's MANIFEST_UNKNOWN error
    assert result.returncode != 0
    assert "manifest unknown" in result.stderr.lower(), result.stderr


def test_push_to_a_missing_repository_answers_name_unknown(
    docker: DockerClient, registry: RegistryUnderTest, repository: str, tmp_path: Path, image_seed: int
) -> None:
    if registry.kind == "distribution":
        pytest.skip("distribution creates repositories on push")
    # given an image tagged for a repository nobody created (ecrd runs without --create-on-push, like ECR)
    image = build_image(LAYER_SIZES[2:], seed=image_seed)
    reference = registry.reference(f"{repository}-never-created", "v1")
    load_image(docker, tmp_path, image, reference)

    # when it is pushed
    result = docker("push", reference, check=False)

    # then docker reports the registry's NAME_UNKNOWN error
    assert result.returncode != 0
    assert "name unknown" in (result.stdout + result.stderr).lower(), result.stdout + result.stderr


def test_login_with_a_wrong_password_is_refused(
    dockerd: DockerDaemon, registry: RegistryUnderTest, tmp_path: Path
) -> None:
    if registry.credentials is None:
        pytest.skip(f"{registry.kind} runs without authentication here")
    # given a docker client with no stored credentials
    client = dockerd.client(tmp_path / "docker-config")

    # when it logs in with a password the registry never issued
    wrong = Credentials(registry.credentials.username, "not-a-token-ecrd-ever-issued")
    result = client.login_with(registry.host, wrong, check=False)

    # then the registry refuses it with 401
    assert result.returncode != 0
    assert "401" in result.stderr or "unauthorized" in result.stderr.lower(), result.stderr
