"""Docker and podman pulling through ecrd's pull-through cache from a real upstream (distribution with htpasswd
and TLS, standing in for Docker Hub): by the cached repository's name, and as docker's ``registry-mirrors`` with
a ROOT rule, so that ``docker pull library/NAME`` is served by ecrd without rewriting the image's name.

One ecrd of its own (it must trust the upstream's CA: ``--upstream-ca-file``), the session's docker engine, and
podman with storage of its own under the test's directory.
"""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.clients import (
    TEST_ACCESS_KEY_ID,
    TEST_SECRET_ACCESS_KEY,
    aws_client,
    ecr_client,
    ecr_registry_credentials,
    run_tool,
)
from tests.support.dockerd import DockerDaemon
from tests.support.images import Image, MiB, build_image
from tests.support.oci import OCI_MANIFEST
from tests.support.registry_process import EcrdProcess
from tests.support.upstream import USER, SecuredDistribution

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

# docker's key for Docker Hub's credentials in its config file: also the ones it sends to a Hub mirror.
DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredDistribution]:
    with SecuredDistribution(tmp_path_factory.mktemp("upstream")) as process:
        assert isinstance(process, SecuredDistribution)
        yield process


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory, upstream: SecuredDistribution) -> Iterator[EcrdProcess]:
    """ecrd with a ROOT rule to the upstream (kind docker-hub, its credentials in Secrets Manager)."""
    process = EcrdProcess(
        tmp_path_factory.mktemp("cache"),
        extra_args=["--upstream-ca-file", upstream.ca_file or ""],
        env={"ECRD_ROOT_ACCESS_KEY_ID": TEST_ACCESS_KEY_ID, "ECRD_ROOT_SECRET_ACCESS_KEY": TEST_SECRET_ACCESS_KEY},
    )
    process.start()
    try:
        secret = json.dumps({"username": USER.username, "accessToken": USER.password})
        arn = aws_client("secretsmanager", process.url).create_secret(
            Name="ecr-pullthroughcache/hub", SecretString=secret
        )["ARN"]
        ecr_client(process.url).create_pull_through_cache_rule(
            ecrRepositoryPrefix="ROOT",
            upstreamRegistryUrl=upstream.host,
            upstreamRegistry="docker-hub",
            credentialArn=arn,
        )
        yield process
    finally:
        process.stop()


def _publish(upstream: SecuredDistribution, name: str, tag: str, seed: int) -> Image:
    image = build_image((MiB, 4 * 1024), seed=seed)
    http = upstream.client()
    for layer in image.layers:
        http.push_blob(name, layer.blob, layer.digest)
    http.push_blob(name, image.config, image.config_digest)
    assert http.put_manifest(name, tag, image.manifest, OCI_MANIFEST).status_code == 201
    return image


def _cached_digests(ecr: Any, repository: str) -> list[str]:
    return [detail["imageDigest"] for detail in ecr.describe_images(repositoryName=repository)["imageDetails"]]


def test_docker_pulls_an_upstream_image_through_the_cache_by_tag_and_by_digest(
    dockerd: DockerDaemon, tmp_path: Path, upstream: SecuredDistribution, cache: EcrdProcess
) -> None:
    name = f"library/pulled-{uuid.uuid4().hex[:8]}"
    image = _publish(upstream, name, "1", seed=31)
    ecr = ecr_client(cache.url)
    docker = dockerd.client(tmp_path / "docker")
    docker.login_with(cache.host, ecr_registry_credentials(ecr))

    by_tag = f"{cache.host}/{name}:1"
    docker("pull", by_tag)
    assert docker.image_id(by_tag) == image.config_digest
    assert f"{cache.host}/{name}@{image.manifest_digest}" in docker.repo_digests(by_tag)
    assert _cached_digests(ecr, name) == [image.manifest_digest]

    # Again by digest, with nothing left in the engine: now from the cache alone.
    docker.remove_images(by_tag)
    by_digest = f"{cache.host}/{name}@{image.manifest_digest}"
    docker("pull", by_digest)
    assert docker.image_id(by_digest) == image.config_digest
    docker.remove_images(by_digest)


def test_docker_with_ecrd_as_its_registry_mirror_pulls_hub_names_through_the_cache(
    dockerd: DockerDaemon, tmp_path: Path, upstream: SecuredDistribution, cache: EcrdProcess
) -> None:
    short = f"mirrored-{uuid.uuid4().hex[:8]}"
    image = _publish(upstream, f"library/{short}", "1", seed=37)
    ecr = ecr_client(cache.url)
    credentials = ecr_registry_credentials(ecr)
    # The engine sends Docker Hub's credentials to a Hub mirror: ecrd's, written as `docker login` would.
    docker = dockerd.client(tmp_path / "docker")
    auth = base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()
    (docker.config_dir / "config.json").write_text(json.dumps({"auths": {DOCKER_HUB_AUTH_KEY: {"auth": auth}}}))

    with dockerd.registry_mirrors(f"http://{cache.host}"):
        docker("pull", f"{short}:1")
        assert docker.image_id(f"{short}:1") == image.config_digest
    docker.remove_images(f"{short}:1")
    # Under its Docker Hub name, as ECR's ROOT rule caches it.
    assert _cached_digests(ecr, f"library/{short}") == [image.manifest_digest]


def test_podman_pulls_an_upstream_image_through_the_cache(
    tmp_path: Path, upstream: SecuredDistribution, cache: EcrdProcess
) -> None:
    binary = shutil.which("podman")
    if binary is None:
        pytest.skip("podman is not installed (Debian package podman; scripts/test installs it)")
    name = f"library/podman-{uuid.uuid4().hex[:8]}"
    image = _publish(upstream, name, "1", seed=41)
    ecr = ecr_client(cache.url)
    credentials = ecr_registry_credentials(ecr)
    # Storage, registries configuration and auth of its own: nothing of the machine's podman setup applies.
    (tmp_path / "registries.conf").write_text("")
    (tmp_path / "auth.json").write_text("{}")
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        "HOME": str(tmp_path),
        "CONTAINERS_REGISTRIES_CONF": str(tmp_path / "registries.conf"),
        "REGISTRY_AUTH_FILE": str(tmp_path / "auth.json"),
    }
    # podman refuses a run root longer than 50 characters: a short directory of /tmp, not the test's.
    with tempfile.TemporaryDirectory(prefix="ecrd-podman-") as runroot:
        podman = [binary, "--root", str(tmp_path / "root"), "--runroot", runroot, "--storage-driver", "vfs"]
        reference = f"{cache.host}/{name}:1"
        secret = f"{credentials.username}:{credentials.password}"
        pull = [*podman, "pull", "--tls-verify=false", "--creds", secret, reference]
        run_tool(pull, env=env, redact=[credentials.password])
        shown = run_tool([*podman, "image", "inspect", "--format", "{{.Id}} {{.Digest}}", reference], env=env)
    assert shown.stdout.split() == [image.config_digest.removeprefix("sha256:"), image.manifest_digest]
    assert _cached_digests(ecr, name) == [image.manifest_digest]
