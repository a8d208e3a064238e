"""A pull-through cache rule whose upstream is Amazon ECR (``upstreamRegistry: ecr``), played by a second ecrd
(``ecrd serve``, standing in for another account's registry): the rule's ``customRoleArn`` is assumed through
the upstream's STS with the peer access key of its secret, pulled with the role's authorization token; on
SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from ecrd.app import Registry
from ecrd.config import Settings
from tests.conftest import ROOT_ACCESS_KEY_ID, basic_auth_for
from tests.integration.test_ecr_api import client_for
from tests.integration.test_pull_through_cache import UpstreamImage
from tests.support.clients import (
    TEST_ACCESS_KEY_ID,
    TEST_SECRET_ACCESS_KEY,
    AwsCredentials,
    OciHttp,
    aws_client,
    bound_in_time,
    ecr_registry_credentials,
    registry_session,
)
from tests.support.live_server import live_server
from tests.support.oci import OCI_MANIFEST, config_blob, digest_of, image_manifest, random_blob
from tests.support.registry_process import EcrdProcess

TIMEOUT = 60.0
ROLE = "cache-puller"


@dataclasses.dataclass(frozen=True)
class Peer:
    """The upstream ecrd, its role for pulls, an access key that may assume it, and an image in it."""

    process: EcrdProcess
    role_arn: str
    key: AwsCredentials
    image: UpstreamImage


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    process = EcrdProcess(
        tmp_path_factory.mktemp("upstream-ecrd"),
        env={"ECRD_ROOT_ACCESS_KEY_ID": TEST_ACCESS_KEY_ID, "ECRD_ROOT_SECRET_ACCESS_KEY": TEST_SECRET_ACCESS_KEY},
    )
    process.start()
    try:
        iam = aws_client("iam", process.url)
        user_arn = iam.create_user(UserName="downstream-cache")["User"]["Arn"]
        created = iam.create_access_key(UserName="downstream-cache")["AccessKey"]
        trust = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": user_arn}, "Action": "sts:AssumeRole"}],
        }
        role_arn = iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        iam.attach_role_policy(RoleName=ROLE, PolicyArn="arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly")
        ecr = aws_client("ecr", process.url)
        repository = "team/app"
        ecr.create_repository(repositoryName=repository)
        config, layer = config_blob({"author": "upstream"}), random_blob(2 * 1024 * 1024 + 5)
        manifest = image_manifest(config, [layer])
        with registry_session(ecr_registry_credentials(ecr)) as session:
            http = OciHttp(session, process.url)
            for blob in (config, layer):
                http.push_blob(repository, blob.data, blob.digest)
            assert http.put_manifest(repository, "1", manifest, OCI_MANIFEST).status_code == 201
        key = AwsCredentials(created["AccessKeyId"], created["SecretAccessKey"])
        yield Peer(process, role_arn, key, UpstreamImage(repository, "1", manifest, [config, layer]))
    finally:
        process.stop()


@pytest.fixture
def settings(settings: Settings, peer: Peer) -> Settings:
    return dataclasses.replace(settings, insecure_upstream=peer.process.host)


@pytest.fixture
def endpoint(registry: Registry) -> Iterator[str]:
    with live_server(registry) as url:
        yield url


def _rule(endpoint: str, peer: Peer, prefix: str, role_arn: str) -> Any:
    value = json.dumps({"username": peer.key.access_key_id, "accessToken": peer.key.secret_access_key})
    arn = client_for(endpoint, "secretsmanager").create_secret(
        Name=f"ecr-pullthroughcache/{prefix}", SecretString=value
    )["ARN"]
    ecr = client_for(endpoint, "ecr")
    ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix=prefix,
        upstreamRegistryUrl=peer.process.host,
        upstreamRegistry="ecr",
        customRoleArn=role_arn,
        credentialArn=arn,
    )
    return ecr


def test_an_ecr_upstream_is_pulled_from_with_the_assumed_custom_role(
    registry: Registry, endpoint: str, peer: Peer
) -> None:
    ecr = _rule(endpoint, peer, "partner", peer.role_arn)
    assert ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="partner")["isValid"] is True

    session = bound_in_time(requests.Session())
    session.headers["Authorization"] = basic_auth_for(registry, ROOT_ACCESS_KEY_ID)
    name = f"partner/{peer.image.name}"
    got = session.get(f"{endpoint}/v2/{name}/manifests/1", headers={"Accept": OCI_MANIFEST}, timeout=TIMEOUT)
    assert got.status_code == 200, got.text
    assert got.content == peer.image.manifest
    for blob in peer.image.blobs:
        fetched = session.get(f"{endpoint}/v2/{name}/blobs/{blob.digest}", timeout=TIMEOUT)
        assert fetched.status_code == 200 and fetched.content == blob.data
    described = ecr.describe_images(repositoryName=name)["imageDetails"]
    assert [d["imageDigest"] for d in described] == [digest_of(peer.image.manifest)]


def test_a_role_the_peer_may_not_assume_fails_validation_and_pulls_with_the_upstream_s_answer(
    registry: Registry, endpoint: str, peer: Peer
) -> None:
    other = peer.role_arn.replace(ROLE, f"absent-{uuid.uuid4().hex[:6]}")
    ecr = _rule(endpoint, peer, "denied", other)
    validated = ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="denied")
    assert validated["isValid"] is False
    assert "assume" in validated["failure"] and other in validated["failure"]

    session = bound_in_time(requests.Session())
    session.headers["Authorization"] = basic_auth_for(registry, ROOT_ACCESS_KEY_ID)
    got = session.get(
        f"{endpoint}/v2/denied/{peer.image.name}/manifests/1", headers={"Accept": OCI_MANIFEST}, timeout=TIMEOUT
    )
    assert got.status_code >= 400 and got.status_code != 500
    assert other in got.json()["errors"][0]["message"]


def test_the_peer_key_is_required_for_an_ecr_upstream(tmp_path: Path, endpoint: str, peer: Peer) -> None:
    ecr = client_for(endpoint, "ecr")
    ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="keyless",
        upstreamRegistryUrl=peer.process.host,
        upstreamRegistry="ecr",
        customRoleArn=peer.role_arn,
    )
    validated = ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="keyless")
    assert validated["isValid"] is False and "credentialArn" in validated["failure"]
