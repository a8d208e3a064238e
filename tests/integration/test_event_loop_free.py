"""No request waits on PostgreSQL on the event loop: a query there stalls every other request of the process
for its whole network round trip, so every query of a request runs in a worker thread. On SQLite both doors
answer their hot reads on the loop by design (decision 0008: a read of a local file in WAL mode costs less
than the thread hop), but never write there. The listener below records any statement run in a thread with a
running event loop."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from sqlalchemy import event
from starlette.testclient import TestClient

from ecrd.app import Registry, asgi_app
from ecrd.config import Settings
from tests.conftest import ROOT_ACCESS_KEY_ID, basic_auth_for, registry_for
from tests.integration.test_ecr_api import client_for
from tests.support.live_server import live_server
from tests.support.oci import OCI_MANIFEST, push_image

DOMAIN = "registry.test"


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@pytest.fixture
def deployment(settings: Settings) -> Iterator[Registry]:
    with registry_for(dataclasses.replace(settings, registry_domain=DOMAIN)) as built:
        yield built


@pytest.fixture
def queries_on_the_loop(deployment: Registry) -> Iterator[list[str]]:
    found: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if _on_event_loop():
            found.append(" ".join(statement.split())[:200])

    event.listen(deployment.store.engine, "before_cursor_execute", record)
    yield found
    event.remove(deployment.store.engine, "before_cursor_execute", record)


def _client(deployment: Registry, host: str) -> TestClient:
    return TestClient(
        asgi_app(deployment),
        base_url=f"http://{host}",
        headers={"Authorization": basic_auth_for(deployment, ROOT_ACCESS_KEY_ID)},
    )


def test_pushes_pulls_and_unknown_hosts_query_only_in_worker_threads(
    deployment: Registry, queries_on_the_loop: list[str]
) -> None:
    # given the default registry under its ECR name, an account that does not exist, and a plain host:port
    known = f"000000000000.dkr.ecr.us-east-1.{DOMAIN}"
    unknown = f"999999999999.dkr.ecr.us-east-1.{DOMAIN}"

    # when images are pushed and pulled, and a host of no account here is asked, again and again
    deployment.registry.create_repository("app")
    with _client(deployment, known) as client:
        push_image(client, "app", "v1")
        pulled = client.get("/v2/app/manifests/v1", headers={"Accept": OCI_MANIFEST})
        listed = client.get("/v2/app/tags/list")
    with _client(deployment, "127.0.0.1:5000") as client:
        plain = client.get("/v2/app/manifests/v1", headers={"Accept": OCI_MANIFEST})
    with _client(deployment, unknown) as client:
        refused = [client.get("/v2/app/manifests/v1").status_code for _ in range(3)]

    # then every answer is right, and no query ran on the event loop
    assert (pulled.status_code, listed.status_code, plain.status_code) == (200, 200, 200)
    assert refused == [404] * 3
    _assert_nothing_waits_on_the_loop(deployment, queries_on_the_loop)


def test_api_calls_naming_known_and_unknown_registries_query_only_in_worker_threads(
    deployment: Registry, queries_on_the_loop: list[str]
) -> None:
    # given the API on a real server, signed by the default account's root
    with live_server(deployment) as api:
        ecr = client_for(api, "ecr")

        # when it creates and lists repositories, gets a token, and names a registry of no account here
        ecr.create_repository(repositoryName="app")
        listed = ecr.describe_repositories()["repositories"]
        ecr.get_authorization_token()
        with pytest.raises(ClientError) as unknown:
            ecr.describe_repositories(registryId="999999999999")

    # then each answer is right, and no query ran on the event loop
    assert [r["repositoryName"] for r in listed] == ["app"]
    assert unknown.value.response["Error"]["Code"] == "RepositoryNotFoundException"
    _assert_nothing_waits_on_the_loop(deployment, queries_on_the_loop)


def _assert_nothing_waits_on_the_loop(deployment: Registry, statements: list[str]) -> None:
    if deployment.store.is_sqlite:
        assert all(statement.startswith("SELECT ") for statement in statements), statements
    else:
        assert statements == []
