"""Every KMS operation ecrd implements exists in the botocore model, every response it sends matches the model's
output shape exactly (checked on the raw JSON, before botocore's lenient parser sees it), and every KMS error
class names an exception shape of the model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ecrd import errors
from ecrd.app import Registry
from ecrd.aws import kms as kms_operations
from ecrd.aws.door import JSON_TARGET_PREFIXES
from ecrd.aws.models import service_model
from tests.conftest import ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY
from tests.support.clients import AwsCredentials, aws_client
from tests.support.live_server import live_server
from tests.support.model_check import ResponseChecks


def test_every_implemented_operation_is_in_the_model() -> None:
    assert set(kms_operations.OPERATIONS) <= set(service_model("kms").operation_names)


def test_the_json_services_answer_to_their_models_target_prefixes() -> None:
    for service, prefix in JSON_TARGET_PREFIXES.items():
        assert service_model(service).metadata["targetPrefix"] == prefix


def test_every_kms_error_class_is_an_exception_of_the_model() -> None:
    shapes = {shape.name for shape in service_model("kms").error_shapes}
    kms_errors = [
        value
        for name, value in vars(errors).items()
        if name.startswith("Kms")
        and isinstance(value, type)
        and issubclass(value, errors.EcrdError)
        and value is not errors.KmsError
    ]  # KmsError is ECR's KmsException, not a KMS error
    assert kms_errors
    for error in kms_errors:
        assert error.aws_type in shapes, error.__name__


@pytest.fixture
def checked_kms(registry: Registry) -> Iterator[tuple[Any, list[str], set[str]]]:
    with live_server(registry) as url:
        client = aws_client("kms", url, AwsCredentials(ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY))
        checks = ResponseChecks(client, "kms")
        yield client, checks.problems, checks.seen


def test_responses_of_every_operation_match_the_model(checked_kms: tuple[Any, list[str], set[str]]) -> None:
    kms, problems, seen = checked_kms
    key = kms.create_key(Description="contract", Tags=[{"TagKey": "k", "TagValue": "v"}])["KeyMetadata"]["KeyId"]
    other = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.describe_key(KeyId=key)
    kms.list_keys(Limit=1)
    kms.create_alias(AliasName="alias/contract", TargetKeyId=key)
    kms.update_alias(AliasName="alias/contract", TargetKeyId=other)
    kms.list_aliases()
    kms.delete_alias(AliasName="alias/contract")
    kms.disable_key(KeyId=key)
    kms.enable_key(KeyId=key)
    blob = kms.encrypt(KeyId=key, Plaintext=b"p", EncryptionContext={"a": "b"})["CiphertextBlob"]
    kms.decrypt(CiphertextBlob=blob, EncryptionContext={"a": "b"})
    kms.generate_data_key(KeyId=key, KeySpec="AES_128")
    kms.generate_data_key_without_plaintext(KeyId=key, NumberOfBytes=64)
    policy = kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"]
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=policy)
    kms.tag_resource(KeyId=key, Tags=[{"TagKey": "a", "TagValue": "b"}])
    kms.untag_resource(KeyId=key, TagKeys=["a"])
    kms.list_resource_tags(KeyId=key, Limit=1)
    kms.get_key_rotation_status(KeyId=key)  # off: no period, no date
    kms.enable_key_rotation(KeyId=key, RotationPeriodInDays=180)
    kms.get_key_rotation_status(KeyId=key)  # on: with its period and next date
    kms.rotate_key_on_demand(KeyId=key)
    kms.rotate_key_on_demand(KeyId=key)
    kms.get_key_rotation_status(KeyId=key)  # on, after on-demand rotations
    first = kms.list_key_rotations(KeyId=key, Limit=1)  # truncated: with its NextMarker
    kms.list_key_rotations(KeyId=key, Marker=first["NextMarker"])
    kms.list_key_rotations(KeyId=key, IncludeKeyMaterial="ALL_KEY_MATERIAL")  # the original, without a date
    kms.disable_key_rotation(KeyId=key)
    kms.schedule_key_deletion(KeyId=key)
    kms.describe_key(KeyId=key)  # with its DeletionDate
    kms.cancel_key_deletion(KeyId=key)
    signing = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    kms.describe_key(KeyId=signing)  # SigningAlgorithms, no EncryptionAlgorithms
    signature = kms.sign(KeyId=signing, Message=b"m", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    kms.verify(KeyId=signing, Message=b"m", Signature=signature, SigningAlgorithm="ECDSA_SHA_256")
    kms.get_public_key(KeyId=signing)
    assert problems == []
    assert seen == set(kms_operations.OPERATIONS)
