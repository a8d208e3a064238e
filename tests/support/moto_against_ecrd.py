"""A pytest plugin that runs moto's own ECR tests against a real ecrd instead of moto's mock.

moto's tests are plain boto3 calls wrapped in ``@mock_aws``. This plugin, loaded with ``-p`` before they are
collected, makes ``mock_aws`` a decorator that does nothing, so boto3 talks to the endpoint in
``AWS_ENDPOINT_URL`` (ecrd, with the root key of moto's account in the environment); and after each test it
empties every registry the test could have touched (repositories, registry policy, replication and scanning
configuration, in the regions moto's tests sign for), because moto gives each test a fresh backend.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

import pytest

REGIONS = ("us-east-1", "eu-central-1")


def _no_mock(target: Any = None, **_config: Any) -> Any:
    """``mock_aws`` as decorator (with or without arguments) and as context manager, doing nothing."""
    if target is None:
        return _NoMock()
    if isinstance(target, type):
        return target

    @functools.wraps(target)
    def call(*args: Any, **kwargs: Any) -> Any:
        return target(*args, **kwargs)

    return call


class _NoMock(contextlib.AbstractContextManager["_NoMock"]):
    def __call__(self, target: Callable[..., Any]) -> Callable[..., Any]:
        return _no_mock(target)

    def __exit__(self, *exc_info: object) -> None:
        return None

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None


def pytest_configure(config: pytest.Config) -> None:
    import moto

    moto.mock_aws = _no_mock  # type: ignore[assignment]


@pytest.fixture(autouse=True)
def _fresh_registries() -> Iterator[None]:
    yield
    import boto3

    for region in REGIONS:
        ecr = boto3.client("ecr", region_name=region)
        for page in ecr.get_paginator("describe_repositories").paginate():
            for repository in page["repositories"]:
                ecr.delete_repository(repositoryName=repository["repositoryName"], force=True)
        with contextlib.suppress(ecr.exceptions.RegistryPolicyNotFoundException):
            ecr.delete_registry_policy()
        ecr.put_replication_configuration(replicationConfiguration={"rules": []})
        ecr.put_registry_scanning_configuration(scanType="BASIC", rules=[])
