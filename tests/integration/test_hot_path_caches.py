"""The shortcuts of the hot /v2/ reads never change an answer.

A pull's authentication is remembered by its Authorization header, its authorization by (caller, action,
repository), both for as long as the access generation stands; a blob's presence in the blob store for a short
while. Each test warms a shortcut, then changes what it stands for without touching the access tables (time
passes, the request comes from elsewhere, the blob's bytes go), and checks that the next request sees it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from ecrd.app import Registry, asgi_app, build_registry
from ecrd.config import Secret, Settings
from ecrd.services.registry import STORED_MEMORY_SECONDS
from tests.conftest import ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY, basic_auth_for
from tests.support.clock import START, FakeClock
from tests.support.oci import config_blob, error_codes, image_manifest, push_blob, push_manifest, random_blob
from tests.support.seaweedfs import S3Endpoint

TWELVE_HOURS = 12 * 3600
READ_ONLY = "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture(params=["filesystem", "s3"])
def blob_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """The settings with blobs on the filesystem, or (for the blob tests) in an S3 store."""
    if request.param == "filesystem":
        return settings
    endpoint: S3Endpoint = request.getfixturevalue("s3_endpoint")
    return dataclasses.replace(
        settings,
        storage_url=endpoint.storage_url(endpoint.new_bucket("ecrd-hot"), "registry"),
        s3_endpoint_url=endpoint.url,
        s3_region=endpoint.region,
        s3_path_style=True,
        s3_access_key_id=endpoint.access_key_id,
        s3_secret_access_key=Secret(endpoint.secret_access_key),
    )


@pytest.fixture
def registry(settings: Settings, clock: FakeClock) -> Iterator[Registry]:
    built = build_registry(settings, clock=clock)
    built.identity.authentication.bootstrap_root(ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY)
    yield built
    built.close()


def _client(registry: Registry, access_key_id: str, *, client: tuple[str, int] = ("testclient", 50000)) -> TestClient:
    return TestClient(
        asgi_app(registry),
        base_url="http://127.0.0.1:5000",
        headers={"Authorization": basic_auth_for(registry, access_key_id)},
        client=client,
    )


def _seed(registry: Registry, name: str = "app") -> str:
    """A repository holding image ``v1``; the digest of its layer."""
    registry.registry.create_repository(name)
    config, layer = config_blob(), random_blob()
    with _client(registry, ROOT_ACCESS_KEY_ID) as root:
        push_blob(root, name, config)
        push_blob(root, name, layer)
        push_manifest(root, name, "v1", image_manifest(config, [layer]))
    return layer.digest


def _user_with_policy(registry: Registry, name: str, statement: dict[str, object]) -> str:
    registry.identity.users.create_user(name)
    registry.identity.permissions.put_user_policy(
        name, "pull", json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    )
    return registry.identity.users.create_access_key(name).access_key_id


def test_a_token_remembered_from_earlier_requests_still_expires_on_time(registry: Registry, clock: FakeClock) -> None:
    _seed(registry)
    with _client(registry, ROOT_ACCESS_KEY_ID) as client:
        for _ in range(3):
            assert client.get("/v2/app/manifests/v1").status_code == 200
        clock.advance(TWELVE_HOURS - 1)
        assert client.get("/v2/app/manifests/v1").status_code == 200
        clock.advance(1)
        expired = client.get("/v2/app/manifests/v1")
        assert expired.status_code == 403
        assert "expired" in expired.json()["errors"][0]["message"]


def test_a_token_of_a_role_session_ends_with_the_session_even_when_remembered(
    registry: Registry, clock: FakeClock
) -> None:
    _seed(registry)
    account = registry.settings.account_id
    registry.identity.users.create_user("frank")
    frank = registry.identity.users.create_access_key("frank").access_key_id
    trust = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:user/frank"}, "Action": "sts:AssumeRole"}
    registry.identity.roles.create_role("puller", json.dumps({"Version": "2012-10-17", "Statement": [trust]}))
    registry.identity.permissions.attach_role_policy("puller", READ_ONLY)
    caller = registry.identity.authentication.current_caller(frank)
    assert caller is not None
    session = registry.identity.sessions.assume_role(
        caller, f"arn:aws:iam::{account}:role/puller", "pulls", duration_seconds=900
    ).credentials
    with _client(registry, session.access_key_id) as client:
        for _ in range(3):
            assert client.get("/v2/app/tags/list").status_code == 200
        clock.advance(901)
        ended = client.get("/v2/app/tags/list")
        assert ended.status_code == 403  # the token lasted as long as the session: it has expired with it
        assert "expired" in ended.json()["errors"][0]["message"]


def test_a_decision_that_depends_on_the_time_is_made_again_on_every_request(
    registry: Registry, clock: FakeClock
) -> None:
    _seed(registry)
    until = dt.datetime.fromtimestamp(START + 60, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    key = _user_with_policy(
        registry,
        "carol",
        {
            "Effect": "Allow",
            "Action": "ecr:*",
            "Resource": "*",
            "Condition": {"DateLessThan": {"aws:CurrentTime": until}},
        },
    )
    with _client(registry, key) as client:
        for _ in range(3):
            assert client.get("/v2/app/manifests/v1").status_code == 200
        clock.advance(61)
        denied = client.get("/v2/app/manifests/v1")
        assert denied.status_code == 403
        assert "ecr:BatchGetImage" in denied.text


def test_a_decision_that_depends_on_the_source_address_is_made_for_each_address(registry: Registry) -> None:
    _seed(registry)
    key = _user_with_policy(
        registry,
        "dave",
        {
            "Effect": "Allow",
            "Action": "ecr:*",
            "Resource": "*",
            "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
        },
    )
    with _client(registry, key, client=("10.1.2.3", 40000)) as inside:
        for _ in range(3):
            assert inside.get("/v2/app/tags/list").status_code == 200
    with _client(registry, key, client=("192.0.2.7", 40000)) as outside:
        assert outside.get("/v2/app/tags/list").status_code == 403
    with _client(registry, key, client=("10.1.2.3", 40001)) as inside_again:
        assert inside_again.get("/v2/app/tags/list").status_code == 200


def test_a_decision_is_made_for_each_repository_and_action(registry: Registry) -> None:
    _seed(registry, "team/app")
    _seed(registry, "other/app")
    key = _user_with_policy(
        registry,
        "erin",
        {
            "Effect": "Allow",
            "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            "Resource": f"arn:aws:ecr:{registry.settings.region}:{registry.settings.account_id}:repository/team/*",
        },
    )
    with _client(registry, key) as client:
        for _ in range(3):
            assert client.get("/v2/team/app/manifests/v1").status_code == 200
        assert client.get("/v2/other/app/manifests/v1").status_code == 403
        assert client.get("/v2/team/app/tags/list").status_code == 403
        assert client.get("/v2/team/app/manifests/v1").status_code == 200
    with _client(registry, ROOT_ACCESS_KEY_ID) as root:
        # Another principal asking the same question gets its own answer.
        assert root.get("/v2/other/app/manifests/v1").status_code == 200
    with _client(registry, key) as client:
        assert client.get("/v2/other/app/manifests/v1").status_code == 403


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_blob_whose_bytes_went_missing_is_unknown_once_its_memory_has_passed(
    blob_settings: Settings, clock: FakeClock
) -> None:
    serving = build_registry(blob_settings, clock=clock)
    serving.identity.authentication.bootstrap_root(ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY)
    elsewhere = build_registry(blob_settings, clock=clock)
    try:
        digest = _seed(serving)
        with _client(serving, ROOT_ACCESS_KEY_ID) as client:
            for _ in range(3):
                assert client.head(f"/v2/app/blobs/{digest}").status_code == 200
            # The bytes go behind the link's back (the store lost them; an operator deleted them): only such a
            # loss is ever remembered wrongly, since the garbage collector takes only blobs nothing links.
            elsewhere.blobs.delete_blob(digest)
            clock.advance(STORED_MEMORY_SECONDS)
            gone = client.head(f"/v2/app/blobs/{digest}")
            assert gone.status_code == 404
            unknown = client.get(f"/v2/app/blobs/{digest}")
            assert unknown.status_code == 404
            assert error_codes(unknown) == ["BLOB_UNKNOWN"]
    finally:
        elsewhere.close()
        serving.close()
