"""Fixtures the integration tests share: a live server for the registry under test, and boto3's ECR client on it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ecrd.app import Registry
from tests.integration.test_ecr_api import client_for
from tests.support.live_server import live_server


@pytest.fixture
def endpoint(registry: Registry) -> Iterator[str]:
    with live_server(registry) as url:
        yield url


@pytest.fixture
def ecr(endpoint: str) -> Any:
    return client_for(endpoint, "ecr")
