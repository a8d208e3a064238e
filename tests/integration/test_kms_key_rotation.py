"""KMS key rotation settings through boto3 on SQLite and PostgreSQL: GetKeyRotationStatus, EnableKeyRotation and
DisableKeyRotation, with KMS's period, schedule, state rules and authorization."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.test_ecr_api import client_for

DAY = dt.timedelta(days=1)


@pytest.fixture
def kms(endpoint: str) -> Any:
    return client_for(endpoint, "kms")


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_rotation_is_off_until_enabled_then_due_one_period_later(kms: Any) -> None:
    # given a new key
    key = kms.create_key()["KeyMetadata"]

    # then its rotation is off
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is False

    # when rotation is enabled without a period, then it is due in KMS's default 365 days
    before = dt.datetime.now(dt.UTC)
    kms.enable_key_rotation(KeyId=key["KeyId"])
    status = kms.get_key_rotation_status(KeyId=key["Arn"])
    assert (status["KeyRotationEnabled"], status["RotationPeriodInDays"], status["KeyId"]) == (True, 365, key["Arn"])
    assert before + 365 * DAY - dt.timedelta(seconds=5) <= status["NextRotationDate"] <= before + 366 * DAY

    # and enabled again with another period, the next rotation is that period away
    kms.enable_key_rotation(KeyId=key["KeyId"], RotationPeriodInDays=90)
    status = kms.get_key_rotation_status(KeyId=key["KeyId"])
    assert status["RotationPeriodInDays"] == 90
    assert status["NextRotationDate"] <= before + 91 * DAY

    # and disabled, it is off with no schedule
    kms.disable_key_rotation(KeyId=key["KeyId"])
    status = kms.get_key_rotation_status(KeyId=key["KeyId"])
    assert status["KeyRotationEnabled"] is False
    assert "RotationPeriodInDays" not in status and "NextRotationDate" not in status


def test_rotation_follows_the_keys_state_and_kind(kms: Any) -> None:
    # given a disabled key, a key pending deletion and the AWS managed key for ECR
    disabled = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.disable_key(KeyId=disabled)
    doomed = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=doomed, PendingWindowInDays=7)
    managed = kms.describe_key(KeyId="alias/aws/ecr")["KeyMetadata"]["KeyId"]

    # then each refuses as KMS does
    with pytest.raises(ClientError) as off:
        kms.enable_key_rotation(KeyId=disabled)
    assert _code(off) == "DisabledException"
    with pytest.raises(ClientError) as pending:
        kms.get_key_rotation_status(KeyId=doomed)
    assert _code(pending) == "KMSInvalidStateException"
    with pytest.raises(ClientError) as aws_managed:
        # its key policy gives nobody kms:DisableKeyRotation: AWS rotates its managed keys itself
        kms.disable_key_rotation(KeyId=managed)
    assert _code(aws_managed) == "AccessDeniedException"
    with pytest.raises(ClientError) as by_alias:
        kms.create_alias(AliasName="alias/rotated", TargetKeyId=disabled)
        kms.get_key_rotation_status(KeyId="alias/rotated")
    assert _code(by_alias) == "NotFoundException"


def test_rotation_is_authorized_by_key_policy_and_iam(endpoint: str, kms: Any) -> None:
    # given a user allowed to read rotation status but not to change it
    iam = client_for(endpoint, "iam")
    iam.create_user(UserName="auditor")
    iam.put_user_policy(
        UserName="auditor",
        PolicyName="status",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "kms:GetKeyRotationStatus", "Resource": "*"}],
            }
        ),
    )
    secret = iam.create_access_key(UserName="auditor")["AccessKey"]
    auditor = client_for(endpoint, "kms", secret["AccessKeyId"], secret["SecretAccessKey"])
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]

    # when it reads and then tries to change the key's rotation, then only the read is allowed
    assert auditor.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False
    with pytest.raises(ClientError) as denied:
        auditor.enable_key_rotation(KeyId=key_id)
    assert _code(denied) == "AccessDeniedException"
    assert "kms:EnableKeyRotation" in str(denied.value)
