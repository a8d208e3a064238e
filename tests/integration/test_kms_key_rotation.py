"""KMS key rotation through boto3 on SQLite and PostgreSQL: GetKeyRotationStatus, EnableKeyRotation,
DisableKeyRotation, RotateKeyOnDemand and ListKeyRotations, with KMS's period, schedule, state rules, listing
and authorization."""

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


def _kms_client_allowed(endpoint: str, user: str, action: str) -> Any:
    """A KMS client of a new IAM user whose only permission is ``action`` on every resource."""
    iam = client_for(endpoint, "iam")
    iam.create_user(UserName=user)
    statement = {"Effect": "Allow", "Action": action, "Resource": "*"}
    document = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    iam.put_user_policy(UserName=user, PolicyName="only", PolicyDocument=document)
    secret = iam.create_access_key(UserName=user)["AccessKey"]
    return client_for(endpoint, "kms", secret["AccessKeyId"], secret["SecretAccessKey"])


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
    auditor = _kms_client_allowed(endpoint, "auditor", "kms:GetKeyRotationStatus")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]

    # when it reads and then tries to change the key's rotation, then only the read is allowed
    assert auditor.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False
    with pytest.raises(ClientError) as denied:
        auditor.enable_key_rotation(KeyId=key_id)
    assert _code(denied) == "AccessDeniedException"
    assert "kms:EnableKeyRotation" in str(denied.value)


def test_on_demand_rotations_are_listed_with_their_date_and_type(kms: Any) -> None:
    # given a key rotated on demand twice
    key = kms.create_key()["KeyMetadata"]
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"before")["CiphertextBlob"]
    before = dt.datetime.now(dt.UTC)
    assert kms.rotate_key_on_demand(KeyId=key["Arn"])["KeyId"] == key["KeyId"]
    kms.rotate_key_on_demand(KeyId=key["KeyId"])

    # then ListKeyRotations pages through both, the newest current, and the original only when asked for
    first = kms.list_key_rotations(KeyId=key["KeyId"], Limit=1)
    assert first["Truncated"] is True
    rest = kms.list_key_rotations(KeyId=key["KeyId"], Marker=first["NextMarker"])
    assert rest["Truncated"] is False and "NextMarker" not in rest
    rotations = first["Rotations"] + rest["Rotations"]
    assert [(r["RotationType"], r["KeyMaterialState"]) for r in rotations] == [
        ("ON_DEMAND", "NON_CURRENT"),
        ("ON_DEMAND", "CURRENT"),
    ]
    assert all(r["KeyId"] == key["KeyId"] and r["RotationDate"] >= before - dt.timedelta(seconds=5) for r in rotations)
    everything = kms.list_key_rotations(KeyId=key["KeyId"], IncludeKeyMaterial="ALL_KEY_MATERIAL")["Rotations"]
    assert len(everything) == 3 and "RotationDate" not in everything[0] and "RotationType" not in everything[0]
    assert len({r["KeyMaterialId"] for r in everything}) == 3

    # and the blob made before still decrypts, while a new one is made with the newest material
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"before"
    again = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"after")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=again)["Plaintext"] == b"after"
    # no on-demand rotation is ever in progress: each completes within its call
    assert "OnDemandRotationStartDate" not in kms.get_key_rotation_status(KeyId=key["KeyId"])


def test_on_demand_rotation_is_refused_where_kms_refuses_it(kms: Any) -> None:
    disabled = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.disable_key(KeyId=disabled)
    doomed = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=doomed, PendingWindowInDays=7)
    with pytest.raises(ClientError) as off:
        kms.rotate_key_on_demand(KeyId=disabled)
    assert _code(off) == "DisabledException"
    with pytest.raises(ClientError) as pending:
        kms.rotate_key_on_demand(KeyId=doomed)
    assert _code(pending) == "KMSInvalidStateException"
    with pytest.raises(ClientError) as by_alias:
        kms.create_alias(AliasName="alias/spin", TargetKeyId=disabled)
        kms.rotate_key_on_demand(KeyId="alias/spin")
    assert _code(by_alias) == "NotFoundException"
    with pytest.raises(ClientError) as bad_marker:
        kms.list_key_rotations(KeyId=disabled, Marker="not-a-marker")
    assert _code(bad_marker) == "InvalidMarkerException"
    # the AWS managed keys rotate every year by themselves, and list their rotations
    managed = kms.describe_key(KeyId="alias/aws/ecr")["KeyMetadata"]["KeyId"]
    status = kms.get_key_rotation_status(KeyId=managed)
    assert (status["KeyRotationEnabled"], status["RotationPeriodInDays"]) == (True, 365)
    assert kms.list_key_rotations(KeyId=managed)["Rotations"] == []
    with pytest.raises(ClientError) as aws_managed:
        kms.rotate_key_on_demand(KeyId=managed)
    # its key policy gives nobody kms:RotateKeyOnDemand (and the key service would refuse it as unsupported)
    assert _code(aws_managed) == "AccessDeniedException"


def test_rotation_operations_are_authorized_on_the_key(endpoint: str, kms: Any) -> None:
    # given a user allowed to list rotations only
    lister = _kms_client_allowed(endpoint, "lister", "kms:ListKeyRotations")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]

    # then it lists, and is refused rotating by name of the action
    assert lister.list_key_rotations(KeyId=key_id)["Rotations"] == []
    with pytest.raises(ClientError) as denied:
        lister.rotate_key_on_demand(KeyId=key_id)
    assert _code(denied) == "AccessDeniedException"
    assert "kms:RotateKeyOnDemand" in str(denied.value)
