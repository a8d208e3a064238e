"""The README's workflow with ECR's own registry name, character for character: ecrd serves HTTPS on port 443 with
its own --tls-cert for ``000000000000.dkr.ecr.us-east-1.amazonaws.com`` (its --public-url), that name is mapped to
127.0.0.1 for a docker engine of the test's own (a hosts file seen only through the engine's mount namespace), and
``aws ecr get-login-password | docker login … 000000000000.dkr.ecr.us-east-1.amazonaws.com``, tag, push and pull
run as ECR's documentation writes them.

Needs root (a mount namespace, port 443): skipped elsewhere, saying why.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.clients import (
    TEST_ACCESS_KEY_ID,
    TEST_SECRET_ACCESS_KEY,
    AwsCli,
    AwsCredentials,
    aws_cli_binary,
)
from tests.support.dockerd import DockerDaemon, dockerd_binary
from tests.support.images import build_image
from tests.support.ports import LOOPBACK
from tests.support.registry_process import EcrdProcess
from tests.support.tls import make_ca_and_server_cert

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ECR_HOST = "000000000000.dkr.ecr.us-east-1.amazonaws.com"
DOCKER_CERTS = Path("/etc/docker/certs.d")
SCAN_DEADLINE = 120.0


class HttpsEcrd(EcrdProcess):
    scheme = "https"

    def argv(self) -> list[str]:
        # The public URL is ECR's name (on 443, so without a port); the server is still reached on 127.0.0.1:443.
        argv = super().argv()
        argv[argv.index("--public-url") + 1] = f"https://{ECR_HOST}"
        return argv


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root: a mount namespace for the engine's hosts file, and port 443"
    if shutil.which("unshare") is None:
        return "needs unshare (util-linux)"
    if dockerd_binary() is None or aws_cli_binary() is None:
        return "needs dockerd and the AWS CLI"
    with socket.socket() as probe:
        try:
            probe.bind((LOOPBACK, 443))
        except OSError as exc:
            return f"port 443 on {LOOPBACK} is taken ({exc})"
    return None


@pytest.fixture
def ecr_named(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[HttpsEcrd, DockerDaemon, Path]]:
    why = _why_not()
    if why is not None:
        pytest.skip(why)
    files = make_ca_and_server_cert(tmp_path / "tls", names=[ECR_HOST])
    server = HttpsEcrd(
        tmp_path / "ecrd",
        port=443,
        extra_args=["--tls-cert", str(files.server_cert), "--tls-key", str(files.server_key)],
        env={"ECRD_ROOT_ACCESS_KEY_ID": TEST_ACCESS_KEY_ID, "ECRD_ROOT_SECRET_ACCESS_KEY": TEST_SECRET_ACCESS_KEY},
    )
    server.ca_file = str(files.ca_cert)
    hosts = tmp_path / "hosts"
    hosts.write_text(Path("/etc/hosts").read_text() + f"\n{LOOPBACK} {ECR_HOST}\n")
    certs = DOCKER_CERTS / ECR_HOST
    certs.mkdir(parents=True, exist_ok=True)
    shutil.copy(files.ca_cert, certs / "ca.crt")
    # A short directory: containerd's sockets live under it, and a unix socket's path has at most 107 bytes.
    engine_dir = tmp_path_factory.mktemp("dk")
    daemon = DockerDaemon(engine_dir, binary=dockerd_binary() or "dockerd", hosts_file=hosts)
    try:
        with server:
            daemon.start()
            try:
                yield server, daemon, files.ca_cert
            finally:
                daemon.stop()
    finally:
        shutil.rmtree(certs, ignore_errors=True)
        shutil.rmtree(engine_dir / "data", ignore_errors=True)


def test_the_readme_workflow_runs_with_ecrs_registry_name(
    ecr_named: tuple[HttpsEcrd, DockerDaemon, Path], tmp_path: Path
) -> None:
    server, daemon, ca = ecr_named
    aws = AwsCli(server.url, AwsCredentials(TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY), tmp_path / "aws-home",
                 binary=aws_cli_binary() or "aws")  # fmt: skip
    aws.env["AWS_CA_BUNDLE"] = str(ca)
    docker = daemon.client(tmp_path / "docker-config")
    created = aws.json(
        "ecr", "create-repository", "--repository-name", "my-repository",
        "--image-tag-mutability", "IMMUTABLE", "--image-scanning-configuration", "scanOnPush=true",
        "--encryption-configuration", "encryptionType=KMS",
    )  # fmt: skip
    assert created["repository"]["repositoryUri"] == f"{ECR_HOST}/my-repository"
    token = aws.json("ecr", "get-authorization-token")["authorizationData"][0]
    assert token["proxyEndpoint"] == f"https://{ECR_HOST}"

    # the commands as ECR's documentation and the README write them
    docker.login_from_command(ECR_HOST, aws.argv("ecr", "get-login-password"), env=aws.env)
    image = build_image((4096, 20_000), seed=4242)
    docker.load_image(image, "app:latest", tmp_path / "image")
    docker("tag", "app:latest", f"{ECR_HOST}/my-repository:latest")
    digest = docker.push(f"{ECR_HOST}/my-repository:latest")
    docker.remove_images(f"{ECR_HOST}/my-repository:latest", "app:latest")
    docker("pull", f"{ECR_HOST}/my-repository:latest")
    assert docker.image_id(f"{ECR_HOST}/my-repository:latest") == image.config_digest
    assert f"{ECR_HOST}/my-repository@{digest}" in docker.repo_digests(f"{ECR_HOST}/my-repository:latest")

    deadline = time.monotonic() + SCAN_DEADLINE
    findings: Any = None
    while time.monotonic() < deadline:
        findings = aws.json(
            "ecr", "describe-image-scan-findings", "--repository-name", "my-repository", "--image-id", "imageTag=latest"
        )
        if findings["imageScanStatus"]["status"] != "IN_PROGRESS":
            break
        time.sleep(0.5)
    # the scan ran: an image of bare files has no operating system to match advisories against, as ECR says
    assert findings["imageScanStatus"]["status"] == "UNSUPPORTED_IMAGE"
    assert findings["imageId"]["imageDigest"] == digest
