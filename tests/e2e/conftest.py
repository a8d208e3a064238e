"""Fixtures for end-to-end tests: a real registry process, a private docker engine, and the real clients.

The registry is ``ecrd serve`` unless ``ECRD_E2E_TARGET=distribution`` (or an indirect parametrization of
``registry``) picks the CNCF distribution registry — the reference the tests are validated against. Tests
create their repositories explicitly (ecrd runs without ``--create-on-push``, like ECR): through
``CreateRepository`` on ecrd's AWS door, a no-op for distribution, which creates repositories on push.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import zlib
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.clients import (
    ROOT_CREDENTIALS,
    TEST_ACCESS_KEY_ID,
    TEST_SECRET_ACCESS_KEY,
    AwsCli,
    OciHttp,
    Skopeo,
    aws_cli_binary,
    ecr_client,
    ecr_registry_credentials,
    oras_registry,
    registry_session,
)
from tests.support.dockerd import DockerClient, DockerDaemon, dockerd_binary
from tests.support.registry_process import (
    TARGET_KINDS,
    DistributionProcess,
    EcrdProcess,
    RegistryProcess,
    RegistryUnderTest,
    TargetKind,
)
from tests.support.vulndata import DATA_FILES

TARGET_ENV = "ECRD_E2E_TARGET"
LOG_LINES = 40


def _target_kind(request: pytest.FixtureRequest) -> TargetKind:
    chosen = getattr(request, "param", None) or os.environ.get(TARGET_ENV) or "ecrd"
    for kind in TARGET_KINDS:
        if chosen == kind:
            return kind
    raise pytest.UsageError(f"{TARGET_ENV}={chosen!r}: expected one of {', '.join(TARGET_KINDS)}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On failure, show the end of the registry's and the engine's logs beside the test's own output."""
    report: pytest.TestReport = yield
    if report.failed:
        values = getattr(item, "funcargs", {})
        registry, daemon = values.get("registry"), values.get("dockerd")
        if isinstance(registry, RegistryUnderTest):
            report.sections.append((f"{registry.kind} log (end)", registry.process.log_tail(LOG_LINES)))
        if isinstance(daemon, DockerDaemon):
            report.sections.append(("dockerd log (end)", daemon.log_tail(LOG_LINES)))
    return report


def _drop_bulk_data(*directories: Path) -> None:
    """Remove stored blobs after the session (they reach gigabytes); logs beside them stay for reading."""
    for directory in directories:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def registry(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryUnderTest]:
    """The registry under test, started once per session (per parameter when parametrized indirectly)."""
    kind = _target_kind(request)
    workdir = tmp_path_factory.mktemp(f"registry-{kind}")
    process: RegistryProcess
    if kind == "ecrd":
        process = EcrdProcess(
            workdir,
            env={
                "ECRD_ROOT_ACCESS_KEY_ID": TEST_ACCESS_KEY_ID,
                "ECRD_ROOT_SECRET_ACCESS_KEY": TEST_SECRET_ACCESS_KEY,
            },
        )
    else:
        process = DistributionProcess(workdir)
    process.start()
    try:
        if kind == "ecrd":
            ecr = ecr_client(process.url)
            yield RegistryUnderTest(kind, process, ecr_registry_credentials(ecr), ecr)
        else:
            yield RegistryUnderTest(kind, process, None)
    finally:
        process.stop()
        _drop_bulk_data(workdir / "data", workdir / "storage")


@pytest.fixture(scope="session")
def ecr(registry: RegistryUnderTest) -> Any:
    """boto3's ECR client on ecrd's AWS door (root credentials); skips on targets without an AWS API."""
    if registry.ecr is None:
        pytest.skip(f"{registry.kind} has no AWS API")
    return registry.ecr


@pytest.fixture(scope="session")
def aws(registry: RegistryUnderTest, tmp_path_factory: pytest.TempPathFactory) -> AwsCli:
    """The real AWS CLI on ecrd's AWS door as the account root, isolated from the machine's AWS settings;
    ``aws.with_credentials(...)`` acts as another principal. Skips on targets without an AWS API."""
    if registry.ecr is None:
        pytest.skip(f"{registry.kind} has no AWS API")
    binary = aws_cli_binary()
    if binary is None:
        pytest.skip("the AWS CLI is not installed (PyPI awscli, a test dependency)")
    return AwsCli(registry.url, ROOT_CREDENTIALS, tmp_path_factory.mktemp("aws-home"), binary=binary)


@pytest.fixture(scope="session")
def create_repository(registry: RegistryUnderTest) -> Callable[[str], str]:
    """``create_repository(name) -> name``: make a repository the way the target's users would."""

    def create(name: str) -> str:
        if registry.ecr is not None:
            registry.ecr.create_repository(repositoryName=name)
        return name

    return create


_repository_numbers = itertools.count(1)


@pytest.fixture
def repository_name(request: pytest.FixtureRequest) -> str:
    """A repository name of the test's own (``e2e/<test-name>-<n>``), for a repository not created yet."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:80].strip("-")
    return f"e2e/{slug}-{next(_repository_numbers)}"


@pytest.fixture
def repository(repository_name: str, create_repository: Callable[[str], str]) -> str:
    """A new repository named after the test (``e2e/<test-name>-<n>``), already created."""
    return create_repository(repository_name)


@pytest.fixture
def image_seed(request: pytest.FixtureRequest) -> int:
    """A seed for test content that is stable for a test and differs between tests (no shared blobs)."""
    return zlib.crc32(request.node.nodeid.encode()) % 1_000_000


@pytest.fixture(scope="session")
def dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerDaemon]:
    """A private docker engine for the session (vfs storage, no host networking changes)."""
    binary = dockerd_binary()
    if binary is None:
        pytest.skip("dockerd is not installed (Debian package docker.io; scripts/test installs it)")
    workdir = tmp_path_factory.mktemp("dockerd")
    daemon = DockerDaemon(workdir, binary=binary)
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()
        _drop_bulk_data(workdir / "data", workdir / "exec")


@pytest.fixture(scope="session")
def docker(
    dockerd: DockerDaemon, registry: RegistryUnderTest, tmp_path_factory: pytest.TempPathFactory
) -> DockerClient:
    """The docker CLI on the private engine, logged in to the registry when it needs credentials."""
    client = dockerd.client(tmp_path_factory.mktemp("docker-config"))
    if registry.credentials is not None:
        client.login_with(registry.host, registry.credentials)
    return client


@pytest.fixture(scope="session")
def skopeo(registry: RegistryUnderTest, tmp_path_factory: pytest.TempPathFactory) -> Skopeo:
    """skopeo with the registry's credentials and TLS verification off (plain HTTP on loopback)."""
    binary = shutil.which("skopeo")
    if binary is None:
        pytest.skip("skopeo is not installed (Debian package skopeo; scripts/test installs it)")
    return Skopeo(tmp_path_factory.mktemp("skopeo"), registry.credentials, binary=binary)


@pytest.fixture
def http(registry: RegistryUnderTest) -> Iterator[requests.Session]:
    """A requests session that authenticates to the registry as its clients would (Basic ``AWS:<token>``)."""
    with registry_session(registry.credentials) as session:
        yield session


@pytest.fixture
def oci(http: requests.Session, registry: RegistryUnderTest) -> OciHttp:
    """Raw OCI distribution API calls on the authenticated session."""
    return OciHttp(http, registry.url)


@pytest.fixture
def oras_client(registry: RegistryUnderTest) -> Any:
    """An ``oras.provider.Registry`` for the registry under test (plain HTTP, Basic auth for ecrd)."""
    return oras_registry(registry.host, registry.credentials)


@pytest.fixture
def needs_referrers(registry: RegistryUnderTest) -> None:
    """Skip on targets without the OCI 1.1 referrers API."""
    if not registry.supports_referrers:
        pytest.skip(f"{registry.kind} has no referrers API (distribution 2.8 predates OCI distribution 1.1)")


@pytest.fixture(scope="session")
def vulnerability_database(registry: RegistryUnderTest) -> str:
    """The real OSV data of tests/data/vulndata, imported into the running ecrd's database the way an operator
    does it (``ecrd vulndb import PATH… --data-dir DIR`` beside the server); the import's report."""
    process = registry.process
    if not isinstance(process, EcrdProcess):
        pytest.skip(f"{registry.kind} has no vulnerability database")
    return process.command("vulndb", "import", *map(str, DATA_FILES)).stdout
