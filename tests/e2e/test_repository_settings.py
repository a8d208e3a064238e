"""A repository's settings doing what they do in ECR, driven by the real tools: immutable tags refused to docker
and skopeo in ECR's words; scan on push giving this machine's real advisories, an SBOM as an OCI referrer, and
scans that survive a crash; KMS keys that lock and unlock pulls, and nothing readable on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.clients import AwsCli, Skopeo, ToolFailed
from tests.support.dockerd import DockerClient
from tests.support.images import build_image, write_oci_layout
from tests.support.registry_process import RegistryUnderTest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

LAYER_SIZES = (64 * 1024, 1024)


def immutable_refusal(tag: str, repository: str) -> str:
    """ECR's message for a push that would move an immutable tag (also what docker and skopeo print)."""
    return (
        f"The image tag '{tag}' already exists in the '{repository}' repository and cannot be overwritten "
        "because the tag is immutable."
    )


def refused_push(docker: DockerClient, reference: str) -> str:
    """``docker push REFERENCE``, expected to fail; everything docker printed."""
    result = docker("push", reference, check=False)
    assert result.returncode != 0, f"docker push {reference} succeeded:\n{result.stdout}"
    return result.stdout + result.stderr


def pulled_image_id(docker: DockerClient, reference: str) -> str:
    """Forget ``reference`` locally, pull it again, and return the id of the image that came."""
    docker.remove_images(reference)
    docker("pull", reference)
    return docker.image_id(reference)


def create_repository(aws: AwsCli, name: str, *settings: str) -> dict[str, object]:
    created: dict[str, object] = aws.json("ecr", "create-repository", "--repository-name", name, *settings)["repository"]
    return created


# -- 1. tag immutability ----------------------------------------------------------------------------------


def test_immutable_tag_takes_the_same_image_again_and_refuses_another_with_ecrs_message_in_docker(
    aws: AwsCli, docker: DockerClient, registry: RegistryUnderTest, repository_name: str, tmp_path: Path,
    image_seed: int,
) -> None:
    # given a repository created IMMUTABLE, where docker pushed image A as :v1
    created = create_repository(aws, repository_name, "--image-tag-mutability", "IMMUTABLE")
    assert created["imageTagMutability"] == "IMMUTABLE"
    image_a, image_b = build_image(LAYER_SIZES, seed=image_seed), build_image(LAYER_SIZES, seed=image_seed + 1)
    reference = registry.reference(repository_name, "v1")
    docker.load_image(image_a, reference, tmp_path / "a")
    digest_a = docker.push(reference)

    # when the same image is pushed as :v1 again, then a different image B as :v1
    again = docker.push(reference)
    docker.load_image(image_b, reference, tmp_path / "b")
    refusal = refused_push(docker, reference)

    # then the same image goes through, and B is refused with ECR's message shown by docker
    assert again == digest_a
    assert f"tag invalid: {immutable_refusal('v1', repository_name)}" in refusal, refusal
    # and :v1 still is image A, for docker and for the API
    assert pulled_image_id(docker, reference) == image_a.config_digest
    found = aws.json("ecr", "describe-images", "--repository-name", repository_name, "--image-ids", "imageTag=v1")
    assert [detail["imageDigest"] for detail in found["imageDetails"]] == [digest_a]
    docker.remove_images(reference)


def test_exclusion_filter_lets_latest_move_while_other_tags_stay_until_the_repository_is_made_mutable(
    aws: AwsCli, docker: DockerClient, registry: RegistryUnderTest, repository_name: str, tmp_path: Path,
    image_seed: int,
) -> None:
    # given a repository IMMUTABLE_WITH_EXCLUSION excluding `latest`, holding image A as :v1 and :latest
    created = create_repository(
        aws, repository_name,
        "--image-tag-mutability", "IMMUTABLE_WITH_EXCLUSION",
        "--image-tag-mutability-exclusion-filters", "filterType=WILDCARD,filter=latest",
    )  # fmt: skip
    assert created["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
    assert created["imageTagMutabilityExclusionFilters"] == [{"filterType": "WILDCARD", "filter": "latest"}]
    image_a, image_b = build_image(LAYER_SIZES, seed=image_seed), build_image(LAYER_SIZES, seed=image_seed + 1)
    v1, latest = registry.reference(repository_name, "v1"), registry.reference(repository_name, "latest")
    docker.load_image(image_a, v1, tmp_path / "a")
    docker("tag", v1, latest)
    docker.push(v1)
    docker.push(latest)

    # when docker pushes image B as :latest and as :v1
    docker.load_image(image_b, latest, tmp_path / "b")
    digest_b = docker.push(latest)
    docker("tag", latest, v1)
    refusal = refused_push(docker, v1)

    # then :latest moved to B, and :v1 was refused and still is A
    assert f"tag invalid: {immutable_refusal('v1', repository_name)}" in refusal, refusal
    assert pulled_image_id(docker, latest) == image_b.config_digest
    assert pulled_image_id(docker, v1) == image_a.config_digest

    # when put-image-tag-mutability makes the repository MUTABLE
    switched = aws.json(
        "ecr", "put-image-tag-mutability", "--repository-name", repository_name, "--image-tag-mutability", "MUTABLE"
    )

    # then :v1 moves to B at the next push
    assert switched["imageTagMutability"] == "MUTABLE"
    docker("tag", latest, v1)
    assert docker.push(v1) == digest_b
    assert pulled_image_id(docker, v1) == image_b.config_digest
    docker.remove_images(v1, latest)


def test_put_image_tag_mutability_immutable_stops_docker_moving_a_tag_it_moved_before(
    aws: AwsCli, docker: DockerClient, registry: RegistryUnderTest, repository: str, tmp_path: Path,
    image_seed: int,
) -> None:
    # given a (default, MUTABLE) repository whose :latest docker moved from image A to image B
    image_a, image_b = build_image(LAYER_SIZES, seed=image_seed), build_image(LAYER_SIZES, seed=image_seed + 1)
    latest = registry.reference(repository, "latest")
    docker.load_image(image_a, latest, tmp_path / "a")
    docker.push(latest)
    docker.load_image(image_b, latest, tmp_path / "b")
    docker.push(latest)

    # when put-image-tag-mutability makes it IMMUTABLE, and docker pushes A as :latest again
    switched = aws.json(
        "ecr", "put-image-tag-mutability", "--repository-name", repository, "--image-tag-mutability", "IMMUTABLE"
    )
    docker.load_image(image_a, latest, tmp_path / "a-again")
    refusal = refused_push(docker, latest)

    # then the push is refused in ECR's words, and :latest stays B
    assert switched["imageTagMutability"] == "IMMUTABLE"
    [described] = aws.json("ecr", "describe-repositories", "--repository-names", repository)["repositories"]
    assert described["imageTagMutability"] == "IMMUTABLE"
    assert f"tag invalid: {immutable_refusal('latest', repository)}" in refusal, refusal
    assert pulled_image_id(docker, latest) == image_b.config_digest
    docker.remove_images(latest)


def test_skopeo_copy_of_another_image_onto_an_immutable_tag_is_refused(
    aws: AwsCli, skopeo: Skopeo, registry: RegistryUnderTest, repository_name: str, tmp_path: Path,
    image_seed: int,
) -> None:
    # given an IMMUTABLE repository where skopeo copied image A to :v1 (and copies it there again)
    create_repository(aws, repository_name, "--image-tag-mutability", "IMMUTABLE")
    image_a, image_b = build_image(LAYER_SIZES, seed=image_seed), build_image(LAYER_SIZES, seed=image_seed + 1)
    write_oci_layout(tmp_path / "a", image_a, tag="v1")
    write_oci_layout(tmp_path / "b", image_b, tag="v1")
    destination = f"docker://{registry.reference(repository_name, 'v1')}"
    skopeo.copy(f"oci:{tmp_path / 'a'}:v1", destination, timeout=120)
    skopeo.copy(f"oci:{tmp_path / 'a'}:v1", destination, timeout=120)

    # when skopeo copies image B to :v1
    with pytest.raises(ToolFailed) as refused:
        skopeo.copy(f"oci:{tmp_path / 'b'}:v1", destination, timeout=120)

    # then it fails printing ECR's message, and :v1 is still image A
    assert f"tag invalid: {immutable_refusal('v1', repository_name)}" in str(refused.value), refused.value
    assert skopeo.inspect(destination, raw=True)["config"]["digest"] == image_a.config_digest
