"""One deployment, several accounts in every region: each registry (an account in a region) is its own, and
another account's repository opens only when both accounts' policies say so.

The API finds the registry from the caller's key and the region the request is signed for (or an ECR request's
``registryId``); /v2/ finds it from the host name, ``ACCOUNT.dkr.ecr.REGION.DOMAIN`` under ``--registry-domain``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from starlette.testclient import TestClient

from ecrd.app import Registry, asgi_app
from ecrd.config import Settings
from tests.conftest import ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY, registry_for
from tests.integration.test_ecr_api import error_code
from tests.support.clients import AwsCredentials, aws_client, policy_json
from tests.support.live_server import live_server
from tests.support.oci import digest_of, push_image

DOMAIN = "registry.test"
ACCOUNT_A = "000000000000"  # the default account, whose root key the tests hold
ACCOUNT_B = "222222222222"
ROOT_A = AwsCredentials(ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY)


@pytest.fixture
def deployment(settings: Settings) -> Iterator[Registry]:
    with registry_for(dataclasses.replace(settings, registry_domain=DOMAIN)) as built:
        yield built


@pytest.fixture
def api(deployment: Registry) -> Iterator[str]:
    with live_server(deployment) as url:
        yield url


@pytest.fixture
def account_b(deployment: Registry) -> AwsCredentials:
    _, key_id, secret = deployment.registries.accounts.create(account_id=ACCOUNT_B)
    return AwsCredentials(key_id, secret)


def _host(account: str, region: str) -> str:
    return f"{account}.dkr.ecr.{region}.{DOMAIN}"


def _login(api: str, credentials: AwsCredentials | None, region: str) -> str:
    """The Authorization header `docker login` makes from `aws ecr get-login-password`."""
    ecr = aws_client("ecr", api, credentials or ROOT_A, region=region)
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    return f"Basic {token}"


@pytest.fixture
def push(deployment: Registry) -> Any:
    def push_to(host: str, authorization: str, repository: str, tag: str) -> str:
        with TestClient(
            asgi_app(deployment), base_url=f"http://{host}", headers={"Authorization": authorization}
        ) as client:
            return digest_of(push_image(client, repository, tag)[0])

    return push_to


def _pull(deployment: Registry, host: str, authorization: str, repository: str, tag: str) -> Any:
    with TestClient(asgi_app(deployment), base_url=f"http://{host}", headers={"Authorization": authorization}) as c:
        return c.get(
            f"/v2/{repository}/manifests/{tag}", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}
        )


def test_each_region_is_a_registry_of_its_own(deployment: Registry, api: str, push: Any) -> None:
    east = aws_client("ecr", api, ROOT_A, region="us-east-1")
    west = aws_client("ecr", api, ROOT_A, region="eu-west-1")
    east.create_repository(repositoryName="app", imageTagMutability="IMMUTABLE")
    created = west.create_repository(repositoryName="app")["repository"]

    assert created["repositoryArn"] == f"arn:aws:ecr:eu-west-1:{ACCOUNT_A}:repository/app"
    # The public URL's port stays (ECR's names are on 443).
    assert created["repositoryUri"] == f"{_host(ACCOUNT_A, 'eu-west-1')}:5000/app"
    assert created["imageTagMutability"] == "MUTABLE"  # not the us-east-1 repository of the same name
    west.create_repository(repositoryName="only-in-west")
    assert [r["repositoryName"] for r in east.describe_repositories()["repositories"]] == ["app"]
    assert {r["repositoryName"] for r in west.describe_repositories()["repositories"]} == {"app", "only-in-west"}

    # An image pushed to eu-west-1's host is in eu-west-1's repository only.
    digest = push(_host(ACCOUNT_A, "eu-west-1"), _login(api, None, "eu-west-1"), "app", "v1")
    assert west.describe_images(repositoryName="app")["imageDetails"][0]["imageDigest"] == digest
    assert east.describe_images(repositoryName="app")["imageDetails"] == []
    # A plain host:port is the default registry.
    assert _pull(deployment, "127.0.0.1:5000", _login(api, None, "us-east-1"), "app", "v1").status_code == 404


def test_a_token_opens_the_registries_of_its_own_region_only(deployment: Registry, api: str, push: Any) -> None:
    aws_client("ecr", api, ROOT_A, region="eu-west-1").create_repository(repositoryName="app")
    push(_host(ACCOUNT_A, "eu-west-1"), _login(api, None, "eu-west-1"), "app", "v1")

    east_token = _login(api, None, "us-east-1")
    refused = _pull(deployment, _host(ACCOUNT_A, "eu-west-1"), east_token, "app", "v1")
    assert refused.status_code == 401
    assert refused.json()["errors"][0]["code"] == "UNAUTHORIZED"


def test_an_unknown_account_or_region_is_no_registry(deployment: Registry, api: str) -> None:
    token = _login(api, None, "us-east-1")
    for host in (_host("999999999999", "us-east-1"), _host(ACCOUNT_A, "xx-nowhere-1")):
        response = _pull(deployment, host, token, "app", "v1")
        assert response.status_code == 404
        assert response.json()["errors"][0]["code"] == "NAME_UNKNOWN"


def test_another_account_pulls_only_what_both_accounts_allow(
    deployment: Registry, api: str, push: Any, account_b: AwsCredentials
) -> None:
    owner = aws_client("ecr", api, ROOT_A)
    owner.create_repository(repositoryName="shared")
    push(_host(ACCOUNT_A, "us-east-1"), _login(api, None, "us-east-1"), "shared", "v1")
    repository_arn = f"arn:aws:ecr:us-east-1:{ACCOUNT_A}:repository/shared"
    b_token = _login(api, account_b, "us-east-1")

    # B's root has every permission in B, none in A until A's repository policy grants B.
    denied = _pull(deployment, _host(ACCOUNT_A, "us-east-1"), b_token, "shared", "v1")
    assert denied.status_code == 403, denied.text
    message = denied.json()["errors"][0]["message"]
    assert f"arn:aws:iam::{ACCOUNT_B}:root" in message and "ecr:BatchGetImage" in message
    assert repository_arn in message and "no resource-based policy allows" in message

    owner.set_repository_policy(
        repositoryName="shared",
        policyText=policy_json(
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_B}:root"},
                "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:DescribeImages"],
            }
        ),
    )
    assert _pull(deployment, _host(ACCOUNT_A, "us-east-1"), b_token, "shared", "v1").status_code == 200
    # B's own registry is another one: B has no repository of that name.
    assert _pull(deployment, _host(ACCOUNT_B, "us-east-1"), b_token, "shared", "v1").status_code == 404
    # Through the API too, naming A's registry.
    b_ecr = aws_client("ecr", api, account_b)
    described = b_ecr.describe_images(registryId=ACCOUNT_A, repositoryName="shared")["imageDetails"]
    assert [d["registryId"] for d in described] == [ACCOUNT_A]
    with pytest.raises(ClientError) as not_granted:
        b_ecr.list_images(registryId=ACCOUNT_A, repositoryName="shared")
    assert error_code(not_granted) == "AccessDeniedException"

    # A user of B needs B's own allow as well: A's grant to B's account is not enough alone.
    b_iam = aws_client("iam", api, account_b)
    b_iam.create_user(UserName="ci")
    key = b_iam.create_access_key(UserName="ci")["AccessKey"]
    user = AwsCredentials(key["AccessKeyId"], key["SecretAccessKey"])
    user_token = _login_as_user(api, b_iam, user)
    refused = _pull(deployment, _host(ACCOUNT_A, "us-east-1"), user_token, "shared", "v1")
    assert refused.status_code == 403
    message = refused.json()["errors"][0]["message"]
    assert f"arn:aws:iam::{ACCOUNT_B}:user/ci" in message and "no identity-based policy allows" in message
    b_iam.put_user_policy(
        UserName="ci",
        PolicyName="pull",
        PolicyDocument=policy_json({"Effect": "Allow", "Action": "ecr:BatchGetImage", "Resource": repository_arn}),
    )
    assert _pull(deployment, _host(ACCOUNT_A, "us-east-1"), user_token, "shared", "v1").status_code == 200

    # and the denials are on the audit trails of both accounts: the registry's owner's and the caller's
    b_principals = {f"arn:aws:iam::{ACCOUNT_B}:root", f"arn:aws:iam::{ACCOUNT_B}:user/ci"}
    for account in (ACCOUNT_A, ACCOUNT_B):
        denials = deployment.audit.events(account_id=account, outcome="denied", limit=100)
        assert {event.principal for event in denials} == b_principals, account
    assert deployment.audit.events(account_id="333333333333", limit=100) == []


def _login_as_user(api: str, iam: Any, user: AwsCredentials) -> str:
    """A user's registry login: it may get a token once its account lets it."""
    iam.put_user_policy(
        UserName="ci",
        PolicyName="login",
        PolicyDocument=policy_json({"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"}),
    )
    return _login(api, user, "us-east-1")


def test_the_root_key_answers_as_its_own_account(deployment: Registry, api: str, account_b: AwsCredentials) -> None:
    identity = aws_client("sts", api, account_b).get_caller_identity()
    assert identity["Account"] == ACCOUNT_B
    assert identity["Arn"] == f"arn:aws:iam::{ACCOUNT_B}:root"
    b_ecr = aws_client("ecr", api, account_b)
    created = b_ecr.create_repository(repositoryName="app")["repository"]
    assert created["registryId"] == ACCOUNT_B
    assert created["repositoryUri"] == f"{_host(ACCOUNT_B, 'us-east-1')}:5000/app"
    assert aws_client("ecr", api, ROOT_A).describe_repositories()["repositories"] == []


def test_one_token_names_every_registry_asked_for(deployment: Registry, api: str, account_b: AwsCredentials) -> None:
    data = aws_client("ecr", api, account_b, region="eu-west-1").get_authorization_token(
        registryIds=[ACCOUNT_A, ACCOUNT_B]
    )["authorizationData"]
    assert [d["proxyEndpoint"] for d in data] == [
        f"http://{_host(ACCOUNT_A, 'eu-west-1')}:5000",
        f"http://{_host(ACCOUNT_B, 'eu-west-1')}:5000",
    ]
    assert data[0]["authorizationToken"] == data[1]["authorizationToken"]


def test_a_deleted_user_is_named_by_its_unique_id_in_every_policy_that_named_it(
    deployment: Registry, api: str, account_b: AwsCredentials
) -> None:
    # given a user of A, named by A's registry policy in another region, by B's registry policy and by the key
    # policy of one of A's KMS keys
    iam = aws_client("iam", api, ROOT_A)
    user = iam.create_user(UserName="ci")["User"]

    def naming(actions: list[str], resource: str | None = None) -> str:
        statement: dict[str, Any] = {"Effect": "Allow", "Principal": {"AWS": user["Arn"]}, "Action": actions}
        if resource is not None:
            statement["Resource"] = resource
        return policy_json(statement)

    replication = ["ecr:CreateRepository", "ecr:ReplicateImage"]
    west = aws_client("ecr", api, ROOT_A, region="eu-west-1")
    west.put_registry_policy(policyText=naming(replication, f"arn:aws:ecr:eu-west-1:{ACCOUNT_A}:repository/*"))
    b_ecr = aws_client("ecr", api, account_b)
    b_ecr.put_registry_policy(policyText=naming(replication, f"arn:aws:ecr:us-east-1:{ACCOUNT_B}:repository/*"))
    kms = aws_client("kms", api, ROOT_A)
    root_statement = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_A}:root"}, "Action": "kms:*"}
    key_policy = json.loads(policy_json(root_statement))
    key_policy["Statement"].append(json.loads(naming(["kms:Decrypt"], "*"))["Statement"][0])
    key_id = kms.create_key(Policy=json.dumps(key_policy))["KeyMetadata"]["KeyId"]

    # when the user is deleted, and another is made under its name
    iam.delete_user(UserName="ci")
    iam.create_user(UserName="ci")

    # then each of those policies names the deleted user by its unique id, as IAM shows them: the new user is
    # granted nothing by them
    def principals(text: str) -> list[Any]:
        return [statement["Principal"]["AWS"] for statement in json.loads(text)["Statement"]]

    assert principals(west.get_registry_policy()["policyText"]) == [user["UserId"]]
    assert principals(b_ecr.get_registry_policy()["policyText"]) == [user["UserId"]]
    key_text = kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
    assert principals(key_text) == [f"arn:aws:iam::{ACCOUNT_A}:root", user["UserId"]]
