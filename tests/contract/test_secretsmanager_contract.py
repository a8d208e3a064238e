"""Every Secrets Manager operation ecrd implements exists in the botocore model, every response it sends matches
the model's output shape exactly (checked on the raw JSON, before botocore's lenient parser sees it), and every
Secrets Manager error class names an exception shape of the model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from ecrd import errors
from ecrd.app import Registry
from ecrd.aws import secretsmanager as secrets_operations
from ecrd.aws.models import service_model
from tests.conftest import ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY
from tests.support.clients import AwsCredentials, aws_client
from tests.support.live_server import live_server
from tests.support.model_check import ResponseChecks

ACCOUNT = "000000000000"


def test_every_implemented_operation_is_in_the_model() -> None:
    assert set(secrets_operations.OPERATIONS) <= set(service_model("secretsmanager").operation_names)


def test_every_secrets_error_class_is_an_exception_of_the_model() -> None:
    shapes = {shape.name for shape in service_model("secretsmanager").error_shapes}
    secret_errors = [
        value
        for name, value in vars(errors).items()
        if name.startswith("Secret") and isinstance(value, type) and issubclass(value, errors.EcrdError)
    ]
    assert secret_errors
    for error in [*secret_errors, errors.InvalidParameter, errors.LimitExceeded]:
        assert error.aws_type in shapes, error.__name__


@pytest.fixture
def checked_secrets(registry: Registry) -> Iterator[tuple[Any, list[str], set[str]]]:
    with live_server(registry) as url:
        client = aws_client("secretsmanager", url, AwsCredentials(ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY))
        checks = ResponseChecks(client, "secretsmanager")
        yield client, checks.problems, checks.seen


def test_responses_of_every_operation_match_the_model(checked_secrets: tuple[Any, list[str], set[str]]) -> None:
    secrets, problems, seen = checked_secrets
    created = secrets.create_secret(
        Name="contract/db", SecretString="first", Description="d", Tags=[{"Key": "k", "Value": "v"}]
    )
    secrets.create_secret(Name="contract/empty")
    secrets.describe_secret(SecretId=created["ARN"])
    secrets.list_secrets(MaxResults=1, Filters=[{"Key": "name", "Values": ["contract"]}])
    put = secrets.put_secret_value(SecretId="contract/db", SecretBinary=b"\x00second")
    secrets.get_secret_value(SecretId="contract/db")
    secrets.get_secret_value(SecretId="contract/db", VersionStage="AWSPREVIOUS")
    secrets.update_secret(SecretId="contract/db", SecretString="third", Description="e")
    secrets.update_secret_version_stage(SecretId="contract/db", VersionStage="BETA", MoveToVersionId=put["VersionId"])
    secrets.list_secret_version_ids(SecretId="contract/db", IncludeDeprecated=True, MaxResults=1)
    secrets.tag_resource(SecretId="contract/db", Tags=[{"Key": "a", "Value": "b"}])
    secrets.untag_resource(SecretId="contract/db", TagKeys=["a"])
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "*",
            }
        ],
    }
    secrets.put_resource_policy(SecretId="contract/db", ResourcePolicy=json.dumps(policy), BlockPublicPolicy=True)
    secrets.get_resource_policy(SecretId="contract/db")
    secrets.delete_resource_policy(SecretId="contract/db")
    secrets.get_resource_policy(SecretId="contract/db")  # without a policy
    secrets.delete_secret(SecretId="contract/db", RecoveryWindowInDays=7)
    secrets.describe_secret(SecretId="contract/db")  # with its DeletedDate
    secrets.list_secrets(IncludePlannedDeletion=True, SortBy="name", SortOrder="desc")
    secrets.restore_secret(SecretId="contract/db")
    secrets.delete_secret(SecretId="contract/empty", ForceDeleteWithoutRecovery=True)
    assert problems == []
    assert seen == set(secrets_operations.OPERATIONS)
