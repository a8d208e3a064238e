"""IAM users, managed and repository policies, decided by one engine on both doors (in-process server)."""

from __future__ import annotations

import base64
import json

import pytest
import requests
from botocore.exceptions import ClientError

from tests.integration.test_ecr_api import client_for, error_code
from tests.support.oci import config_blob, image_manifest, random_blob

ACCOUNT = "000000000000"
READ_ONLY = "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"


@pytest.fixture
def alice(endpoint: str) -> tuple[str, str]:
    iam = client_for(endpoint, "iam")
    iam.create_user(UserName="alice")
    iam.attach_user_policy(UserName="alice", PolicyArn=READ_ONLY)
    key = iam.create_access_key(UserName="alice")["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def _login(endpoint: str, key: str, secret: str, session_token: str | None = None) -> requests.Session:
    ecr = client_for(endpoint, "ecr", key, secret, session_token)
    token = ecr.get_authorization_token()["authorizationData"][0]
    session = requests.Session()
    session.headers["Authorization"] = "Basic " + token["authorizationToken"]
    return session


def _seed_image(endpoint: str) -> bytes:
    root = requests.Session()
    root.headers["Authorization"] = (
        "Basic " + client_for(endpoint, "ecr").get_authorization_token()["authorizationData"][0]["authorizationToken"]
    )
    config, layer = config_blob(), random_blob()
    for blob in (config, layer):
        assert root.post(f"{endpoint}/v2/app/blobs/uploads/?digest={blob.digest}", data=blob.data).status_code == 201
    manifest = image_manifest(config, [layer])
    assert (
        root.put(
            f"{endpoint}/v2/app/manifests/v1",
            data=manifest,
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        ).status_code
        == 201
    )
    return manifest


def test_read_only_user_pulls_but_cannot_push(endpoint: str, alice: tuple[str, str]) -> None:
    client_for(endpoint, "ecr").create_repository(repositoryName="app")
    manifest = _seed_image(endpoint)
    session = _login(endpoint, *alice)
    assert session.get(f"{endpoint}/v2/app/manifests/v1").content == manifest
    denied = session.post(f"{endpoint}/v2/app/blobs/uploads/")
    assert denied.status_code == 403
    error = denied.json()["errors"][0]
    assert error["code"] == "DENIED"
    assert error["message"] == (
        f"User: arn:aws:iam::{ACCOUNT}:user/alice is not authorized to perform: ecr:InitiateLayerUpload on "
        f"resource: arn:aws:ecr:us-east-1:{ACCOUNT}:repository/app because no identity-based policy allows the "
        "ecr:InitiateLayerUpload action"
    )
    with pytest.raises(ClientError) as api_denied:
        client_for(endpoint, "ecr", *alice).create_repository(repositoryName="other")
    assert error_code(api_denied) == "AccessDeniedException"
    assert (
        f"User: arn:aws:iam::{ACCOUNT}:user/alice is not authorized to perform: ecr:CreateRepository on "
        f"resource: arn:aws:ecr:us-east-1:{ACCOUNT}:repository/other"
    ) in str(api_denied.value)


def test_repository_policy_grants_push_and_its_explicit_deny_wins(endpoint: str, alice: tuple[str, str]) -> None:
    ecr = client_for(endpoint, "ecr")
    ecr.create_repository(repositoryName="app")
    alice_arn = f"arn:aws:iam::{ACCOUNT}:user/alice"
    push = ["ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload", "ecr:PutImage"]
    allow = {"Sid": "push", "Effect": "Allow", "Principal": {"AWS": alice_arn}, "Action": push}
    ecr.set_repository_policy(
        repositoryName="app", policyText=json.dumps({"Version": "2012-10-17", "Statement": [allow]})
    )
    session = _login(endpoint, *alice)
    blob = random_blob()
    assert session.post(f"{endpoint}/v2/app/blobs/uploads/?digest={blob.digest}", data=blob.data).status_code == 201
    deny = {"Sid": "nopush", "Effect": "Deny", "Principal": {"AWS": alice_arn}, "Action": "ecr:InitiateLayerUpload"}
    ecr.set_repository_policy(
        repositoryName="app", policyText=json.dumps({"Version": "2012-10-17", "Statement": [allow, deny]})
    )
    refused = session.post(f"{endpoint}/v2/app/blobs/uploads/")
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["message"].endswith("with an explicit deny in a resource-based policy")


def test_identity_policy_explicit_deny_beats_managed_allow(endpoint: str, alice: tuple[str, str]) -> None:
    ecr = client_for(endpoint, "ecr")
    ecr.create_repository(repositoryName="app")
    _seed_image(endpoint)
    client_for(endpoint, "iam").put_user_policy(
        UserName="alice",
        PolicyName="no-pull",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "ecr:BatchGetImage", "Resource": "*"}]}
        ),
    )
    denied = _login(endpoint, *alice).get(f"{endpoint}/v2/app/manifests/v1")
    assert denied.status_code == 403
    assert denied.json()["errors"][0]["message"].endswith("with an explicit deny in an identity-based policy")


def test_deactivated_or_deleted_key_revokes_its_tokens(endpoint: str, alice: tuple[str, str]) -> None:
    client_for(endpoint, "ecr").create_repository(repositoryName="app")
    session = _login(endpoint, *alice)
    assert session.get(f"{endpoint}/v2/app/tags/list").status_code == 200
    iam = client_for(endpoint, "iam")
    iam.update_access_key(UserName="alice", AccessKeyId=alice[0], Status="Inactive")
    assert session.get(f"{endpoint}/v2/app/tags/list").status_code == 401
    with pytest.raises(ClientError) as inactive:
        client_for(endpoint, "ecr", *alice).describe_repositories()
    assert error_code(inactive) == "UnrecognizedClientException"
    iam.update_access_key(UserName="alice", AccessKeyId=alice[0], Status="Active")
    assert session.get(f"{endpoint}/v2/app/tags/list").status_code == 200
    iam.delete_access_key(UserName="alice", AccessKeyId=alice[0])
    assert session.get(f"{endpoint}/v2/app/tags/list").status_code == 401


def test_user_without_get_authorization_token_is_told_why(endpoint: str) -> None:
    iam = client_for(endpoint, "iam")
    iam.create_user(UserName="bob")
    key = iam.create_access_key(UserName="bob")["AccessKey"]
    with pytest.raises(ClientError) as exc:
        client_for(endpoint, "ecr", key["AccessKeyId"], key["SecretAccessKey"]).get_authorization_token()
    assert error_code(exc) == "AccessDeniedException"
    assert "is not authorized to perform: ecr:GetAuthorizationToken on resource: *" in str(exc.value)


def test_assumed_role_session_pushes_with_power_user(endpoint: str, alice: tuple[str, str]) -> None:
    iam = client_for(endpoint, "iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/alice"}}
        ],
    }
    iam.create_role(RoleName="pusher", AssumeRolePolicyDocument=json.dumps(trust))
    iam.attach_role_policy(RoleName="pusher", PolicyArn="arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPowerUser")
    client_for(endpoint, "ecr").create_repository(repositoryName="app")
    credentials = client_for(endpoint, "sts", *alice).assume_role(
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/pusher", RoleSessionName="ci"
    )["Credentials"]
    temporary = (credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"])
    identity = client_for(endpoint, "sts", *temporary).get_caller_identity()
    assert identity["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/pusher/ci"
    session = _login(endpoint, *temporary)
    blob = random_blob()
    assert session.post(f"{endpoint}/v2/app/blobs/uploads/?digest={blob.digest}", data=blob.data).status_code == 201
    denied = session.delete(f"{endpoint}/v2/app/blobs/{blob.digest}")
    assert denied.status_code == 403
    assert denied.json()["errors"][0]["message"].startswith(
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/pusher/ci is not authorized to perform: ecr:BatchDeleteImage"
    )


def test_catalog_lists_only_what_the_caller_may_describe(endpoint: str, alice: tuple[str, str]) -> None:
    ecr = client_for(endpoint, "ecr")
    for name in ("open", "secret"):
        ecr.create_repository(repositoryName=name)
    iam = client_for(endpoint, "iam")
    iam.put_user_policy(
        UserName="alice",
        PolicyName="hide",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Deny",
                        "Action": "ecr:DescribeRepositories",
                        "Resource": f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/secret",
                    }
                ],
            }
        ),
    )
    assert _login(endpoint, *alice).get(f"{endpoint}/v2/_catalog").json() == {"repositories": ["open"]}


def test_unknown_repository_is_not_revealed_to_a_caller_without_access(endpoint: str) -> None:
    iam = client_for(endpoint, "iam")
    iam.create_user(UserName="carol")
    iam.put_user_policy(
        UserName="carol",
        PolicyName="token",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"}],
            }
        ),
    )
    key = iam.create_access_key(UserName="carol")["AccessKey"]
    session = _login(endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    response = session.get(f"{endpoint}/v2/does-not-exist/tags/list")
    assert response.status_code == 403


def test_registry_policy_never_grants_iam_actions(endpoint: str, alice: tuple[str, str]) -> None:
    client_for(endpoint, "ecr").put_registry_policy(
        policyText=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/alice"},
                        "Action": "*",
                        "Resource": "*",
                    }
                ],
            }
        )
    )
    with pytest.raises(ClientError) as exc:
        client_for(endpoint, "iam", *alice).create_user(UserName="mallory")
    assert error_code(exc) == "AccessDenied"


def test_registry_password_in_another_base64_spelling_is_refused(endpoint: str) -> None:
    token = client_for(endpoint, "ecr").get_authorization_token()["authorizationData"][0]["authorizationToken"]
    password = base64.b64decode(token).decode().split(":", 1)[1]
    assert requests.get(f"{endpoint}/v2/", auth=("AWS", password), timeout=10).status_code == 200
    for variant in (password + "==", password.replace(".", "=.", 1)):
        assert requests.get(f"{endpoint}/v2/", auth=("AWS", variant), timeout=10).status_code == 401
