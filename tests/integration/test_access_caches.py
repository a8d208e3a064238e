"""Per-process caches of credentials, policies and repositories never outlive what they cache.

Two registries built on one database and data directory stand for two server processes (or two nodes on
PostgreSQL): one serves /v2/ and warms its caches, the other changes identities, policies and repositories;
the first must see each change on its very next request.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from ecrd.app import Registry, asgi_app, build_registry
from ecrd.config import Settings
from ecrd.metadata.generations import Generations
from tests.conftest import ROOT_ACCESS_KEY_ID, basic_auth_for
from tests.support.oci import config_blob, image_manifest, push_blob, push_manifest, random_blob

READ_ONLY = "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"


@pytest.fixture
def elsewhere(settings: Settings, registry: Registry) -> Iterator[Registry]:
    """Another process on the same metadata and blobs."""
    other = build_registry(settings)
    yield other
    other.close()


@pytest.fixture
def alice(registry: Registry) -> str:
    registry.identity.users.create_user("alice")
    registry.identity.permissions.attach_user_policy("alice", READ_ONLY)
    return registry.identity.users.create_access_key("alice").access_key_id


def _client(registry: Registry, access_key_id: str) -> TestClient:
    return TestClient(
        asgi_app(registry),
        base_url="http://127.0.0.1:5000",
        headers={"Authorization": basic_auth_for(registry, access_key_id)},
    )


def _seed(registry: Registry, name: str = "app") -> None:
    registry.registry.create_repository(name)
    with _client(registry, ROOT_ACCESS_KEY_ID) as root:
        config, layer = config_blob(), random_blob()
        push_blob(root, name, config)
        push_blob(root, name, layer)
        push_manifest(root, name, "v1", image_manifest(config, [layer]))


def test_every_change_to_access_data_moves_the_generation_and_pushes_do_not(
    registry: Registry, elsewhere: Registry
) -> None:
    generations = Generations(registry.store)
    seen = [generations.read()]

    def moved() -> bool:
        seen.append(generations.read())
        return seen[-1] > seen[-2]

    _seed(elsewhere)
    assert moved()  # the repository was created
    with _client(registry, ROOT_ACCESS_KEY_ID) as root:
        config = config_blob({"v": 2})
        push_blob(root, "app", config)
        push_manifest(root, "app", "v2", image_manifest(config, []))
        assert root.get("/v2/app/manifests/v2").status_code == 200
    assert not moved()  # images are not cached: pushes and pulls leave the caches warm
    repository = elsewhere.registry.get_repository("app")
    elsewhere.aws.services.settings_service.set_repository_policy(
        repository,
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage"}],
            }
        ),
    )
    assert moved()
    elsewhere.identity.users.create_user("bob")
    assert moved()
    key = elsewhere.identity.users.create_access_key("bob").access_key_id
    assert moved()
    elsewhere.identity.permissions.put_user_policy(
        "bob",
        "pull",
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}],
            }
        ),
    )
    assert moved()
    elsewhere.identity.permissions.attach_user_policy("bob", READ_ONLY)
    assert moved()
    elsewhere.identity.users.update_access_key("bob", key, "Inactive")
    assert moved()
    elsewhere.aws.services.kms.create_key(elsewhere.identity.principals.root_arn, description="k")
    assert moved()
    elsewhere.registry.delete_repository("app", force=True)
    assert moved()


def test_a_key_deactivated_elsewhere_stops_its_tokens_on_the_next_request(
    registry: Registry, elsewhere: Registry, alice: str
) -> None:
    _seed(registry)
    with _client(registry, alice) as client:
        assert client.get("/v2/app/manifests/v1").status_code == 200
        elsewhere.identity.users.update_access_key("alice", alice, "Inactive")
        assert client.get("/v2/app/manifests/v1").status_code == 401
        elsewhere.identity.users.update_access_key("alice", alice, "Active")
        assert client.get("/v2/app/manifests/v1").status_code == 200


def test_a_policy_changed_elsewhere_applies_on_the_next_request(
    registry: Registry, elsewhere: Registry, alice: str
) -> None:
    _seed(registry)
    with _client(registry, alice) as client:
        assert client.get("/v2/app/tags/list").status_code == 200
        elsewhere.identity.permissions.detach_user_policy("alice", READ_ONLY)
        denied = client.get("/v2/app/tags/list")
        assert denied.status_code == 403
        assert "ecr:ListImages" in denied.text
        elsewhere.identity.permissions.attach_user_policy("alice", READ_ONLY)
        assert client.head("/v2/app/manifests/v1").status_code == 200
        repository = elsewhere.registry.get_repository("app")
        elsewhere.aws.services.settings_service.set_repository_policy(
            repository,
            json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "ecr:BatchGetImage"}],
                }
            ),
        )
        assert client.head("/v2/app/manifests/v1").status_code == 403


def test_a_repository_deleted_and_made_again_elsewhere_is_never_served_from_its_old_row(
    registry: Registry, elsewhere: Registry
) -> None:
    _seed(registry)
    with _client(registry, ROOT_ACCESS_KEY_ID) as client:
        assert client.get("/v2/app/tags/list").json()["tags"] == ["v1"]
        elsewhere.registry.delete_repository("app", force=True)
        gone = client.get("/v2/app/manifests/v1")
        assert gone.status_code == 404
        assert gone.json()["errors"][0]["code"] == "NAME_UNKNOWN"
        elsewhere.registry.create_repository("app", image_tag_mutability="IMMUTABLE")
        assert client.get("/v2/app/tags/list").json()["tags"] == []
        assert client.get("/v2/app/manifests/v1").status_code == 404
        # The new row's settings apply: its tags are immutable.
        config = config_blob()
        push_blob(client, "app", config)
        push_manifest(client, "app", "v1", image_manifest(config, []))
        other = config_blob({"x": 1})
        push_blob(client, "app", other)
        again = client.put(
            "/v2/app/manifests/v1",
            content=image_manifest(other, []),
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert again.status_code == 400
        assert again.json()["errors"][0]["code"] == "TAG_INVALID"


def test_a_push_that_creates_its_repository_sees_it_in_the_same_request(settings: Settings, registry: Registry) -> None:
    pushing = build_registry(dataclasses.replace(settings, create_on_push=True))
    try:
        with _client(pushing, ROOT_ACCESS_KEY_ID) as client:
            assert client.get("/v2/fresh/tags/list").status_code == 404  # caches the absence
            config = config_blob()
            push_blob(client, "fresh", config)  # creates the repository on push
            push_manifest(client, "fresh", "v1", image_manifest(config, []))
            assert client.get("/v2/fresh/tags/list").json()["tags"] == ["v1"]
    finally:
        pushing.close()
