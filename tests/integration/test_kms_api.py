"""The KMS API through boto3 and the real AWS CLI against a real socket, on both metadata back ends."""

from __future__ import annotations

import base64
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY
from tests.integration.test_ecr_api import client_for
from tests.support.clients import run_tool

ACCOUNT = "000000000000"
CONTEXT = {"aws:ecr:arn": f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/app"}


@pytest.fixture
def kms(endpoint: str) -> Any:
    return client_for(endpoint, "kms")


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def test_a_key_through_its_life_with_boto3(kms: Any) -> None:
    created = kms.create_key(Description="app data", Tags=[{"TagKey": "team", "TagValue": "blue"}])["KeyMetadata"]
    key_id, arn = created["KeyId"], created["Arn"]
    assert arn == f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{key_id}"
    assert (created["KeyState"], created["Enabled"], created["KeyManager"], created["Origin"]) == (
        "Enabled",
        True,
        "CUSTOMER",
        "AWS_KMS",
    )
    assert created["EncryptionAlgorithms"] == ["SYMMETRIC_DEFAULT"]
    kms.create_alias(AliasName="alias/app", TargetKeyId=key_id)
    assert kms.describe_key(KeyId="alias/app")["KeyMetadata"]["Arn"] == arn
    aliases = kms.list_aliases(KeyId=arn)["Aliases"]
    assert [(a["AliasName"], a["TargetKeyId"]) for a in aliases] == [("alias/app", key_id)]
    assert kms.list_resource_tags(KeyId=key_id)["Tags"] == [{"TagKey": "team", "TagValue": "blue"}]

    encrypted = kms.encrypt(KeyId="alias/app", Plaintext=b"secret", EncryptionContext=CONTEXT)
    assert (encrypted["KeyId"], encrypted["EncryptionAlgorithm"]) == (arn, "SYMMETRIC_DEFAULT")
    decrypted = kms.decrypt(CiphertextBlob=encrypted["CiphertextBlob"], EncryptionContext=CONTEXT)
    assert (decrypted["KeyId"], decrypted["Plaintext"]) == (arn, b"secret")
    data_key = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256", EncryptionContext=CONTEXT)
    assert len(data_key["Plaintext"]) == 32 and data_key["KeyId"] == arn
    opened = kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"], EncryptionContext=CONTEXT, KeyId="alias/app")
    assert opened["Plaintext"] == data_key["Plaintext"]
    sealed_only = kms.generate_data_key_without_plaintext(KeyId=arn, NumberOfBytes=16)
    assert "Plaintext" not in sealed_only
    assert len(kms.decrypt(CiphertextBlob=sealed_only["CiphertextBlob"])["Plaintext"]) == 16

    kms.disable_key(KeyId=key_id)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"
    with pytest.raises(ClientError) as disabled:
        kms.decrypt(CiphertextBlob=encrypted["CiphertextBlob"], EncryptionContext=CONTEXT)
    assert error_of(disabled) == ("DisabledException", f"{arn} is disabled.")
    kms.enable_key(KeyId=key_id)

    scheduled = kms.schedule_key_deletion(KeyId=arn, PendingWindowInDays=7)
    assert (scheduled["KeyId"], scheduled["KeyState"], scheduled["PendingWindowInDays"]) == (arn, "PendingDeletion", 7)
    described = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert described["DeletionDate"] == scheduled["DeletionDate"] and not described["Enabled"]
    with pytest.raises(ClientError) as pending:
        kms.encrypt(KeyId=key_id, Plaintext=b"x")
    assert error_of(pending) == ("KMSInvalidStateException", f"{arn} is pending deletion.")
    assert kms.cancel_key_deletion(KeyId=key_id)["KeyId"] == arn
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"

    kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "env", "TagValue": "prod"}])
    kms.untag_resource(KeyId=key_id, TagKeys=["team"])
    assert kms.list_resource_tags(KeyId=key_id)["Tags"] == [{"TagKey": "env", "TagValue": "prod"}]
    other = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.update_alias(AliasName="alias/app", TargetKeyId=other)
    assert kms.describe_key(KeyId="alias/app")["KeyMetadata"]["KeyId"] == other
    kms.delete_alias(AliasName="alias/app")
    assert kms.list_aliases()["Aliases"] == []


def test_listings_page_with_boto3_paginators(kms: Any) -> None:
    made = sorted(kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(5))
    for i, key_id in enumerate(made):
        kms.create_alias(AliasName=f"alias/k{i}", TargetKeyId=key_id)
    pages = list(kms.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 2}))
    assert len(pages) == 3 and [p["Truncated"] for p in pages] == [True, True, False]
    assert [k["KeyId"] for p in pages for k in p["Keys"]] == made
    aliases = kms.get_paginator("list_aliases").paginate(PaginationConfig={"PageSize": 2})
    assert [a["AliasName"] for p in aliases for a in p["Aliases"]] == [f"alias/k{i}" for i in range(5)]
    with pytest.raises(ClientError) as bad_marker:
        kms.list_keys(Marker="not base64!")
    assert error_of(bad_marker)[0] == "InvalidMarkerException"


def test_kms_errors_through_boto3(kms: Any) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as missing:
        kms.describe_key(KeyId="0b5c3f3e-8a7d-4c1e-9f2a-1d2e3f4a5b6c")
    assert error_of(missing) == (
        "NotFoundException",
        f"Key 'arn:aws:kms:us-east-1:{ACCOUNT}:key/0b5c3f3e-8a7d-4c1e-9f2a-1d2e3f4a5b6c' does not exist",
    )
    with pytest.raises(ClientError) as missing_alias:
        kms.encrypt(KeyId="alias/nope", Plaintext=b"x")
    assert error_of(missing_alias) == (
        "NotFoundException",
        f"Alias arn:aws:kms:us-east-1:{ACCOUNT}:alias/nope is not found.",
    )
    with pytest.raises(ClientError) as window:
        kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=3)
    assert error_of(window)[0] == "ValidationException"
    with pytest.raises(ClientError) as garbage:
        kms.decrypt(CiphertextBlob=b"this is not a ciphertext blob of ecrd")
    assert error_of(garbage)[0] == "InvalidCiphertextException"
    with pytest.raises(ClientError) as prefix:
        kms.create_alias(AliasName="app", TargetKeyId=key_id)
    assert error_of(prefix)[0] == "ValidationException"
    with pytest.raises(ClientError) as reserved:
        kms.create_alias(AliasName="alias/aws/ecr", TargetKeyId=key_id)
    assert error_of(reserved)[0] == "InvalidAliasNameException"
    kms.create_alias(AliasName="alias/app", TargetKeyId=key_id)
    with pytest.raises(ClientError) as exists:
        kms.create_alias(AliasName="alias/app", TargetKeyId=key_id)
    assert error_of(exists) == (
        "AlreadyExistsException",
        f"An alias with the name arn:aws:kms:us-east-1:{ACCOUNT}:alias/app already exists",
    )
    with pytest.raises(ClientError) as malformed:
        kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy='{"Statement": []}')
    assert error_of(malformed)[0] == "MalformedPolicyDocumentException"
    with pytest.raises(ClientError) as lockout:
        kms.put_key_policy(
            KeyId=key_id,
            Policy=policy(
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/nobody"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ),
        )
    assert error_of(lockout) == (
        "MalformedPolicyDocumentException",
        "The new key policy will not allow you to update the key policy in the future.",
    )
    with pytest.raises(ClientError) as no_length:
        kms.generate_data_key(KeyId=key_id)
    assert error_of(no_length)[0] == "ValidationException"
    with pytest.raises(ClientError) as alias_for_key:
        kms.disable_key(KeyId="alias/app")
    assert error_of(alias_for_key)[0] == "NotFoundException"
    with pytest.raises(ClientError) as asymmetric:
        kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")
    assert error_of(asymmetric)[0] == "UnsupportedOperationException"
    with pytest.raises(ClientError) as dry_run:
        kms.encrypt(KeyId=key_id, Plaintext=b"x", DryRun=True)
    assert error_of(dry_run)[0] == "DryRunOperationException"


def test_the_managed_ecr_key_appears_when_described(kms: Any) -> None:
    managed = kms.describe_key(KeyId="alias/aws/ecr")["KeyMetadata"]
    assert managed["KeyManager"] == "AWS"
    assert kms.describe_key(KeyId="alias/aws/ecr")["KeyMetadata"]["KeyId"] == managed["KeyId"]
    assert [a["AliasName"] for a in kms.list_aliases()["Aliases"]] == ["alias/aws/ecr"]
    with pytest.raises(ClientError) as direct:
        kms.encrypt(KeyId="alias/aws/ecr", Plaintext=b"x")
    assert error_of(direct)[0] == "AccessDeniedException"
    with pytest.raises(ClientError) as disable:
        kms.disable_key(KeyId=managed["KeyId"])
    assert error_of(disable)[0] == "AccessDeniedException"


def test_iam_users_are_governed_by_key_policies_and_iam_policies(endpoint: str, kms: Any) -> None:
    iam = client_for(endpoint, "iam")
    for name in ("alice", "bob"):
        iam.create_user(UserName=name)
    iam.put_user_policy(
        UserName="alice",
        PolicyName="kms",
        PolicyDocument=policy(
            {"Effect": "Allow", "Action": ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"], "Resource": "*"}
        ),
    )
    access = iam.create_access_key(UserName="alice")["AccessKey"]
    alice = client_for(endpoint, "kms", access["AccessKeyId"], access["SecretAccessKey"])

    shared = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = alice.encrypt(KeyId=shared, Plaintext=b"hi")["CiphertextBlob"]
    assert alice.decrypt(CiphertextBlob=blob)["Plaintext"] == b"hi"
    with pytest.raises(ClientError) as no_iam:
        alice.disable_key(KeyId=shared)
    assert error_of(no_iam)[0] == "AccessDeniedException"

    bob_only = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/bob"},
            "Action": "kms:*",
            "Resource": "*",
        }
    )
    private = kms.create_key(Policy=bob_only, BypassPolicyLockoutSafetyCheck=True)["KeyMetadata"]
    with pytest.raises(ClientError) as not_in_key_policy:
        alice.encrypt(KeyId=private["KeyId"], Plaintext=b"hi")
    code, message = error_of(not_in_key_policy)
    assert code == "AccessDeniedException"
    assert message == (
        f"User: arn:aws:iam::{ACCOUNT}:user/alice is not authorized to perform: kms:Encrypt on "
        f"resource: {private['Arn']} because no resource-based policy allows the kms:Encrypt action"
    )
    with pytest.raises(ClientError) as root_too:
        kms.describe_key(KeyId=private["KeyId"])
    assert error_of(root_too)[0] == "AccessDeniedException"
    with pytest.raises(ClientError) as no_create:
        alice.create_key()
    assert error_of(no_create)[0] == "AccessDeniedException"


def test_the_target_header_picks_the_protocol_and_the_credential_scope_the_service(kms: Any, endpoint: str) -> None:
    def ecr_target(request: Any, **_: Any) -> None:
        request.headers.replace_header("X-Amz-Target", "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories")

    kms.meta.events.register_first("before-sign.kms.ListKeys", ecr_target)
    with pytest.raises(ClientError) as crossed:
        kms.list_keys()
    assert error_of(crossed)[0] == "UnknownOperationException"

    ecr = client_for(endpoint, "ecr")

    def kms_target(request: Any, **_: Any) -> None:
        request.headers.replace_header("X-Amz-Target", "TrentService.ListKeys")

    ecr.meta.events.register_first("before-sign.ecr.DescribeRepositories", kms_target)
    with pytest.raises(ClientError) as crossed_back:
        ecr.describe_repositories()
    assert error_of(crossed_back)[0] == "UnknownOperationException"


# -- the real AWS CLI ---------------------------------------------------------------------------------------


def _aws_binary() -> str | None:
    beside = Path(sys.executable).with_name("aws")
    return str(beside) if beside.is_file() else shutil.which("aws")


class _Cli:
    """The AWS CLI as the account root, with a private config dir and nothing of the machine's AWS settings."""

    def __init__(self, binary: str, endpoint: str, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        for name in ("config", "credentials"):
            (home / name).touch()
        self.binary = binary
        self.env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
        self.env.update(
            HOME=str(home),
            AWS_CONFIG_FILE=str(home / "config"),
            AWS_SHARED_CREDENTIALS_FILE=str(home / "credentials"),
            AWS_ENDPOINT_URL=endpoint,
            AWS_DEFAULT_REGION="us-east-1",
            AWS_ACCESS_KEY_ID=ROOT_ACCESS_KEY_ID,
            AWS_SECRET_ACCESS_KEY=ROOT_SECRET_ACCESS_KEY,
            AWS_EC2_METADATA_DISABLED="true",
            AWS_MAX_ATTEMPTS="1",
            AWS_PAGER="",
        )
        # CLI v2 reads blob arguments as base64 unless told otherwise; v1 has no such option and reads them raw.
        version = run_tool([binary, "--version"], env=self.env, timeout=60)
        self.raw_blobs = (
            ["--cli-binary-format", "raw-in-base64-out"] if "aws-cli/2" in version.stdout + version.stderr else []
        )

    def __call__(self, *args: str, check: bool = True) -> Any:
        argv = [self.binary, "--cli-connect-timeout", "5", "--cli-read-timeout", "60", *args, "--output", "json"]
        done = run_tool(argv, env=self.env, timeout=120, check=check, redact=[ROOT_SECRET_ACCESS_KEY])
        if not check:
            return done
        return json.loads(done.stdout) if done.stdout.strip() else None


def test_the_aws_cli_creates_aliases_encrypts_and_disables_keys(endpoint: str, tmp_path: Path) -> None:
    binary = _aws_binary()
    if binary is None:
        pytest.skip("the AWS CLI is not installed (PyPI awscli, a test dependency)")
    aws = _Cli(binary, endpoint, tmp_path / "aws-home")

    key = aws("kms", "create-key", "--description", "made by the CLI")["KeyMetadata"]
    assert key["Description"] == "made by the CLI"
    aws("kms", "create-alias", "--alias-name", "alias/cli", "--target-key-id", key["KeyId"])
    assert [a["AliasName"] for a in aws("kms", "list-aliases")["Aliases"]] == ["alias/cli"]

    encrypted = aws(
        "kms",
        "encrypt",
        "--key-id",
        "alias/cli",
        "--plaintext",
        "hello from the cli",
        "--encryption-context",
        "purpose=test",
        *aws.raw_blobs,
    )
    assert encrypted["KeyId"] == key["Arn"]
    blob = tmp_path / "blob.bin"
    blob.write_bytes(base64.b64decode(encrypted["CiphertextBlob"]))
    decrypted = aws("kms", "decrypt", "--ciphertext-blob", f"fileb://{blob}", "--encryption-context", "purpose=test")
    assert base64.b64decode(decrypted["Plaintext"]) == b"hello from the cli"

    aws("kms", "disable-key", "--key-id", key["KeyId"])
    assert aws("kms", "describe-key", "--key-id", "alias/cli")["KeyMetadata"]["KeyState"] == "Disabled"
    failed = aws(
        "kms", "decrypt", "--ciphertext-blob", f"fileb://{blob}", "--encryption-context", "purpose=test", check=False
    )
    assert failed.returncode != 0
    assert "An error occurred (DisabledException) when calling the Decrypt operation" in failed.stderr
    aws("kms", "enable-key", "--key-id", key["KeyId"])
    scheduled = aws("kms", "schedule-key-deletion", "--key-id", key["KeyId"], "--pending-window-in-days", "7")
    assert scheduled["KeyState"] == "PendingDeletion"
