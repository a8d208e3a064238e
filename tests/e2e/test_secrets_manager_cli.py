"""The real AWS CLI on a real ``ecrd serve``: ``aws secretsmanager`` creates, reads, lists and deletes secrets, and
an IAM user without permission is refused with AWS's words."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from tests.support.clients import TEST_ACCOUNT_ID, TEST_REGION, AwsCli, AwsCredentials

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def _timestamp(printed: float | str) -> dt.datetime:
    """A timestamp as the CLI prints it: epoch seconds (CLI v1's default) or ISO 8601 (v2's)."""
    if isinstance(printed, str) and "T" in printed:
        return dt.datetime.fromisoformat(printed)
    return dt.datetime.fromtimestamp(float(printed), dt.UTC)


def test_the_cli_creates_reads_lists_and_deletes_a_secret(aws: AwsCli) -> None:
    # given a secret made by `aws secretsmanager create-secret`
    created = aws.json(
        "secretsmanager",
        "create-secret",
        "--name",
        "e2e/registry-credentials",
        "--secret-string",
        '{"username":"robot","accessToken":"t0ken"}',
        "--tags",
        "Key=team,Value=platform",
    )
    pattern = (
        rf"arn:aws:secretsmanager:{TEST_REGION}:{TEST_ACCOUNT_ID}:secret:e2e/registry-credentials-[A-Za-z0-9]{{6}}"
    )
    assert re.fullmatch(pattern, created["ARN"])

    # when the CLI reads it back and lists the secrets
    value = aws.json("secretsmanager", "get-secret-value", "--secret-id", "e2e/registry-credentials")
    listed = aws.json("secretsmanager", "list-secrets", "--filters", "Key=name,Values=e2e/")

    # then it has the value and the listing shows it, without the value
    assert value["SecretString"] == '{"username":"robot","accessToken":"t0ken"}'
    assert value["VersionStages"] == ["AWSCURRENT"]
    assert [entry["ARN"] for entry in listed["SecretList"]] == [created["ARN"]]
    assert "t0ken" not in str(listed)

    # and delete-secret schedules its deletion, after which its value is refused
    deleted = aws.json(
        "secretsmanager", "delete-secret", "--secret-id", created["ARN"], "--recovery-window-in-days", "7"
    )
    deletion = _timestamp(deleted["DeletionDate"])
    assert abs(deletion - (dt.datetime.now(dt.UTC) + dt.timedelta(days=7))) < dt.timedelta(minutes=5)
    refused = aws.error("secretsmanager", "get-secret-value", "--secret-id", created["ARN"])
    assert (refused.code, refused.operation) == ("InvalidRequestException", "GetSecretValue")
    assert refused.message == "You can't perform this operation on the secret because it was marked for deletion."
    aws.json("secretsmanager", "delete-secret", "--secret-id", created["ARN"], "--force-delete-without-recovery")
    gone = aws.error("secretsmanager", "describe-secret", "--secret-id", created["ARN"])
    assert gone.code == "ResourceNotFoundException"


def test_the_cli_as_a_user_without_permission_is_refused(aws: AwsCli) -> None:
    # given a secret, and an IAM user with no policy
    arn = aws.json("secretsmanager", "create-secret", "--name", "e2e/guarded", "--secret-string", "x")["ARN"]
    aws.json("iam", "create-user", "--user-name", "e2e-no-secrets")
    key = aws.json("iam", "create-access-key", "--user-name", "e2e-no-secrets")["AccessKey"]
    user = aws.with_credentials(AwsCredentials(key["AccessKeyId"], key["SecretAccessKey"]))

    # when the user asks for its value
    denied = user.error("secretsmanager", "get-secret-value", "--secret-id", "e2e/guarded")

    # then AWS's AccessDenied names the principal, the action and the secret
    assert denied.code == "AccessDeniedException"
    assert denied.message == (
        f"User: arn:aws:iam::{TEST_ACCOUNT_ID}:user/e2e-no-secrets is not authorized to perform: "
        f"secretsmanager:GetSecretValue on resource: {arn} because no identity-based policy allows the "
        "secretsmanager:GetSecretValue action"
    )
