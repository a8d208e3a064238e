"""Tag immutability on every door: exclusions, idempotent re-push, and races with exactly one winner."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError
from starlette.testclient import TestClient

from ecrd.app import Registry
from ecrd.domain.records import MutabilityExclusion
from ecrd.errors import ImageTagAlreadyExists
from tests.integration.test_ecr_api import client_for, error_code
from tests.support.oci import OCI_MANIFEST, config_blob, digest_of, image_manifest, push_blob, random_blob


def _image(client: TestClient, name: str) -> bytes:
    config, layer = config_blob(), random_blob()
    for blob in (config, layer):
        push_blob(client, name, blob)
    return image_manifest(config, [layer])


def _put(client: TestClient, name: str, tag: str, manifest: bytes) -> Any:
    return client.put(f"/v2/{name}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST})


@pytest.mark.parametrize(
    ("mutability", "filters", "tag", "may_move"),
    [
        ("MUTABLE", [], "v1", True),
        ("IMMUTABLE", [], "v1", False),
        ("IMMUTABLE", [], "latest", False),
        ("IMMUTABLE_WITH_EXCLUSION", ["latest", "dev-*"], "latest", True),
        ("IMMUTABLE_WITH_EXCLUSION", ["latest", "dev-*"], "dev-42", True),
        ("IMMUTABLE_WITH_EXCLUSION", ["latest", "dev-*"], "v1", False),
        ("MUTABLE_WITH_EXCLUSION", ["release-*"], "release-1.0", False),
        ("MUTABLE_WITH_EXCLUSION", ["release-*"], "nightly", True),
    ],
)
def test_moving_a_tag_follows_mutability_and_exclusions(
    client: TestClient, registry: Registry, mutability: str, filters: list[str], tag: str, may_move: bool
) -> None:
    registry.registry.create_repository(
        "repo",
        image_tag_mutability=mutability,
        mutability_exclusions=tuple(MutabilityExclusion("WILDCARD", f) for f in filters),
    )
    first, second = _image(client, "repo"), _image(client, "repo")
    assert _put(client, "repo", tag, first).status_code == 201
    assert _put(client, "repo", tag, first).status_code == 201  # the same digest again is always fine
    moved = _put(client, "repo", tag, second)
    if may_move:
        assert moved.status_code == 201
        assert client.get(f"/v2/repo/manifests/{tag}").content == second
    else:
        assert moved.status_code == 400
        error = moved.json()["errors"][0]
        assert error["code"] == "TAG_INVALID"
        assert error["message"] == (
            f"The image tag '{tag}' already exists in the 'repo' repository and cannot be "
            "overwritten because the tag is immutable."
        )
        assert client.get(f"/v2/repo/manifests/{tag}").content == first


def test_racing_pushes_to_an_immutable_tag_have_exactly_one_winner(client: TestClient, registry: Registry) -> None:
    repository = registry.registry.create_repository("race", image_tag_mutability="IMMUTABLE")
    manifests = [_image(client, "race") for _ in range(6)]
    barrier = threading.Barrier(len(manifests))
    outcomes: list[str] = []
    lock = threading.Lock()

    def push(payload: bytes) -> None:
        barrier.wait()
        try:
            registry.registry.put_manifest(repository, "prod", payload, OCI_MANIFEST)
            result = digest_of(payload)
        except ImageTagAlreadyExists:
            result = "refused"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=push, args=(m,)) for m in manifests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    winners = [o for o in outcomes if o != "refused"]
    assert len(outcomes) == len(manifests)
    assert len(winners) == 1
    assert client.head("/v2/race/manifests/prod").headers["Docker-Content-Digest"] == winners[0]


def test_put_image_and_mutability_changes_through_the_api(endpoint: str, client: TestClient) -> None:
    ecr = client_for(endpoint, "ecr")
    ecr.create_repository(repositoryName="api", imageTagMutability="IMMUTABLE")
    first, second = _image(client, "api"), _image(client, "api")
    ecr.put_image(repositoryName="api", imageManifest=first.decode(), imageTag="v1")
    with pytest.raises(ClientError) as refused:
        ecr.put_image(repositoryName="api", imageManifest=second.decode(), imageTag="v1")
    assert error_code(refused) == "ImageTagAlreadyExistsException"
    assert "cannot be overwritten because the tag is immutable" in str(refused.value)
    ecr.put_image_tag_mutability(
        repositoryName="api",
        imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "v*"}],
    )
    ecr.put_image(repositoryName="api", imageManifest=second.decode(), imageTag="v1")
    with pytest.raises(ClientError) as bad_filter:
        ecr.put_image_tag_mutability(
            repositoryName="api",
            imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
            imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "bad filter!"}],
        )
    assert error_code(bad_filter) == "InvalidParameterException"
    with pytest.raises(ClientError) as missing_filters:
        ecr.put_image_tag_mutability(repositoryName="api", imageTagMutability="MUTABLE_WITH_EXCLUSION")
    assert error_code(missing_filters) == "InvalidParameterException"
