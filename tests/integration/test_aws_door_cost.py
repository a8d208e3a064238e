"""What one ECR API call costs the metadata store: the access generation is read once per request (the caller's
key, the policies and the repository are then answered from the per-process caches), and the operations the
door answers on the event loop on SQLite only read.

Statements are seen through SQLite's trace callback, which also sees the hot reads run on the driver's own
connection (``MetadataStore.fetch``); hence SQLite only.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from sqlalchemy import event
from starlette.testclient import TestClient

from ecrd.app import Registry, asgi_app
from ecrd.aws.door import INLINE_OPERATIONS
from tests.conftest import ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY
from tests.support.oci import OCI_MANIFEST, config_blob, digest_of, image_manifest, push_blob, random_blob

SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"])

REPOSITORY = "team/app"


@contextmanager
def traced(registry: Registry) -> Iterator[list[str]]:
    """Every SQL statement SQLite runs for the store inside the block, whichever connection runs it."""
    statements: list[str] = []

    def on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        dbapi_connection.set_trace_callback(lambda statement: statements.append(" ".join(statement.split())))

    event.listen(registry.store.engine, "connect", on_connect)
    # Connections made before the listener (pooled, or kept by a thread for its reads) would go unseen.
    registry.store.dispose()
    try:
        yield statements
    finally:
        event.remove(registry.store.engine, "connect", on_connect)
        registry.store.dispose()


def _manifest(number: int, config: Any, layer: Any) -> str:
    return image_manifest(config, [layer], annotations={"n": str(number)}).decode()


@pytest.fixture
def images(registry: Registry, ecr: Any) -> Callable[[int], dict[str, Any]]:
    """A repository with image ``v1``; returns PutImage's arguments for a new image ``number``."""
    ecr.create_repository(repositoryName=REPOSITORY)
    config, layer = config_blob(), random_blob(256)
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    with TestClient(
        asgi_app(registry), base_url="http://127.0.0.1:5000", headers={"Authorization": f"Basic {token}"}
    ) as client:
        push_blob(client, REPOSITORY, config)
        push_blob(client, REPOSITORY, layer)

    def put_image_params(number: int) -> dict[str, Any]:
        manifest = _manifest(number, config, layer)
        return {
            "repositoryName": REPOSITORY,
            "imageManifest": manifest,
            "imageManifestMediaType": OCI_MANIFEST,
            "imageTag": f"v{number}",
            "imageDigest": digest_of(manifest.encode()),
        }

    ecr.put_image(**put_image_params(1))
    return put_image_params


CALLS: dict[str, Callable[[Any, Callable[[int], dict[str, Any]], int], object]] = {
    "GetAuthorizationToken": lambda ecr, _images, _n: ecr.get_authorization_token(),
    "DescribeImages": lambda ecr, _images, _n: ecr.describe_images(
        repositoryName=REPOSITORY, imageIds=[{"imageTag": "v1"}]
    ),
    "ListImages": lambda ecr, _images, _n: ecr.list_images(repositoryName=REPOSITORY),
    "DescribeRepositories": lambda ecr, _images, _n: ecr.describe_repositories(repositoryNames=[REPOSITORY]),
    "BatchGetImage": lambda ecr, _images, _n: ecr.batch_get_image(
        repositoryName=REPOSITORY, imageIds=[{"imageTag": "v1"}]
    ),
    "PutImage": lambda ecr, images, number: ecr.put_image(**images(number)),
}


def _generation_reads(statements: list[str]) -> int:
    return sum(1 for statement in statements if "FROM generations" in statement)


@SQLITE_ONLY
@pytest.mark.parametrize("operation", sorted(CALLS))
def test_a_call_reads_the_access_generation_once(
    registry: Registry, ecr: Any, images: Callable[[int], dict[str, Any]], operation: str
) -> None:
    # Given: the caches warm (the same call made once before)
    call = CALLS[operation]
    call(ecr, images, 100)
    # When
    with traced(registry) as statements:
        call(ecr, images, 101)
    # Then: authentication, authorization and the operation share one generation
    assert _generation_reads(statements) == 1, statements


@SQLITE_ONLY
@pytest.mark.parametrize("operation", sorted(name for service, name in INLINE_OPERATIONS if service == "ecr"))
def test_operations_answered_on_the_event_loop_only_read(
    registry: Registry, ecr: Any, images: Callable[[int], dict[str, Any]], operation: str
) -> None:
    # Given: the first call of each, which fills the caches (a cold cache must not write either)
    call = CALLS[operation]
    # When
    with traced(registry) as statements:
        call(ecr, images, 100)
        call(ecr, images, 101)
    # Then: no transaction was begun, nothing written
    writes = [s for s in statements if s.split(" ", 1)[0].upper() in {"BEGIN", "INSERT", "UPDATE", "DELETE", "REPLACE"}]
    assert statements and not writes


def test_every_inline_operation_is_covered() -> None:
    assert {name for service, name in INLINE_OPERATIONS if service == "ecr"} <= set(CALLS)
    assert {service for service, _name in INLINE_OPERATIONS} == {"ecr"}


# -- the request facts the door hands to authorization --------------------------------------------------------


def _signed(client: TestClient, service: str, body: str, key: str, secret: str, target: str = "") -> Any:
    """POST / signed by botocore's SigV4 signer for ``service``, sent through ``client`` (its scheme)."""
    headers = {"Content-Type": "application/x-amz-json-1.1" if target else "application/x-www-form-urlencoded"}
    if target:
        headers["X-Amz-Target"] = target
    request = AWSRequest(method="POST", url="http://127.0.0.1:5000/", data=body.encode(), headers=headers)
    SigV4Auth(Credentials(key, secret), service, "us-east-1").add_auth(request)
    return client.post("/", content=body.encode(), headers=dict(request.headers.items()))


def test_a_policy_on_secure_transport_sees_the_requests_scheme(registry: Registry) -> None:
    # Given: a user allowed GetAuthorizationToken only over HTTPS
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "ecr:GetAuthorizationToken",
                    "Resource": "*",
                    "Condition": {"Bool": {"aws:SecureTransport": "true"}},
                }
            ],
        }
    )
    root = (ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY)
    with TestClient(asgi_app(registry), base_url="http://127.0.0.1:5000") as plain:
        for form in (
            {"Action": "CreateUser", "UserName": "tls-only"},
            {"Action": "PutUserPolicy", "UserName": "tls-only", "PolicyName": "p", "PolicyDocument": policy},
            {"Action": "CreateAccessKey", "UserName": "tls-only"},
        ):
            answer = _signed(plain, "iam", urlencode({**form, "Version": "2010-05-08"}), *root)
            assert answer.status_code == 200, answer.text
        key = re.search(r"<AccessKeyId>(.+?)</AccessKeyId>", answer.text)
        secret = re.search(r"<SecretAccessKey>(.+?)</SecretAccessKey>", answer.text)
        assert key and secret
        target = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"
        # When: the same call over HTTP and over HTTPS
        over_http = _signed(plain, "ecr", "{}", key[1], secret[1], target)
        with TestClient(asgi_app(registry), base_url="https://127.0.0.1:5000") as tls:
            over_https = _signed(tls, "ecr", "{}", key[1], secret[1], target)
    # Then
    assert over_http.status_code == 400 and over_http.json()["__type"] == "AccessDeniedException"
    assert over_https.status_code == 200, over_https.text
