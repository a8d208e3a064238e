"""The docker engine pushes and pulls with docker-credential-ecrd as the registry's credHelpers entry: AWS
credentials in the environment, and no `docker login`."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from tests.support.clients import TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY
from tests.support.dockerd import DockerClient, DockerDaemon
from tests.support.images import MiB, build_image
from tests.support.registry_process import RegistryUnderTest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

# The program docker runs: the helper of the source under test (an installed package has it as an entry point).
WRAPPER = """#!/bin/sh
exec {python} -m ecrd.cli.credential_helper "$@"
"""


@pytest.fixture
def helped_docker(dockerd: DockerDaemon, registry: RegistryUnderTest, tmp_path: Path) -> DockerClient:
    """A docker CLI that has never logged in, whose config names docker-credential-ecrd for the registry."""
    if registry.kind != "ecrd":
        pytest.skip("the credential helper asks ecrd's AWS door for tokens")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "docker-credential-ecrd"
    wrapper.write_text(WRAPPER.format(python=sys.executable))
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    config_dir = tmp_path / "docker-config"
    config_dir.mkdir()
    (config_dir / "config.json").write_text(json.dumps({"credHelpers": {registry.host: "ecrd"}}))
    client = dockerd.client(config_dir)
    client.env.update(
        {
            "PATH": f"{bin_dir}{os.pathsep}{client.env.get('PATH', '')}",
            "AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": TEST_SECRET_ACCESS_KEY,
            "AWS_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "XDG_CACHE_HOME": str(tmp_path / "cache"),
        }
    )
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_ECR"):
        client.env.pop(name, None)
    return client


def test_docker_pushes_and_pulls_through_the_credential_helper_without_logging_in(
    helped_docker: DockerClient, registry: RegistryUnderTest, repository: str, tmp_path: Path, image_seed: int
) -> None:
    # given an image loaded locally, and a docker that has never logged in to the registry
    image = build_image((MiB, 4096), seed=image_seed)
    reference = registry.reference(repository, "helped")
    helped_docker.load_image(image, reference, tmp_path / "archive")

    # when it is pushed, removed and pulled again
    digest = helped_docker.push(reference)
    helped_docker.remove_images(reference)
    helped_docker("pull", reference)

    # then the same image is back, under the pushed digest
    assert helped_docker.image_id(reference) == image.config_digest
    assert f"{registry.host}/{repository}@{digest}" in helped_docker.repo_digests(reference)
    # and docker stored no credentials of its own: the token came from the helper, which cached it privately
    config = json.loads((helped_docker.config_dir / "config.json").read_text())
    assert registry.host not in config.get("auths", {})
    cached = list((tmp_path / "cache" / "ecrd" / "docker-credential-ecrd").glob("*.json"))
    assert len(cached) == 1
    assert stat.S_IMODE(cached[0].stat().st_mode) == 0o600


def test_docker_without_aws_credentials_is_refused_by_the_registry(
    helped_docker: DockerClient, registry: RegistryUnderTest, repository: str, tmp_path: Path, image_seed: int
) -> None:
    # given the helper has no AWS credentials to ask with
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        helped_docker.env.pop(name)
    image = build_image((4096,), seed=image_seed)
    reference = registry.reference(repository, "anonymous")
    helped_docker.load_image(image, reference, tmp_path / "archive")

    # when docker pushes
    pushed = helped_docker("push", reference, check=False)

    # then docker went on without credentials (the helper said "not found") and the registry refused it
    assert pushed.returncode != 0
    output = (pushed.stdout + pushed.stderr).lower()
    assert "error getting credentials" not in output
    assert "unauthorized" in output or "no basic auth credentials" in output
