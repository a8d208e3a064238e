"""Fixtures shared by every tier: settings and an in-process registry on each metadata back end."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from ecrd.app import Registry, asgi_app, build_registry
from ecrd.config import Secret, Settings
from tests.support.databases import BACKENDS, database_url
from tests.support.seaweedfs import S3Endpoint, seaweedfs

ROOT_ACCESS_KEY_ID = "AKIAECRDTESTROOT0001"
ROOT_SECRET_ACCESS_KEY = "ecrd-test-root-secret-key-0000000000000000"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@contextmanager
def settings_for(backend: str, directory: Path) -> Iterator[Settings]:
    """Settings of a registry under ``directory`` on ``backend``, its database made for it (and dropped after)."""
    with database_url(backend, directory) as url:
        yield Settings(
            data_dir=directory / "data",
            database_url=url,
            port=5000,
            # The name the in-process test clients use (the default for a loopback host would be localhost).
            public_url="http://127.0.0.1:5000",
            root_access_key_id=ROOT_ACCESS_KEY_ID,
            root_secret_access_key=Secret(ROOT_SECRET_ACCESS_KEY),
        )


@contextmanager
def registry_for(settings: Settings, clock: Callable[[], float] = time.time) -> Iterator[Registry]:
    """The registry of ``settings`` on ``clock`` with the root's test key."""
    built = build_registry(settings, clock=clock)
    built.identity.authentication.bootstrap_root(ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY)
    try:
        yield built
    finally:
        built.close()


@contextmanager
def root_client(registry: Registry) -> Iterator[TestClient]:
    """A /v2/ client logged in as the account root."""
    with TestClient(
        asgi_app(registry),
        base_url="http://127.0.0.1:5000",
        headers={"Authorization": basic_auth_for(registry, ROOT_ACCESS_KEY_ID)},
    ) as test_client:
        yield test_client


@pytest.fixture
def settings(backend: str, tmp_path: Path) -> Iterator[Settings]:
    with settings_for(backend, tmp_path) as built:
        yield built


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Endpoint]:
    """One SeaweedFS S3 server for the session; each test takes its own bucket with ``new_bucket()``."""
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as endpoint:
        yield endpoint


@pytest.fixture
def registry(settings: Settings) -> Iterator[Registry]:
    with registry_for(settings) as built:
        yield built


def basic_auth_for(registry: Registry, access_key_id: str) -> str:
    """The Authorization header docker would send after `docker login` with this key's token."""
    caller = registry.identity.authentication.current_caller(access_key_id)
    assert caller is not None
    token = registry.tokens.issue(caller)
    return "Basic " + token.authorization_token


@pytest.fixture
def anonymous_client(registry: Registry) -> Iterator[TestClient]:
    with TestClient(asgi_app(registry), base_url="http://127.0.0.1:5000") as test_client:
        yield test_client


@pytest.fixture
def client(registry: Registry) -> Iterator[TestClient]:
    """A /v2/ client logged in as the account root."""
    with root_client(registry) as test_client:
        yield test_client


def decode_basic(header: str) -> tuple[str, str]:
    user, _, password = base64.b64decode(header.split(" ", 1)[1]).decode().partition(":")
    return user, password
