"""Operators see every request as one log line, and every write and denial in the queryable audit trail."""

from __future__ import annotations

import dataclasses
import json
import logging
import time

import pytest
import requests
from botocore.exceptions import ClientError

from ecrd.app import Registry
from ecrd.config import Settings
from tests.conftest import ROOT_SECRET_ACCESS_KEY
from tests.integration.test_access_control import READ_ONLY, _login
from tests.integration.test_ecr_api import client_for
from tests.support.oci import random_blob


def test_writes_and_denials_are_audited_and_reads_are_not(
    endpoint: str, registry: Registry, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    iam = client_for(endpoint, "iam")
    iam.create_user(UserName="alice")
    iam.attach_user_policy(UserName="alice", PolicyArn=READ_ONLY)
    key = iam.create_access_key(UserName="alice")["AccessKey"]
    client_for(endpoint, "ecr").create_repository(repositoryName="audited")
    client_for(endpoint, "ecr").describe_repositories()
    session = _login(endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    assert session.post(f"{endpoint}/v2/audited/blobs/uploads/").status_code == 403
    assert requests.get(f"{endpoint}/v2/", auth=("AWS", "forged"), timeout=10).status_code == 401

    events = registry.audit.events(limit=50)
    actions = [(e.action, e.outcome) for e in events]
    assert ("ecr:CreateRepository", "allowed") in actions
    assert ("iam:CreateUser", "allowed") in actions
    assert ("ecr:InitiateLayerUpload", "denied") in actions
    assert not any(a == "ecr:DescribeRepositories" for a, _ in actions)
    denial = next(e for e in events if e.action == "ecr:InitiateLayerUpload")
    assert denial.principal == "arn:aws:iam::000000000000:user/alice"
    assert denial.repository == "audited"
    assert denial.status == 403
    assert any(e.status == 401 and e.outcome == "denied" for e in events)

    from ecrd.cli.main import main

    flags = ["--data-dir", str(settings.data_dir), "--database-url", settings.resolved_database_url]
    assert main(["audit", "--principal", denial.principal, "--json", *flags]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["action"] for line in lines] == ["ecr:InitiateLayerUpload"]
    assert main(["audit", "--repository", "audited", "--outcome", "allowed", *flags]) == 0
    assert "ecr:CreateRepository" in capsys.readouterr().out


def test_the_anonymous_challenge_before_docker_authenticates_is_not_a_denial(endpoint: str, registry: Registry) -> None:
    client_for(endpoint, "ecr").create_repository(repositoryName="challenged")
    # What docker and skopeo send first: no credentials at all, answered 401 with the Basic challenge.
    assert requests.get(f"{endpoint}/v2/", timeout=10).status_code == 401
    assert requests.post(f"{endpoint}/v2/challenged/blobs/uploads/", timeout=10).status_code == 401
    assert requests.head(f"{endpoint}/v2/challenged/manifests/latest", timeout=10).status_code == 401
    assert not [e for e in registry.audit.events(limit=50) if e.status == 401]
    # Credentials that fail are a denial.
    assert requests.get(f"{endpoint}/v2/", auth=("AWS", "forged"), timeout=10).status_code == 401
    assert [(e.status, e.outcome) for e in registry.audit.events(limit=50) if e.status == 401] == [(401, "denied")]


def test_each_request_is_one_structured_line_without_secrets(endpoint: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    ecr = client_for(endpoint, "ecr")
    ecr.create_repository(repositoryName="logged")
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    session = requests.Session()
    session.headers["Authorization"] = f"Basic {token}"
    blob = random_blob(2048)
    assert session.post(f"{endpoint}/v2/logged/blobs/uploads/?digest={blob.digest}", data=blob.data).status_code == 201
    # The line is written once the response is sent, so it may land just after the client has its answer.
    deadline = time.monotonic() + 10
    while True:
        lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "ecrd.access"]
        pushes = [line for line in lines if line["path"] == "/v2/logged/blobs/uploads/"]
        if pushes or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    push = pushes[0]
    assert push["status"] == 201
    assert push["action"] == "ecr:InitiateLayerUpload"
    assert push["repository"] == "logged"
    assert push["principal"] == "arn:aws:iam::000000000000:root"
    assert push["bytesIn"] == 2048
    assert push["durationMs"] >= 0
    api = next(line for line in lines if line["action"] == "ecr:CreateRepository")
    assert api["status"] == 200
    # The server's logs only: boto3 itself logs response bodies at DEBUG on the client side.
    text = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith(("botocore", "boto3", "urllib3")))
    password = __import__("base64").b64decode(token).decode().split(":", 1)[1]
    for secret in (ROOT_SECRET_ACCESS_KEY, token, password):
        assert secret not in text


def test_secret_values_never_reach_the_servers_logs_or_audit(
    endpoint: str, registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = client_for(endpoint, "secretsmanager")
    # A string, a binary value and its base64 on the wire, an update, and a value too long for the model.
    values = ["s3cr3t-string-value", "c2VjcmV0LWJpbmFyeQ", "an-updated-value", "too-long-" + "z" * 70000]
    secrets.create_secret(Name="logged", SecretString=values[0])
    secrets.put_secret_value(SecretId="logged", SecretBinary=b"secret-binary", ClientRequestToken="t" * 32)
    with pytest.raises(ClientError):
        secrets.put_secret_value(SecretId="logged", SecretString="changed", ClientRequestToken="t" * 32)
    secrets.update_secret(SecretId="logged", SecretString=values[2])
    secrets.get_secret_value(SecretId="logged")
    with pytest.raises(ClientError) as too_long:
        secrets.put_secret_value(SecretId="logged", SecretString=values[3])
    assert values[3][:20] not in too_long.value.response["Error"]["Message"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [r.getMessage() for r in caplog.records if r.name == "ecrd.access"]
        if any("secretsmanager:GetSecretValue" in line for line in lines):
            break
        time.sleep(0.01)
    text = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith(("botocore", "boto3", "urllib3")))
    assert "secretsmanager:PutSecretValue" in text
    audit = json.dumps([dataclasses.asdict(event) for event in registry.audit.events(limit=100)], default=str)
    assert "secretsmanager:UpdateSecret" in audit
    for secret in (*values[:3], "secret-binary", values[3][:20]):
        assert secret not in text
        assert secret not in audit
