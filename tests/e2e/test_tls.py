"""ecrd serving HTTPS itself (--tls-cert/--tls-key): docker and boto3 trust it through a private CA."""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.clients import TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY
from tests.support.dockerd import DockerDaemon
from tests.support.images import build_image, write_docker_archive
from tests.support.registry_process import EcrdProcess, RegistryUnderTest
from tests.support.tls import TlsFiles, make_ca_and_server_cert

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

# dockerd trusts a registry's CA from here (read on each connection, so no restart is needed).
DOCKER_CERTS = Path("/etc/docker/certs.d")


class HttpsEcrd(EcrdProcess):
    scheme = "https"


@pytest.fixture
def tls_server(tmp_path: Path, registry: RegistryUnderTest) -> Iterator[tuple[HttpsEcrd, TlsFiles]]:
    if registry.kind != "ecrd":
        pytest.skip("serving TLS is ecrd's own option")
    files = make_ca_and_server_cert(tmp_path / "tls")
    server = HttpsEcrd(
        tmp_path / "ecrd",
        extra_args=["--tls-cert", str(files.server_cert), "--tls-key", str(files.server_key)],
        env={"ECRD_ROOT_ACCESS_KEY_ID": TEST_ACCESS_KEY_ID, "ECRD_ROOT_SECRET_ACCESS_KEY": TEST_SECRET_ACCESS_KEY},
    )
    server.ca_file = str(files.ca_cert)
    server.start()
    try:
        yield server, files
    finally:
        server.stop()


def test_docker_pushes_and_pulls_over_https_with_a_private_ca(
    tls_server: tuple[HttpsEcrd, TlsFiles], dockerd: DockerDaemon, tmp_path: Path
) -> None:
    # given an HTTPS registry whose CA docker has been told to trust
    server, files = tls_server
    certs = DOCKER_CERTS / server.host
    certs.mkdir(parents=True, exist_ok=True)
    shutil.copy(files.ca_cert, certs / "ca.crt")
    try:
        ecr = _verified_client(server.url, str(files.ca_cert))
        ecr.create_repository(repositoryName="tls/app")
        token = ecr.get_authorization_token()["authorizationData"][0]
        assert token["proxyEndpoint"].startswith("https://")
        password = base64.b64decode(token["authorizationToken"]).decode().split(":", 1)[1]
        docker = dockerd.client(tmp_path / "docker-config")
        docker.login(server.host, "AWS", password)
        image = build_image((256 * 1024, 4096), seed=7)
        reference = f"{server.host}/tls/app:v1"
        archive = tmp_path / "image.tar"
        write_docker_archive(archive, image, repo_tags=[reference])
        docker.load(archive)

        # when the image is pushed, removed and pulled over HTTPS
        docker("push", reference)
        docker.remove_images(reference)
        docker("pull", reference)

        # then it is the same image, and plain HTTP on that port gets nowhere
        assert docker.image_id(reference) == image.config_digest
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(f"http://{server.host}/v2/", timeout=5)
    finally:
        shutil.rmtree(certs, ignore_errors=True)


def _verified_client(url: str, ca_file: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session(
        aws_access_key_id=TEST_ACCESS_KEY_ID, aws_secret_access_key=TEST_SECRET_ACCESS_KEY, region_name="us-east-1"
    ).client(
        "ecr",
        endpoint_url=url,
        verify=ca_file,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=60),
    )
