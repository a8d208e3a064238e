"""Fixtures shared by every tier: settings and an in-process registry on each metadata back end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from ecrd.app import Application, Registry, build_registry
from ecrd.config import Settings
from tests.support.databases import BACKENDS, database_url


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(backend: str, tmp_path: Path) -> Iterator[Settings]:
    with database_url(backend, tmp_path) as url:
        yield Settings(data_dir=tmp_path / "data", database_url=url, port=5000)


@pytest.fixture
def registry(settings: Settings) -> Iterator[Registry]:
    built = build_registry(settings)
    yield built
    built.close()


@pytest.fixture
def client(registry: Registry) -> Iterator[TestClient]:
    with TestClient(Application(registry), base_url="http://127.0.0.1:5000") as test_client:
        yield test_client
