"""The Secrets Manager API through boto3 against a real socket, on both metadata back ends: a secret's life,
ListSecrets, authorization by IAM and resource policies, KMS keys, and values kept out of the server's logs."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.test_ecr_api import client_for

ACCOUNT = "000000000000"
ARN = re.compile(r"arn:aws:secretsmanager:us-east-1:000000000000:secret:(?P<name>.+)-[A-Za-z0-9]{6}")
MARKED = "You can't perform this operation on the secret because it was marked for deletion."


@pytest.fixture
def sm(endpoint: str) -> Any:
    return client_for(endpoint, "secretsmanager")


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def iam_user(endpoint: str, name: str, *statements: dict[str, Any]) -> Any:
    """A Secrets Manager client as a new IAM user with one inline policy of ``statements`` (none: no policy)."""
    iam = client_for(endpoint, "iam")
    iam.create_user(UserName=name)
    if statements:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=policy(*statements))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return client_for(endpoint, "secretsmanager", key["AccessKeyId"], key["SecretAccessKey"])


def test_a_secret_through_its_life_with_boto3(sm: Any) -> None:
    created = sm.create_secret(
        Name="app/db", SecretString="hunter2", Description="the database", Tags=[{"Key": "team", "Value": "blue"}]
    )
    match = ARN.fullmatch(created["ARN"])
    assert match is not None and match["name"] == "app/db"
    assert created["Name"] == "app/db" and len(created["VersionId"]) >= 32

    value = sm.get_secret_value(SecretId="app/db")
    assert (value["ARN"], value["SecretString"], value["VersionStages"]) == (created["ARN"], "hunter2", ["AWSCURRENT"])
    assert "SecretBinary" not in value
    # By full ARN and by partial ARN (without the random suffix) too.
    assert sm.get_secret_value(SecretId=created["ARN"])["VersionId"] == created["VersionId"]
    partial = created["ARN"][: -len("-XXXXXX")]
    assert sm.get_secret_value(SecretId=partial)["VersionId"] == created["VersionId"]

    second = sm.put_secret_value(SecretId="app/db", SecretBinary=b"\x00\xffbinary")
    assert second["VersionStages"] == ["AWSCURRENT"]
    assert sm.get_secret_value(SecretId="app/db")["SecretBinary"] == b"\x00\xffbinary"
    previous = sm.get_secret_value(SecretId="app/db", VersionStage="AWSPREVIOUS")
    assert (previous["VersionId"], previous["SecretString"]) == (created["VersionId"], "hunter2")

    sm.update_secret(SecretId="app/db", Description="the main database")
    described = sm.describe_secret(SecretId="app/db")
    assert described["Description"] == "the main database"
    assert described["Tags"] == [{"Key": "team", "Value": "blue"}]
    assert described["VersionIdsToStages"] == {
        created["VersionId"]: ["AWSPREVIOUS"],
        second["VersionId"]: ["AWSCURRENT"],
    }
    assert "KmsKeyId" not in described  # the AWS managed key
    assert described["LastAccessedDate"].date() == dt.datetime.now(dt.UTC).date()

    deleted = sm.delete_secret(SecretId="app/db", RecoveryWindowInDays=7)
    expected = dt.datetime.now(dt.UTC) + dt.timedelta(days=7)
    assert abs((deleted["DeletionDate"] - expected).total_seconds()) < 60
    with pytest.raises(ClientError) as refused:
        sm.get_secret_value(SecretId="app/db")
    assert error_of(refused) == ("InvalidRequestException", MARKED)
    assert "DeletedDate" in sm.describe_secret(SecretId="app/db")
    assert sm.list_secrets()["SecretList"] == []
    assert [s["Name"] for s in sm.list_secrets(IncludePlannedDeletion=True)["SecretList"]] == ["app/db"]

    sm.restore_secret(SecretId="app/db")
    assert sm.get_secret_value(SecretId="app/db")["VersionId"] == second["VersionId"]
    sm.delete_secret(SecretId="app/db", ForceDeleteWithoutRecovery=True)
    with pytest.raises(ClientError) as gone:
        sm.get_secret_value(SecretId="app/db")
    assert error_of(gone) == ("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
    again = sm.create_secret(Name="app/db", SecretString="fresh")
    assert again["ARN"] != created["ARN"]


def test_bad_input_gets_secrets_managers_errors(sm: Any) -> None:
    sm.create_secret(Name="taken", SecretString="x")
    cases: list[tuple[Any, dict[str, Any], str]] = [
        (sm.create_secret, {"Name": "taken", "SecretString": "y"}, "ResourceExistsException"),
        (sm.create_secret, {"Name": "bad name", "SecretString": "y"}, "InvalidParameterException"),
        (sm.create_secret, {"Name": "both", "SecretString": "y", "SecretBinary": b"y"}, "InvalidParameterException"),
        (sm.create_secret, {"Name": "n" * 513}, "ValidationException"),
        (sm.put_secret_value, {"SecretId": "taken"}, "InvalidParameterException"),
        (sm.get_secret_value, {"SecretId": "absent"}, "ResourceNotFoundException"),
        (sm.delete_secret, {"SecretId": "taken", "RecoveryWindowInDays": 6}, "InvalidParameterException"),
        (
            sm.delete_secret,
            {"SecretId": "taken", "RecoveryWindowInDays": 7, "ForceDeleteWithoutRecovery": True},
            "InvalidParameterException",
        ),
        (sm.put_resource_policy, {"SecretId": "taken", "ResourcePolicy": "{"}, "MalformedPolicyDocumentException"),
        (sm.list_secrets, {"NextToken": "not-a-token"}, "InvalidNextTokenException"),
    ]
    for call, params, code in cases:
        with pytest.raises(ClientError) as failed:
            call(**params)
        assert error_of(failed)[0] == code, (params, error_of(failed))
    everyone = {"Effect": "Allow", "Principal": "*", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}
    with pytest.raises(ClientError) as public:
        sm.put_resource_policy(SecretId="taken", ResourcePolicy=policy(everyone), BlockPublicPolicy=True)
    assert error_of(public)[0] == "PublicPolicyException"


def test_list_secrets_filters_and_pages(sm: Any) -> None:
    for name, team in (("prod/api", "blue"), ("prod/db", "red"), ("dev/api", "blue"), ("dev/db", "green")):
        sm.create_secret(Name=name, SecretString="v", Tags=[{"Key": "team", "Value": team}], Description=f"{name} key")
    names: list[str] = []
    token: dict[str, str] = {}
    for _ in range(10):
        page = sm.list_secrets(MaxResults=3, SortBy="name", **token)
        names.extend(secret["Name"] for secret in page["SecretList"])
        if "NextToken" not in page:
            break
        token = {"NextToken": page["NextToken"]}
    assert names == ["dev/api", "dev/db", "prod/api", "prod/db"]

    def listed(*filters: dict[str, Any]) -> list[str]:
        return sorted(s["Name"] for s in sm.list_secrets(Filters=list(filters))["SecretList"])

    assert listed({"Key": "name", "Values": ["prod/"]}) == ["prod/api", "prod/db"]
    assert listed({"Key": "tag-value", "Values": ["blue"]}) == ["dev/api", "prod/api"]
    assert listed({"Key": "tag-key", "Values": ["team"]}, {"Key": "name", "Values": ["!prod"]}) == ["dev/api", "dev/db"]
    assert listed({"Key": "description", "Values": ["DEV/"]}) == ["dev/api", "dev/db"]
    assert listed({"Key": "all", "Values": ["green"]}) == ["dev/db"]
    [entry] = sm.list_secrets(Filters=[{"Key": "name", "Values": ["dev/db"]}])["SecretList"]
    assert list(entry["SecretVersionsToStages"].values()) == [["AWSCURRENT"]]
    assert "SecretString" not in json.dumps(entry, default=str)


def test_an_iam_user_needs_get_secret_value_and_a_resource_policy_can_grant_it(endpoint: str, sm: Any) -> None:
    arn = sm.create_secret(Name="shared", SecretString="s3cr3t")["ARN"]
    nobody = iam_user(endpoint, "nobody")
    with pytest.raises(ClientError) as denied:
        nobody.get_secret_value(SecretId="shared")
    assert error_of(denied) == (
        "AccessDeniedException",
        f"User: arn:aws:iam::{ACCOUNT}:user/nobody is not authorized to perform: secretsmanager:GetSecretValue "
        f"on resource: {arn} because no identity-based policy allows the secretsmanager:GetSecretValue action",
    )
    # A secret that does not exist is denied the same way: a caller without permission learns nothing.
    with pytest.raises(ClientError) as absent:
        nobody.get_secret_value(SecretId="absent")
    assert error_of(absent)[0] == "AccessDeniedException"

    grant = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/nobody"},
        "Action": "secretsmanager:GetSecretValue",
        "Resource": "*",
    }
    sm.put_resource_policy(SecretId="shared", ResourcePolicy=policy(grant))
    assert json.loads(sm.get_resource_policy(SecretId="shared")["ResourcePolicy"])["Statement"] == [grant]
    assert nobody.get_secret_value(SecretId="shared")["SecretString"] == "s3cr3t"
    with pytest.raises(ClientError) as still_not:
        nobody.describe_secret(SecretId="shared")
    assert error_of(still_not)[0] == "AccessDeniedException"

    reader = iam_user(endpoint, "reader", {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"})
    deny = {**grant, "Effect": "Deny", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/reader"}}
    sm.put_resource_policy(SecretId="shared", ResourcePolicy=policy(grant, deny))
    with pytest.raises(ClientError) as explicit:
        reader.get_secret_value(SecretId="shared")
    assert "with an explicit deny in a resource-based policy" in error_of(explicit)[1]
    sm.delete_resource_policy(SecretId="shared")
    assert reader.get_secret_value(SecretId="shared")["SecretString"] == "s3cr3t"
    with pytest.raises(ClientError) as revoked:
        nobody.get_secret_value(SecretId="shared")
    assert error_of(revoked)[0] == "AccessDeniedException"


def test_identity_policies_can_scope_secrets_by_name_and_tag(endpoint: str, sm: Any) -> None:
    sm.create_secret(Name="team-a/db", SecretString="a", Tags=[{"Key": "team", "Value": "a"}])
    sm.create_secret(Name="team-b/db", SecretString="b", Tags=[{"Key": "team", "Value": "b"}])
    by_name = iam_user(
        endpoint,
        "by-name",
        {
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:team-a/*",
        },
    )
    by_tag = iam_user(
        endpoint,
        "by-tag",
        {
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": "*",
            "Condition": {"StringEquals": {"secretsmanager:ResourceTag/team": "b"}},
        },
    )
    assert by_name.get_secret_value(SecretId="team-a/db")["SecretString"] == "a"
    assert by_tag.get_secret_value(SecretId="team-b/db")["SecretString"] == "b"
    for client, name in ((by_name, "team-b/db"), (by_tag, "team-a/db")):
        with pytest.raises(ClientError) as denied:
            client.get_secret_value(SecretId=name)
        assert error_of(denied)[0] == "AccessDeniedException"


def test_a_customer_kms_key_needs_the_callers_kms_permissions(endpoint: str, sm: Any) -> None:
    kms = client_for(endpoint, "kms")
    key = kms.create_key()["KeyMetadata"]
    kms.create_alias(AliasName="alias/secrets", TargetKeyId=key["KeyId"])
    created = sm.create_secret(Name="sealed", SecretString="v", KmsKeyId="alias/secrets")
    assert sm.describe_secret(SecretId=created["ARN"])["KmsKeyId"] == f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/secrets"

    only_secrets = iam_user(endpoint, "no-kms", {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"})
    with pytest.raises(ClientError) as no_kms:
        only_secrets.get_secret_value(SecretId="sealed")
    assert error_of(no_kms) == ("AccessDeniedException", "Access to KMS is not allowed")
    with_kms = iam_user(
        endpoint,
        "with-kms",
        {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"},
        {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": key["Arn"]},
    )
    assert with_kms.get_secret_value(SecretId="sealed")["SecretString"] == "v"

    kms.disable_key(KeyId=key["KeyId"])
    with pytest.raises(ClientError) as disabled:
        sm.get_secret_value(SecretId="sealed")
    assert error_of(disabled)[0] == "DecryptionFailure"

    # A secret without a key is sealed by the AWS managed key, made on first use and shown by its alias.
    sm.create_secret(Name="managed", SecretString="v")
    managed = kms.describe_key(KeyId="alias/aws/secretsmanager")["KeyMetadata"]
    assert (managed["KeyManager"], managed["Description"]) == (
        "AWS",
        "Default key that protects my Secrets Manager data when no other key is defined",
    )
    with pytest.raises(ClientError) as not_yours:
        kms.disable_key(KeyId=managed["KeyId"])
    assert error_of(not_yours)[0] in ("AccessDeniedException", "UnsupportedOperationException")


def test_the_largest_value_passes_the_body_limit_and_a_larger_one_is_refused(sm: Any) -> None:
    # 65,536 control characters: the most bytes a value may hold, six bytes each once JSON-escaped.
    largest = "\x01" * 65536
    sm.create_secret(Name="large", SecretString=largest)
    assert sm.get_secret_value(SecretId="large")["SecretString"] == largest
    with pytest.raises(ClientError) as too_large:
        sm.put_secret_value(SecretId="large", SecretString="é" * 32769)
    assert error_of(too_large) == (
        "InvalidParameterException",
        "The secret value exceeds the maximum size of 65536 bytes.",
    )
