"""Every operation of both doors authorizes: a caller with no permissions is refused by name, never served.

Each AWS operation in the door's table is called in-process by an IAM user with no policies, with the
smallest valid input its botocore model allows (required members only, plausible values), and must answer
AccessDenied naming the operation's IAM action. Each /v2/ route must answer 403 DENIED to a logged-in caller
without permissions. The exceptions are listed below, each with AWS's reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from starlette.testclient import TestClient

from ecrd.app import Registry, asgi_app
from ecrd.aws.door import JSON_TARGET_PREFIXES, OPERATIONS
from ecrd.aws.ecr_pull_policy import PULL_POLICY_OPERATIONS
from ecrd.aws.models import service_model
from tests.conftest import ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY, basic_auth_for

BASE_URL = "http://127.0.0.1:5000"
ACCOUNT = "000000000000"
QUERY_VERSIONS = {"iam": "2010-05-08", "sts": "2011-06-15"}

# Operations AWS lets any authenticated caller run, whatever its policies.
NEEDS_NO_PERMISSION: dict[tuple[str, str], str] = {
    # STS API reference: "No permissions are required to perform this operation" (GetCallerIdentity).
    ("sts", "GetCallerIdentity"): "no permission required",
    # STS API reference (GetSessionToken): "No permissions are required for users to perform this operation."
    ("sts", "GetSessionToken"): "no permission required",
    # Not exempt: AssumeRole, decided by the role's trust policy with the caller's identity policies (a role
    # that does not exist is refused as AccessDenied naming sts:AssumeRole, as AWS does).
}

# Inputs the model leaves optional but the service requires one of (KMS: "Please specify either number of bytes
# or key spec"; Secrets Manager: a value in SecretString or SecretBinary, a Key in every tag), added to the
# model's required members.
EXTRA_INPUT: dict[tuple[str, str], dict[str, Any]] = {
    ("kms", "GenerateDataKey"): {"KeySpec": "AES_256"},
    ("kms", "GenerateDataKeyWithoutPlaintext"): {"KeySpec": "AES_256"},
    ("secretsmanager", "PutSecretValue"): {"SecretString": "x"},
    ("secretsmanager", "TagResource"): {"Tags": [{"Key": "team", "Value": "blue"}]},
    # ecrd's pull policy operations name a repository or a template prefix, one of the two.
    ("ecr", "PutImagePullPolicy"): {"repositoryName": "app"},
    ("ecr", "GetImagePullPolicy"): {"repositoryName": "app"},
    ("ecr", "DeleteImagePullPolicy"): {"repositoryName": "app"},
}

# ecrd's own operations on an AWS door, whose IAM actions carry ecrd's prefix (decision 0030).
ACTION_PREFIXES: dict[tuple[str, str], str] = {("ecr", operation): "ecrd" for operation in PULL_POLICY_OPERATIONS}

# Member values that satisfy each model's constraints and point at plausible (absent) resources.
VALUES: dict[str, str] = {
    "repositoryName": "app",
    "principalArn": f"arn:aws:iam::{ACCOUNT}:user/absent",
    "registryId": ACCOUNT,
    "resourceArn": f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/app",
    "uploadId": "00000000-0000-0000-0000-000000000000",
    "imageDigest": "sha256:" + "0" * 64,
    "layerDigest": "sha256:" + "0" * 64,
    "layerDigests": "sha256:" + "0" * 64,
    "imageManifest": json.dumps({"schemaVersion": 2}),
    "policyText": json.dumps({"Version": "2012-10-17", "Statement": []}),
    "PolicyDocument": json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}]}
    ),
    "AssumeRolePolicyDocument": json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}
            ],
        }
    ),
    "Policy": json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ],
        }
    ),
    "PolicyArn": f"arn:aws:iam::{ACCOUNT}:policy/absent",
    "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/absent",
    "RoleSessionName": "session",
    "VersionId": "v1",
    "UserName": "nobody-else",
    "RoleName": "absent",
    "PolicyName": "absent",
    "AccessKeyId": "AKIAABSENTKEY0000000",
    "Status": "Inactive",
    "KeyId": "11111111-2222-3333-4444-555555555555",
    "TargetKeyId": "11111111-2222-3333-4444-555555555555",
    "AliasName": "alias/absent",
    "TagKey": "team",
    "Key": "team",
    "Value": "blue",
    "SecretId": "app/db",
    "Name": "app/db",
    "VersionStage": "AWSCURRENT",
    "replicationBackfillId": "00000000-0000-4000-8000-000000000000",
    "region": "eu-west-1",
    "signingProfileArn": f"arn:aws:signer:us-east-1:{ACCOUNT}:/signing-profiles/absent",
}


def minimal(shape: Any, name: str = "") -> Any:
    """The smallest value ``shape`` accepts: required members only, ``VALUES`` where a name is known."""
    kind = shape.type_name
    if kind == "structure":
        return {member: minimal(shape.members[member], member) for member in shape.required_members}
    if kind == "list":
        return [minimal(shape.member, name)] * max(1, shape.metadata.get("min", 1))
    if kind == "map":
        return {"k": minimal(shape.value, name)}
    if kind == "blob":
        return "AAAA"
    if kind in ("integer", "long"):
        return max(shape.metadata.get("min", 1), 1)
    if kind == "boolean":
        return False
    if kind == "timestamp":
        return 0
    if getattr(shape, "enum", None):
        return shape.enum[0]
    if name in VALUES:
        return VALUES[name]
    return "x" * max(shape.metadata.get("min", 1), 1)


def _sign(service: str, body: bytes, headers: dict[str, str], key: tuple[str, str]) -> dict[str, str]:
    request = AWSRequest(method="POST", url=BASE_URL + "/", data=body, headers=headers)
    SigV4Auth(Credentials(*key), service, "us-east-1").add_auth(request)
    return {name: str(value) for name, value in request.headers.items()}


def call(
    client: TestClient, service: str, operation: str, params: dict[str, Any], key: tuple[str, str]
) -> tuple[int, str, str]:
    """Call an operation as boto3 would; return the status, the error code (or "") and the message."""
    if service in JSON_TARGET_PREFIXES:
        body = json.dumps(params).encode()
        headers = {
            "X-Amz-Target": f"{JSON_TARGET_PREFIXES[service]}.{operation}",
            "Content-Type": "application/x-amz-json-1.1",
        }
        answer = client.post("/", content=body, headers=_sign(service, body, headers, key))
        if answer.status_code == 200:
            return 200, "", ""
        error = answer.json()
        return answer.status_code, str(error["__type"]), str(error.get("message", ""))
    form = {"Action": operation, "Version": QUERY_VERSIONS[service], **_flatten(params)}
    body = "&".join(f"{quote(k, safe='')}={quote(str(v), safe='')}" for k, v in form.items()).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    answer = client.post("/", content=body, headers=_sign(service, body, headers, key))
    if answer.status_code == 200:
        return 200, "", ""
    text = answer.text
    code = text.split("<Code>")[1].split("</Code>")[0]
    message = text.split("<Message>")[1].split("</Message>")[0]
    return answer.status_code, code, message


def _flatten(params: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for name, value in params.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict):
            flat.update(_flatten(value, key + "."))
        elif isinstance(value, list):
            for index, item in enumerate(value, start=1):
                if isinstance(item, dict):
                    flat.update(_flatten(item, f"{key}.member.{index}."))
                else:
                    flat[f"{key}.member.{index}"] = str(item)
        else:
            flat[key] = str(value).lower() if isinstance(value, bool) else str(value)
    return flat


@pytest.fixture
def client(registry: Registry) -> Iterator[TestClient]:
    with TestClient(asgi_app(registry), base_url=BASE_URL) as test_client:
        yield test_client


@pytest.fixture
def root_key(client: TestClient) -> tuple[str, str]:
    """A KMS key and a ciphertext under it, made by the root: KMS answers NotFound for a key that does not
    exist before any policy is consulted (a key policy needs its key), so the denial is checked on a real one."""
    root = (ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY)
    created = _json_call(client, "CreateKey", {}, root)
    key_id = str(created["KeyMetadata"]["KeyId"])
    ciphertext = str(_json_call(client, "Encrypt", {"KeyId": key_id, "Plaintext": "AAAA"}, root)["CiphertextBlob"])
    return key_id, ciphertext


def _json_call(client: TestClient, operation: str, params: dict[str, Any], key: tuple[str, str]) -> Any:
    body = json.dumps(params).encode()
    headers = {"X-Amz-Target": f"TrentService.{operation}", "Content-Type": "application/x-amz-json-1.1"}
    answer = client.post("/", content=body, headers=_sign("kms", body, headers, key))
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.fixture
def nobody(client: TestClient) -> tuple[str, str]:
    """An IAM user with an access key and no policies at all."""
    root = (ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY)
    assert call(client, "iam", "CreateUser", {"UserName": "nobody"}, root)[0] == 200
    answer = client.post(
        "/",
        content=b"Action=CreateAccessKey&Version=2010-05-08&UserName=nobody",
        headers=_sign(
            "iam",
            b"Action=CreateAccessKey&Version=2010-05-08&UserName=nobody",
            {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
            root,
        ),
    )
    assert answer.status_code == 200, answer.text
    text = answer.text
    key_id = text.split("<AccessKeyId>")[1].split("</AccessKeyId>")[0]
    secret = text.split("<SecretAccessKey>")[1].split("</SecretAccessKey>")[0]
    return key_id, secret


AWS_OPERATIONS = [(service, operation) for service, table in OPERATIONS.items() for operation in table]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("service", "operation"), AWS_OPERATIONS, ids=[f"{s}:{o}" for s, o in AWS_OPERATIONS])
def test_every_aws_operation_refuses_a_caller_without_permissions(
    client: TestClient, nobody: tuple[str, str], root_key: tuple[str, str], service: str, operation: str
) -> None:
    # Given a user with no policies, and the smallest valid input of the operation
    model = service_model(service).operation_model(operation)
    params = minimal(model.input_shape) if model.input_shape is not None else {}
    params.update(EXTRA_INPUT.get((service, operation), {}))
    if service == "kms":
        params.update({name: root_key[0] for name in ("KeyId", "TargetKeyId") if name in params})
        if "CiphertextBlob" in model.input_shape.members:
            params["CiphertextBlob"] = root_key[1]

    # When the user calls it
    status, code, message = call(client, service, operation, params, nobody)

    # Then it is refused, naming the action, unless AWS lets anyone call it
    if (service, operation) in NEEDS_NO_PERMISSION:
        assert status == 200, (code, message)
        return
    assert code in ("AccessDeniedException", "AccessDenied"), (status, code, message)
    assert f"{ACTION_PREFIXES.get((service, operation), service)}:{operation}" in message, message


# /v2/ (the version check) and /v2/_catalog (which lists only the repositories the caller may describe) are
# tested on their own below.
ROUTES: list[tuple[str, str]] = [
    ("GET", "/v2/app/tags/list"),
    ("GET", "/v2/app/manifests/latest"),
    ("HEAD", "/v2/app/manifests/latest"),
    ("PUT", "/v2/app/manifests/latest"),
    ("DELETE", "/v2/app/manifests/sha256:" + "0" * 64),
    ("GET", "/v2/app/blobs/sha256:" + "0" * 64),
    ("HEAD", "/v2/app/blobs/sha256:" + "0" * 64),
    ("DELETE", "/v2/app/blobs/sha256:" + "0" * 64),
    ("POST", "/v2/app/blobs/uploads/"),
    ("GET", "/v2/app/blobs/uploads/00000000-0000-0000-0000-000000000000"),
    ("PATCH", "/v2/app/blobs/uploads/00000000-0000-0000-0000-000000000000"),
    ("PUT", "/v2/app/blobs/uploads/00000000-0000-0000-0000-000000000000?digest=sha256:" + "0" * 64),
    ("DELETE", "/v2/app/blobs/uploads/00000000-0000-0000-0000-000000000000"),
    ("GET", "/v2/app/referrers/sha256:" + "0" * 64),
]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p.split('?')[0]}" for m, p in ROUTES])
def test_every_oci_route_refuses_a_caller_without_permissions(
    registry: Registry, client: TestClient, nobody: tuple[str, str], method: str, path: str
) -> None:
    # Given the repository exists (so a refusal cannot be a "not found") and a logged-in user with no policies
    root = (ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY)
    assert call(client, "ecr", "CreateRepository", {"repositoryName": "app"}, root)[0] == 200
    headers = {"Authorization": basic_auth_for(registry, nobody[0])}

    # When the user calls the route
    answer = client.request(method, path, headers=headers, content=b"{}" if method in ("PUT", "PATCH") else None)

    # Then it is refused as DENIED (a HEAD carries no body to say so)
    assert answer.status_code == 403, (answer.status_code, answer.text)
    if method != "HEAD":
        assert answer.json()["errors"][0]["code"] == "DENIED"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_base_route_answers_any_logged_in_caller(
    registry: Registry, client: TestClient, nobody: tuple[str, str]
) -> None:
    # The distribution spec's version check: it tells a client that it is logged in, and nothing more.
    answer = client.get("/v2/", headers={"Authorization": basic_auth_for(registry, nobody[0])})
    assert answer.status_code == 200


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_catalog_shows_a_caller_only_what_it_may_describe(
    registry: Registry, client: TestClient, nobody: tuple[str, str]
) -> None:
    # The catalog is not an ECR action: it authorizes ecr:DescribeRepositories per repository and leaves
    # out what the caller may not describe, so a caller without permissions learns nothing.
    root = (ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY)
    assert call(client, "ecr", "CreateRepository", {"repositoryName": "app"}, root)[0] == 200
    answer = client.get("/v2/_catalog", headers={"Authorization": basic_auth_for(registry, nobody[0])})
    assert answer.status_code == 200
    assert answer.json()["repositories"] == []
