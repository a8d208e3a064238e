"""The README's workflow with ECR's own registry names, character for character: ecrd serves HTTPS on port 443 with
its own --tls-cert and ``--registry-domain amazonaws.com``, the names ``ACCOUNT.dkr.ecr.REGION.amazonaws.com`` of
two accounts and two regions are mapped to 127.0.0.1 for a docker engine of the test's own (a hosts file seen only
through the engine's mount namespace), and ``aws ecr get-login-password | docker login …
000000000000.dkr.ecr.us-east-1.amazonaws.com``, tag, push and pull run as ECR's documentation writes them. Then
accounts: another account pulls through a repository policy (and its user without an allow of its own is refused
in AWS's words), and replication carries an image to another region and another account.

Needs root (a mount namespace, port 443): skipped elsewhere, saying why.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
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
    policy_json,
    run_tool,
)
from tests.support.dockerd import DockerDaemon, dockerd_binary
from tests.support.images import build_image
from tests.support.ports import LOOPBACK
from tests.support.registry_process import EcrdProcess
from tests.support.tls import make_ca_and_server_cert

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ACCOUNT_A = "000000000000"
ACCOUNT_B = "222222222222"
ECR_HOST = f"{ACCOUNT_A}.dkr.ecr.us-east-1.amazonaws.com"
A_WEST_HOST = f"{ACCOUNT_A}.dkr.ecr.eu-west-1.amazonaws.com"
B_HOST = f"{ACCOUNT_B}.dkr.ecr.us-east-1.amazonaws.com"
HOSTS = (ECR_HOST, A_WEST_HOST, B_HOST)
REPLICATION_DEADLINE = 120.0
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
        # As a server binds: connections of an earlier test waiting out TIME_WAIT on the port do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
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
    files = make_ca_and_server_cert(tmp_path / "tls", names=list(HOSTS))
    server = HttpsEcrd(
        tmp_path / "ecrd",
        port=443,
        extra_args=[
            *("--tls-cert", str(files.server_cert), "--tls-key", str(files.server_key)),
            *("--registry-domain", "amazonaws.com"),
        ],
        env={"ECRD_ROOT_ACCESS_KEY_ID": TEST_ACCESS_KEY_ID, "ECRD_ROOT_SECRET_ACCESS_KEY": TEST_SECRET_ACCESS_KEY},
    )
    server.ca_file = str(files.ca_cert)
    hosts = tmp_path / "hosts"
    hosts.write_text(Path("/etc/hosts").read_text() + f"\n{LOOPBACK} {' '.join(HOSTS)}\n")
    certs = [DOCKER_CERTS / host for host in HOSTS]
    for directory in certs:
        directory.mkdir(parents=True, exist_ok=True)
        shutil.copy(files.ca_cert, directory / "ca.crt")
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
        for directory in certs:
            shutil.rmtree(directory, ignore_errors=True)
        shutil.rmtree(engine_dir / "data", ignore_errors=True)


def test_the_readme_workflow_runs_with_ecrs_registry_name(
    ecr_named: tuple[HttpsEcrd, DockerDaemon, Path], tmp_path: Path
) -> None:
    server, daemon, ca = ecr_named
    aws = _aws_cli(server, AwsCredentials(TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY), ca, tmp_path / "aws-home")
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


def _aws_cli(server: HttpsEcrd, credentials: AwsCredentials, ca: Path, home: Path) -> AwsCli:
    aws = AwsCli(server.url, credentials, home, binary=aws_cli_binary() or "aws")
    aws.env["AWS_CA_BUNDLE"] = str(ca)
    return aws


def _new_account(server: HttpsEcrd, account_id: str) -> AwsCredentials:
    """``export $(ecrd account create --account-id ID)``: the new account's root key, from the two lines."""
    created = run_tool(
        [sys.executable, "-m", "ecrd", "account", "create", "--account-id", account_id, "--data-dir",
         str(server.data_dir)],
        timeout=120,
        env=server.environment(),
    )  # fmt: skip
    variables = dict(line.split("=", 1) for line in created.stdout.splitlines())
    assert set(variables) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    return AwsCredentials(variables["AWS_ACCESS_KEY_ID"], variables["AWS_SECRET_ACCESS_KEY"])


def _replicated(aws: AwsCli, destinations: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + REPLICATION_DEADLINE
    statuses: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        statuses = aws.json(
            "ecr", "describe-image-replication-status", "--repository-name", "app", "--image-id", "imageTag=latest"
        )["replicationStatuses"]
        if len(statuses) == destinations and all(s["status"] != "IN_PROGRESS" for s in statuses):
            break
        time.sleep(0.5)
    return statuses


def test_accounts_pull_across_and_images_replicate_to_regions_and_accounts(
    ecr_named: tuple[HttpsEcrd, DockerDaemon, Path], tmp_path: Path
) -> None:
    server, daemon, ca = ecr_named
    a = _aws_cli(server, AwsCredentials(TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY), ca, tmp_path / "aws-a")
    b = _aws_cli(server, _new_account(server, ACCOUNT_B), ca, tmp_path / "aws-b")
    a_root = f"arn:aws:iam::{ACCOUNT_A}:root"
    app_arn = f"arn:aws:ecr:us-east-1:{ACCOUNT_A}:repository/app"
    # B takes replicas from A (ECR: the destination's registry policy), A lets B's account pull "app".
    b("ecr", "put-registry-policy", "--policy-text", policy_json(
        {"Effect": "Allow", "Principal": {"AWS": a_root}, "Action": ["ecr:ReplicateImage", "ecr:CreateRepository"],
         "Resource": f"arn:aws:ecr:us-east-1:{ACCOUNT_B}:repository/*"}))  # fmt: skip
    a("ecr", "create-repository", "--repository-name", "app")
    pulls = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
    a("ecr", "set-repository-policy", "--repository-name", "app", "--policy-text", policy_json(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_B}:root"}, "Action": pulls}))  # fmt: skip
    a("ecr", "put-replication-configuration", "--replication-configuration", json.dumps(
        {"rules": [{"destinations": [{"region": "eu-west-1", "registryId": ACCOUNT_A},
                                     {"region": "us-east-1", "registryId": ACCOUNT_B}]}]}))  # fmt: skip

    pusher = daemon.client(tmp_path / "docker-a")
    pusher.login_from_command(ECR_HOST, a.argv("ecr", "get-login-password"), env=a.env)
    image = build_image((4096, 20_000), seed=4343)
    pusher.load_image(image, "app:latest", tmp_path / "image")
    pusher("tag", "app:latest", f"{ECR_HOST}/app:latest")
    pusher.push(f"{ECR_HOST}/app:latest")
    statuses = _replicated(a, 2)
    assert sorted((s["region"], s["registryId"], s["status"]) for s in statuses) == [
        ("eu-west-1", ACCOUNT_A, "COMPLETE"),
        ("us-east-1", ACCOUNT_B, "COMPLETE"),
    ], statuses

    def pulled(client: Any, reference: str) -> bool:
        client.remove_images(reference)
        client("pull", reference)
        return bool(client.image_id(reference) == image.config_digest)

    # The other region of A, with a token of that region.
    pusher.login_from_command(A_WEST_HOST, a.argv("ecr", "get-login-password", "--region", "eu-west-1"), env=a.env)
    assert pulled(pusher, f"{A_WEST_HOST}/app:latest")
    # B: A's repository through its policy, and B's own replica.
    puller = daemon.client(tmp_path / "docker-b")
    for host in (ECR_HOST, B_HOST):
        puller.login_from_command(host, b.argv("ecr", "get-login-password"), env=b.env)
    assert pulled(puller, f"{ECR_HOST}/app:latest")
    assert pulled(puller, f"{B_HOST}/app:latest")

    # A user of B that may log in but has no allow of its own for A's repository: A's grant to B is not enough.
    b("iam", "create-user", "--user-name", "ci")
    b("iam", "put-user-policy", "--user-name", "ci", "--policy-name", "login", "--policy-document", policy_json(
        {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"}))  # fmt: skip
    key = b.json("iam", "create-access-key", "--user-name", "ci")["AccessKey"]
    ci = _aws_cli(server, AwsCredentials.from_access_key(key), ca, tmp_path / "aws-ci")
    refused_client = daemon.client(tmp_path / "docker-ci")
    refused_client.login_from_command(ECR_HOST, ci.argv("ecr", "get-login-password"), env=ci.env)
    refused = refused_client("pull", f"{ECR_HOST}/app:latest", check=False)
    assert refused.returncode != 0
    assert (
        f"User: arn:aws:iam::{ACCOUNT_B}:user/ci is not authorized to perform: ecr:BatchGetImage on resource: "
        f"{app_arn} because no identity-based policy allows the ecr:BatchGetImage action"
    ) in refused.stdout + refused.stderr
