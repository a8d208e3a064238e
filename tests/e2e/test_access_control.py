"""Identity and access with the real tools: IAM users, keys, managed and repository policies, assumed roles and
registry tokens, as the AWS CLI, boto3 and docker see them — including the AWS wording of every refusal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.clients import (
    TEST_ACCOUNT_ID,
    TEST_REGION,
    AwsCli,
    AwsCredentials,
    IamAccount,
    aws_client,
    ecr_registry_credentials,
    policy_json,
    registry_session,
)
from tests.support.dockerd import DockerClient, DockerDaemon
from tests.support.images import build_image
from tests.support.registry_process import RegistryUnderTest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

READ_ONLY = "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"
POWER_USER = "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPowerUser"
PUSH_ACTIONS = [
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
    "ecr:BatchCheckLayerAvailability",
]
LAYER_SIZES = (64 * 1024, 1024)
UNKNOWN_KEY = "The security token included in the request is invalid."
"""What AWS answers a signature made with a key it does not know, or no longer accepts."""


@pytest.fixture
def account(aws: AwsCli, registry: RegistryUnderTest) -> Iterator[IamAccount]:
    """The account's IAM, driven through the CLI as root; what a test creates there is removed after it."""
    created = IamAccount(aws, aws_client("iam", registry.url))
    try:
        yield created
    finally:
        created.remove_all()


def repository_arn(name: str) -> str:
    return f"arn:aws:ecr:{TEST_REGION}:{TEST_ACCOUNT_ID}:repository/{name}"


def docker_logged_in_as(cli: AwsCli, dockerd: DockerDaemon, registry: RegistryUnderTest, workdir: Path) -> DockerClient:
    """A docker client of its own, logged in with ``aws ecr get-login-password | docker login …`` as ``cli``."""
    docker = dockerd.client(workdir)
    login = docker.login_from_command(registry.host, cli.argv("ecr", "get-login-password"), env=cli.env)
    assert "Login Succeeded" in login.stdout, login.stdout + login.stderr
    return docker


def push_new_image(docker: DockerClient, reference: str, workdir: Path, seed: int) -> str:
    """Load an image nobody pushed before as ``reference`` and push it; the digest docker reports."""
    docker.load_image(build_image(LAYER_SIZES, seed=seed), reference, workdir)
    return docker.push(reference)


def refused_push(docker: DockerClient, reference: str, workdir: Path, seed: int) -> str:
    """Load an image nobody pushed before as ``reference``, push it, expect a refusal; what docker printed."""
    docker.load_image(build_image(LAYER_SIZES, seed=seed), reference, workdir)
    result = docker("push", reference, check=False)
    assert result.returncode != 0, f"docker push {reference} succeeded:\n{result.stdout}"
    return result.stdout + result.stderr


def refused_pull(docker: DockerClient, reference: str) -> str:
    result = docker("pull", reference, check=False)
    assert result.returncode != 0, f"docker pull {reference} succeeded:\n{result.stdout}"
    return result.stdout + result.stderr


# -- a read-only user ----------------------------------------------------------------------------------------


def test_read_only_user_logs_in_and_pulls_but_is_refused_push_in_aws_words(
    aws: AwsCli,
    account: IamAccount,
    docker: DockerClient,
    dockerd: DockerDaemon,
    registry: RegistryUnderTest,
    repository: str,
    tmp_path: Path,
    image_seed: int,
) -> None:
    # given an image root pushed, and alice, made through the CLI with the ReadOnly managed policy and a key
    existing = registry.reference(repository, "existing")
    digest = push_new_image(docker, existing, tmp_path / "root", image_seed)
    docker.remove_images(existing)
    alice = aws.with_credentials(account.create_user("alice", READ_ONLY))

    # when alice logs docker in with her get-login-password, pulls the image and pushes one of her own
    alice_docker = docker_logged_in_as(alice, dockerd, registry, tmp_path / "alice-docker")
    alice_docker("pull", existing)
    refusal = refused_push(alice_docker, registry.reference(repository, "alice"), tmp_path / "alice", image_seed + 1)

    # then the pull brought root's image, and the push was refused at its first write, in AWS's words
    assert f"{registry.host}/{repository}@{digest}" in alice_docker.repo_digests(existing)
    assert (
        f"denied: User: arn:aws:iam::{TEST_ACCOUNT_ID}:user/alice is not authorized to perform: "
        f"ecr:InitiateLayerUpload on resource: {repository_arn(repository)} "
        "because no identity-based policy allows the ecr:InitiateLayerUpload action"
    ) in refusal, refusal
    docker.remove_images(existing, registry.reference(repository, "alice"))


def test_read_only_user_is_refused_create_repository_naming_her_the_action_and_the_repository(
    account: IamAccount, registry: RegistryUnderTest, repository_name: str
) -> None:
    # given alice with the ReadOnly managed policy, on boto3
    ecr = aws_client("ecr", registry.url, account.create_user("alice", READ_ONLY))

    # when she creates a repository
    with pytest.raises(ClientError) as raised:
        ecr.create_repository(repositoryName=repository_name)

    # then ECR's AccessDeniedException names her ARN, ecr:CreateRepository and the repository's ARN
    error = raised.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert error["Message"] == (
        f"User: arn:aws:iam::{TEST_ACCOUNT_ID}:user/alice is not authorized to perform: ecr:CreateRepository "
        f"on resource: {repository_arn(repository_name)} "
        "because no identity-based policy allows the ecr:CreateRepository action"
    )


# -- repository policies ---------------------------------------------------------------------------------------


def test_repository_policy_lets_a_read_only_user_push_and_its_explicit_deny_takes_that_back(
    aws: AwsCli,
    account: IamAccount,
    dockerd: DockerDaemon,
    registry: RegistryUnderTest,
    repository: str,
    tmp_path: Path,
    image_seed: int,
) -> None:
    # given alice with ReadOnly, logged in, and refused a push
    alice = aws.with_credentials(account.create_user("alice", READ_ONLY))
    alice_docker = docker_logged_in_as(alice, dockerd, registry, tmp_path / "alice-docker")
    first = registry.reference(repository, "first")
    refused_push(alice_docker, first, tmp_path / "first", image_seed)
    alice_arn = account.user_arn("alice")
    allow_push = {"Sid": "AlicePushes", "Effect": "Allow", "Principal": {"AWS": alice_arn}, "Action": PUSH_ACTIONS}

    # when root grants her the push actions in the repository's policy
    aws("ecr", "set-repository-policy", "--repository-name", repository, "--policy-text", policy_json(allow_push))

    # then her push goes through
    digest = alice_docker.push(first)
    found = aws.json("ecr", "describe-images", "--repository-name", repository, "--image-ids", "imageTag=first")
    assert [d["imageDigest"] for d in found["imageDetails"]] == [digest]

    # and when the policy also denies her ecr:PutImage explicitly
    deny_put = {"Sid": "NoPutForAlice", "Effect": "Deny", "Principal": {"AWS": alice_arn}, "Action": "ecr:PutImage"}
    both = policy_json(allow_push, deny_put)
    aws("ecr", "set-repository-policy", "--repository-name", repository, "--policy-text", both)

    # then her next push is refused at the manifest, naming the explicit deny in a resource-based policy
    refusal = refused_push(alice_docker, registry.reference(repository, "second"), tmp_path / "second", image_seed + 1)
    assert (
        f"denied: User: {alice_arn} is not authorized to perform: ecr:PutImage on resource: "
        f"{repository_arn(repository)} with an explicit deny in a resource-based policy"
    ) in refusal, refusal
    alice_docker.remove_images(first, registry.reference(repository, "second"))


def test_set_repository_policy_naming_a_user_that_does_not_exist_is_refused(aws: AwsCli, repository: str) -> None:
    # given a repository policy that grants a user nobody created
    nobody = f"arn:aws:iam::{TEST_ACCOUNT_ID}:user/nobody-by-this-name"
    grant = policy_json({"Effect": "Allow", "Principal": {"AWS": nobody}, "Action": "ecr:BatchGetImage"})

    # when root sets it
    error = aws.error("ecr", "set-repository-policy", "--repository-name", repository, "--policy-text", grant)

    # then ECR refuses it: it resolves principals when the policy is set
    assert error.code == "InvalidParameterException"
    assert error.message == "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Principal not found'"


def test_repository_policy_grant_does_not_pass_to_a_new_user_of_the_same_name(
    aws: AwsCli, account: IamAccount, repository: str
) -> None:
    # given dave, allowed ecr:DescribeImages by the repository's policy alone, and using it
    dave = aws.with_credentials(account.create_user("dave"))
    grant = {"Effect": "Allow", "Principal": {"AWS": account.user_arn("dave")}, "Action": "ecr:DescribeImages"}
    aws("ecr", "set-repository-policy", "--repository-name", repository, "--policy-text", policy_json(grant))
    assert dave.json("ecr", "describe-images", "--repository-name", repository) == {"imageDetails": []}

    # when dave is deleted and another user is created under the same name
    account.remove_all()
    new_dave = aws.with_credentials(account.create_user("dave"))

    # then the grant, made to the deleted user, does not reach the new one
    error = new_dave.error("ecr", "describe-images", "--repository-name", repository)
    assert error.code == "AccessDeniedException", error


# -- access keys -------------------------------------------------------------------------------------------------


def test_deactivated_key_ends_its_docker_login_and_its_cli_calls(
    aws: AwsCli,
    account: IamAccount,
    docker: DockerClient,
    dockerd: DockerDaemon,
    registry: RegistryUnderTest,
    repository: str,
    tmp_path: Path,
    image_seed: int,
) -> None:
    # given an image, and alice (ReadOnly) whose docker login pulls it
    existing = registry.reference(repository, "existing")
    push_new_image(docker, existing, tmp_path / "root", image_seed)
    key = account.create_user("alice", READ_ONLY)
    alice = aws.with_credentials(key)
    alice_docker = docker_logged_in_as(alice, dockerd, registry, tmp_path / "alice-docker")
    alice_docker.remove_images(existing)
    alice_docker("pull", existing)
    alice_docker.remove_images(existing)

    # when root deactivates her key
    aws(
        "iam", "update-access-key", "--user-name", "alice", "--access-key-id", key.access_key_id, "--status", "Inactive"
    )

    # then her existing docker login no longer pulls, and the CLI's calls are refused as from an unknown key
    refusal = refused_pull(alice_docker, existing)
    assert "unauthorized" in refusal.lower() or "401" in refusal, refusal
    ecr_error = alice.error("ecr", "get-login-password")
    assert (ecr_error.code, ecr_error.message) == ("UnrecognizedClientException", UNKNOWN_KEY)
    sts_error = alice.error("sts", "get-caller-identity")
    assert (sts_error.code, sts_error.message) == ("InvalidClientTokenId", UNKNOWN_KEY)
    # and making it active again restores the CLI
    aws("iam", "update-access-key", "--user-name", "alice", "--access-key-id", key.access_key_id, "--status", "Active")
    assert alice.json("sts", "get-caller-identity")["Arn"] == account.user_arn("alice")


def test_deleted_key_ends_its_docker_login_and_its_cli_calls(
    aws: AwsCli,
    account: IamAccount,
    docker: DockerClient,
    dockerd: DockerDaemon,
    registry: RegistryUnderTest,
    repository: str,
    tmp_path: Path,
    image_seed: int,
) -> None:
    # given an image, and alice (ReadOnly) whose docker login pulls it
    existing = registry.reference(repository, "existing")
    push_new_image(docker, existing, tmp_path / "root", image_seed)
    key = account.create_user("alice", READ_ONLY)
    alice = aws.with_credentials(key)
    alice_docker = docker_logged_in_as(alice, dockerd, registry, tmp_path / "alice-docker")
    alice_docker.remove_images(existing)
    alice_docker("pull", existing)
    alice_docker.remove_images(existing)

    # when root deletes her key
    aws("iam", "delete-access-key", "--user-name", "alice", "--access-key-id", key.access_key_id)

    # then her existing docker login no longer pulls, and the CLI's calls are refused as from an unknown key
    refusal = refused_pull(alice_docker, existing)
    assert "unauthorized" in refusal.lower() or "401" in refusal, refusal
    ecr_error = alice.error("ecr", "get-login-password")
    assert (ecr_error.code, ecr_error.message) == ("UnrecognizedClientException", UNKNOWN_KEY)
    iam_error = alice.error("iam", "get-user")
    assert iam_error.code == "InvalidClientTokenId", iam_error


def test_user_without_get_authorization_token_is_told_so_by_get_login_password(
    aws: AwsCli, account: IamAccount
) -> None:
    # given bob, who may read images but was never granted ecr:GetAuthorizationToken
    bob = aws.with_credentials(account.create_user("bob"))
    pull_only = policy_json(
        {"Effect": "Allow", "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], "Resource": "*"}
    )
    aws("iam", "put-user-policy", "--user-name", "bob", "--policy-name", "pull-only", "--policy-document", pull_only)

    # when he asks the CLI for a login password
    error = bob.error("ecr", "get-login-password")

    # then ECR refuses, naming the action and its resource '*'
    assert error.code == "AccessDeniedException"
    assert error.message == (
        f"User: arn:aws:iam::{TEST_ACCOUNT_ID}:user/bob is not authorized to perform: ecr:GetAuthorizationToken "
        "on resource: * because no identity-based policy allows the ecr:GetAuthorizationToken action"
    )


# -- assumed roles -----------------------------------------------------------------------------------------------


@pytest.fixture
def pusher_session(aws: AwsCli, account: IamAccount) -> tuple[AwsCli, str]:
    """alice's session of the role ``pusher`` (PowerUser; its trust policy names alice): the CLI on the session's
    temporary credentials, and the session's ARN."""
    alice = aws.with_credentials(account.create_user("alice"))
    role_arn = account.create_role("pusher", account.user_arn("alice"), POWER_USER)
    assumed = alice.json("sts", "assume-role", "--role-arn", role_arn, "--role-session-name", "alice-session")
    session_arn = f"arn:aws:sts::{TEST_ACCOUNT_ID}:assumed-role/pusher/alice-session"
    assert assumed["AssumedRoleUser"]["Arn"] == session_arn
    credentials = AwsCredentials.from_access_key(assumed["Credentials"])
    assert credentials.session_token
    return aws.with_credentials(credentials), session_arn


def test_assumed_role_session_is_named_by_sts_and_pushes_with_the_roles_permissions(
    pusher_session: tuple[AwsCli, str],
    dockerd: DockerDaemon,
    registry: RegistryUnderTest,
    repository: str,
    tmp_path: Path,
    image_seed: int,
) -> None:
    # given alice's session of the PowerUser role, on the CLI with its session token
    session, session_arn = pusher_session

    # when it asks STS who it is, and logs docker in with its get-login-password
    identity = session.json("sts", "get-caller-identity")
    session_docker = docker_logged_in_as(session, dockerd, registry, tmp_path / "session-docker")

    # then it is the assumed role, and docker pushes and pulls back with the role's permissions
    assert identity["Arn"] == session_arn
    assert identity["Account"] == TEST_ACCOUNT_ID
    assert identity["UserId"].startswith("AROA") and identity["UserId"].endswith(":alice-session")
    reference = registry.reference(repository, "from-role")
    digest = push_new_image(session_docker, reference, tmp_path / "image", image_seed)
    session_docker.remove_images(reference)
    session_docker("pull", reference)
    assert f"{registry.host}/{repository}@{digest}" in session_docker.repo_digests(reference)
    session_docker.remove_images(reference)


def test_refusals_of_an_assumed_role_session_name_the_session(
    aws: AwsCli,
    pusher_session: tuple[AwsCli, str],
    account: IamAccount,
    dockerd: DockerDaemon,
    registry: RegistryUnderTest,
    repository: str,
    repository_name: str,
    tmp_path: Path,
    image_seed: int,
) -> None:
    # given alice's session of the PowerUser role, and a repository whose policy denies the role ecr:PutImage
    session, session_arn = pusher_session
    session_docker = docker_logged_in_as(session, dockerd, registry, tmp_path / "session-docker")
    deny_role = {"Effect": "Deny", "Principal": {"AWS": account.role_arn("pusher")}, "Action": "ecr:PutImage"}
    aws("ecr", "set-repository-policy", "--repository-name", repository, "--policy-text", policy_json(deny_role))

    # when the session creates a repository (PowerUser does not allow it) and pushes to the denying one
    api_error = session.error("ecr", "create-repository", "--repository-name", repository_name)
    refusal = refused_push(session_docker, registry.reference(repository, "denied"), tmp_path / "image", image_seed)

    # then both refusals name the assumed-role session, not alice nor the role
    assert api_error.code == "AccessDeniedException"
    assert api_error.message == (
        f"User: {session_arn} is not authorized to perform: ecr:CreateRepository on resource: "
        f"{repository_arn(repository_name)} because no identity-based policy allows the ecr:CreateRepository action"
    )
    assert (
        f"denied: User: {session_arn} is not authorized to perform: ecr:PutImage on resource: "
        f"{repository_arn(repository)} with an explicit deny in a resource-based policy"
    ) in refusal, refusal
    session_docker.remove_images(registry.reference(repository, "denied"))


# -- registry tokens -------------------------------------------------------------------------------------------


def _tampered(password: str) -> str:
    """The password with one character in the middle of it changed (not the last: base64's final character
    may carry padding bits, and changing only those would leave the decoded bytes as they were)."""
    middle = len(password) // 2
    return password[:middle] + ("A" if password[middle] != "A" else "B") + password[middle + 1 :]


@pytest.mark.parametrize("forge", [lambda _: "garbage-" + "x" * 40, _tampered], ids=["garbage", "tampered-signature"])
def test_docker_login_with_a_password_ecrd_never_issued_is_refused(
    forge: Callable[[str], str], ecr: Any, dockerd: DockerDaemon, registry: RegistryUnderTest, tmp_path: Path
) -> None:
    # given a password derived from nothing, or from a real token by changing its signature
    real = ecr_registry_credentials(ecr)
    client = dockerd.client(tmp_path / "docker-config")

    # when docker logs in with it
    result = client.login(registry.host, "AWS", forge(real.password), check=False)

    # then the registry refuses it with 401
    assert result.returncode != 0
    assert "401" in result.stderr or "unauthorized" in result.stderr.lower(), result.stderr


def test_registry_token_of_a_deleted_user_stops_working(
    aws: AwsCli,
    account: IamAccount,
    docker: DockerClient,
    dockerd: DockerDaemon,
    registry: RegistryUnderTest,
    repository: str,
    tmp_path: Path,
    image_seed: int,
) -> None:
    # given an image, and a registry token carol got through the API with temporary credentials of her own
    # (GetSessionToken), so that it stands for her user rather than for one access key
    existing = registry.reference(repository, "existing")
    push_new_image(docker, existing, tmp_path / "root", image_seed)
    docker.remove_images(existing)
    carol = aws.with_credentials(account.create_user("carol", READ_ONLY))
    session = AwsCredentials.from_access_key(carol.json("sts", "get-session-token")["Credentials"])
    token = ecr_registry_credentials(aws_client("ecr", registry.url, session))
    carol_docker = dockerd.client(tmp_path / "carol-docker")
    carol_docker.login_with(registry.host, token)
    carol_docker("pull", existing)
    carol_docker.remove_images(existing)

    # when root deletes carol (her key and policy first, as IAM requires)
    account.remove_all()

    # then the token is refused as unknown (401), by docker and on the wire
    refusal = refused_pull(carol_docker, existing)
    assert "unauthorized" in refusal.lower() or "401" in refusal, refusal
    with registry_session(token) as http:
        response = http.get(f"{registry.url}/v2/")
    assert response.status_code == 401, response.text
