"""The KMS API operations (JSON 1.1, ``TrentService``), each named after its API operation, each authorizing
through the key service and calling it; responses carry exactly the members of the botocore ``kms`` model."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any, Final

from ecrd.aws.context import AwsContext, Operation
from ecrd.errors import (
    KmsDryRun,
    KmsInvalidKeyUsage,
    KmsNotFound,
    KmsUnsupportedOperation,
    ValidationError,
)
from ecrd.services.access import request_tag_context
from ecrd.services.kms import KeyService
from ecrd.services.kms_keys import (
    ECDSA_SHA_256,
    SIGN_VERIFY,
    SYMMETRIC_DEFAULT,
    AliasRecord,
    KeyRecord,
    check_alias_name,
    check_alias_target,
    check_pending_window,
)
from ecrd.services.kms_rotation import KeyRotation
from ecrd.services.kms_signing import RAW

ORIGIN: Final = "AWS_KMS"
DEFAULT_POLICY_NAME: Final = "default"
DATA_KEY_SPECS: Final = {"AES_256": 32, "AES_128": 16}


def _kms(ctx: AwsContext) -> KeyService:
    return ctx.services.kms


def _when(epoch: float | None) -> dt.datetime | None:
    return None if epoch is None else dt.datetime.fromtimestamp(epoch, tz=dt.UTC)


def _key_metadata(ctx: AwsContext, key: KeyRecord) -> dict[str, Any]:
    return {
        "AWSAccountId": key.account_id,  # the key's own account: DescribeKey works across accounts
        "KeyId": key.key_id,
        "Arn": key.arn,
        "CreationDate": _when(key.creation_date),
        "Enabled": key.enabled,
        "Description": key.description,
        "KeyUsage": key.key_usage,
        "KeyState": key.state,
        "DeletionDate": _when(key.deletion_date),
        "Origin": ORIGIN,
        "KeyManager": key.key_manager,
        "CustomerMasterKeySpec": key.key_spec,
        "KeySpec": key.key_spec,
        **_algorithms(key),
        "MultiRegion": False,
    }


def _algorithms(key: KeyRecord) -> dict[str, list[str]]:
    """What the key does: DescribeKey and GetPublicKey list its encryption or its signing algorithms."""
    if key.key_usage == SIGN_VERIFY:
        return {"SigningAlgorithms": [ECDSA_SHA_256]}
    return {"EncryptionAlgorithms": [SYMMETRIC_DEFAULT]}


def _alias_entry(alias: AliasRecord) -> dict[str, Any]:
    return {
        "AliasName": alias.name,
        "AliasArn": alias.arn,
        "TargetKeyId": alias.target_key_id,
        "CreationDate": _when(alias.creation_date),
        "LastUpdatedDate": _when(alias.last_updated_date),
    }


def _key_only(reference: str) -> str:
    """The operations that manage a key take its id or ARN, not an alias (KMS API reference, ``KeyId``)."""
    if reference.startswith("alias/") or (reference.startswith("arn:") and ":alias/" in reference):
        raise KmsNotFound(f"Invalid keyId '{reference[:300]}'")
    return reference


def _tags(raw: list[dict[str, str]] | None) -> list[tuple[str, str]]:
    return [(tag["TagKey"], tag["TagValue"]) for tag in raw or []]


def _check_algorithm(params: dict[str, Any]) -> None:
    algorithm = params.get("EncryptionAlgorithm", SYMMETRIC_DEFAULT)
    if algorithm != SYMMETRIC_DEFAULT:
        raise KmsInvalidKeyUsage(
            f"The encryption algorithm {algorithm} is not valid for this key: symmetric keys "
            f"encrypt with {SYMMETRIC_DEFAULT} only."
        )


def _unsupported_inputs(params: dict[str, Any], *names: str) -> None:
    for name in names:
        if params.get(name):
            raise KmsUnsupportedOperation(f"ecrd's key service does not support the {name} parameter.")


def _dry_run(params: dict[str, Any]) -> None:
    # DryRun: authorized, and would have succeeded (KMS API reference, "Testing your KMS API calls").
    if params.get("DryRun"):
        raise KmsDryRun("The request would have succeeded, but the DryRun option is set.")


# -- keys --------------------------------------------------------------------------------------------------


def create_key(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    _unsupported_inputs(params, "CustomKeyStoreId", "XksKeyId", "MultiRegion")
    if params.get("Origin", ORIGIN) != ORIGIN:
        raise KmsUnsupportedOperation(f"ecrd's key service makes keys of origin {ORIGIN} only.")
    key_spec, master_key_spec = params.get("KeySpec"), params.get("CustomerMasterKeySpec")
    if key_spec is not None and master_key_spec is not None:
        raise ValidationError(
            "You cannot specify KeySpec and CustomerMasterKeySpec in the same request. "
            "CustomerMasterKeySpec is deprecated."
        )
    spec = key_spec or master_key_spec or SYMMETRIC_DEFAULT
    usage = params.get("KeyUsage", "ENCRYPT_DECRYPT")
    tags = _tags(params.get("Tags"))
    bypass = bool(params.get("BypassPolicyLockoutSafetyCheck", False))
    kms = _kms(ctx)
    kms.authorize_account(
        ctx.caller,
        "kms:CreateKey",
        context={
            "kms:KeySpec": spec,
            "kms:KeyUsage": usage,
            "kms:KeyOrigin": ORIGIN,
            "kms:MultiRegion": False,
            "kms:BypassPolicyLockoutSafetyCheck": bypass,
            **request_tag_context(tags),
        },
    )
    if tags:
        # KMS: tagging a key as it is created needs kms:TagResource as well.
        kms.authorize_account(ctx.caller, "kms:TagResource", context=request_tag_context(tags))
    policy = params.get("Policy")
    if policy is not None and not bypass:
        kms.check_policy_lockout(ctx.caller, policy)
    key = kms.create_key(
        ctx.caller.arn,
        description=params.get("Description", ""),
        key_usage=usage,
        key_spec=spec,
        policy=policy,
        tags=tags,
    )
    return {"KeyMetadata": _key_metadata(ctx, key)}


def describe_key(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    reference = params["KeyId"]
    kms = _kms(ctx)
    managed = kms.managed_key_named(reference)
    if managed is not None:
        # KMS: "If you call DescribeKey on a predefined AWS alias ... KMS creates an AWS managed key."
        kms.managed_key(managed, ctx.caller.arn)
    key = kms.authorize(ctx.caller, "kms:DescribeKey", reference)
    return {"KeyMetadata": _key_metadata(ctx, key)}


def list_keys(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    kms = _kms(ctx)
    kms.authorize_account(ctx.caller, "kms:ListKeys")
    page = kms.list_keys(limit=params.get("Limit"), marker=params.get("Marker"))
    return {
        "Keys": [{"KeyId": key.key_id, "KeyArn": key.arn} for key in page.items],
        "NextMarker": page.token,
        "Truncated": page.truncated,
    }


def enable_key(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    key = _kms(ctx).authorize(ctx.caller, "kms:EnableKey", _key_only(params["KeyId"]))
    _kms(ctx).enable_key(key.arn)
    return {}


def disable_key(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    key = _kms(ctx).authorize(ctx.caller, "kms:DisableKey", _key_only(params["KeyId"]))
    _kms(ctx).disable_key(key.arn)
    return {}


def enable_key_rotation(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    kms = _kms(ctx)
    key = kms.authorize(ctx.caller, "kms:EnableKeyRotation", _key_only(params["KeyId"]))
    kms.enable_key_rotation(key.arn, params.get("RotationPeriodInDays"))
    return {}


def disable_key_rotation(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    kms = _kms(ctx)
    key = kms.authorize(ctx.caller, "kms:DisableKeyRotation", _key_only(params["KeyId"]))
    kms.disable_key_rotation(key.arn)
    return {}


def get_key_rotation_status(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    kms = _kms(ctx)
    key = kms.get_key_rotation_status(
        kms.authorize(ctx.caller, "kms:GetKeyRotationStatus", _key_only(params["KeyId"])).arn
    )
    out: dict[str, Any] = {"KeyId": key.arn, "KeyRotationEnabled": key.rotation_period_days is not None}
    if key.rotation_period_days is not None:
        out["RotationPeriodInDays"] = key.rotation_period_days
        out["NextRotationDate"] = _when(key.next_rotation_at)
    # No OnDemandRotationStartDate: KMS reports it only while an on-demand rotation is in progress, and ecrd's
    # complete within RotateKeyOnDemand (decision 0026).
    return out


def rotate_key_on_demand(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    kms = _kms(ctx)
    key = kms.authorize(ctx.caller, "kms:RotateKeyOnDemand", _key_only(params["KeyId"]))
    kms.rotate_key_on_demand(key.arn)
    return {"KeyId": key.key_id}


def _key_material_id(rotation: KeyRotation) -> str:
    # KMS names each key material by 64 hex digits; ecrd's are a digest of the key and the material version.
    return hashlib.sha256(f"{rotation.key_id}:{rotation.version}".encode()).hexdigest()


def _rotation_entry(rotation: KeyRotation) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "KeyId": rotation.key_id,
        "KeyMaterialId": _key_material_id(rotation),
        "KeyMaterialState": "CURRENT" if rotation.current else "NON_CURRENT",
    }
    # "This field is not present for the first key material" (RotationDate, RotationType).
    if rotation.rotation_type is not None:
        entry["RotationDate"] = _when(rotation.rotation_date)
        entry["RotationType"] = rotation.rotation_type
    return entry


def list_key_rotations(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    kms = _kms(ctx)
    key = kms.authorize(ctx.caller, "kms:ListKeyRotations", _key_only(params["KeyId"]))
    page = kms.list_key_rotations(
        key.arn,
        include_original=params.get("IncludeKeyMaterial") == "ALL_KEY_MATERIAL",
        limit=params.get("Limit"),
        marker=params.get("Marker"),
    )
    out: dict[str, Any] = {"Rotations": [_rotation_entry(r) for r in page.items], "Truncated": page.truncated}
    if page.token is not None:
        out["NextMarker"] = page.token
    return out


def schedule_key_deletion(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    days = params.get("PendingWindowInDays")
    if days is not None:
        check_pending_window(days)
    kms = _kms(ctx)
    key = kms.authorize(ctx.caller, "kms:ScheduleKeyDeletion", _key_only(params["KeyId"]))
    scheduled = kms.schedule_key_deletion(key.arn, days)
    return {
        "KeyId": scheduled.arn,
        "DeletionDate": _when(scheduled.deletion_date),
        "KeyState": scheduled.state,
        "PendingWindowInDays": scheduled.pending_window_days,
    }


def cancel_key_deletion(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    kms = _kms(ctx)
    key = kms.authorize(ctx.caller, "kms:CancelKeyDeletion", _key_only(params["KeyId"]))
    return {"KeyId": kms.cancel_key_deletion(key.arn).arn}


# -- key policies ------------------------------------------------------------------------------------------


def get_key_policy(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    name = params.get("PolicyName", DEFAULT_POLICY_NAME)
    kms = _kms(ctx)
    key = kms.authorize(ctx.caller, "kms:GetKeyPolicy", _key_only(params["KeyId"]))
    if name != DEFAULT_POLICY_NAME:
        raise KmsNotFound("No such policy exists")
    # Read through the key service, which answers for keys of its own account only: GetKeyPolicy is not a
    # cross-account operation, whatever another account's key policy allows.
    return {"Policy": kms.get_key_policy(key.arn), "PolicyName": DEFAULT_POLICY_NAME}


def put_key_policy(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    if params.get("PolicyName", DEFAULT_POLICY_NAME) != DEFAULT_POLICY_NAME:
        raise KmsUnsupportedOperation(f"A key has one key policy, named {DEFAULT_POLICY_NAME}.")
    kms = _kms(ctx)
    policy = params["Policy"]
    kms.check_key_policy(policy)
    bypass = bool(params.get("BypassPolicyLockoutSafetyCheck", False))
    key = kms.authorize(
        ctx.caller,
        "kms:PutKeyPolicy",
        _key_only(params["KeyId"]),
        context={"kms:BypassPolicyLockoutSafetyCheck": bypass},
    )
    if not bypass:
        kms.check_policy_lockout(ctx.caller, policy, key.arn)
    kms.put_key_policy(key.arn, policy)
    return {}


# -- tags --------------------------------------------------------------------------------------------------


def tag_resource(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    tags = _tags(params["Tags"])
    kms = _kms(ctx)
    key = kms.authorize(ctx.caller, "kms:TagResource", _key_only(params["KeyId"]), context=request_tag_context(tags))
    kms.tag_resource(key.arn, tags)
    return {}


def untag_resource(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    keys: list[str] = params["TagKeys"]
    kms = _kms(ctx)
    key = kms.authorize(ctx.caller, "kms:UntagResource", _key_only(params["KeyId"]), context={"aws:TagKeys": keys})
    kms.untag_resource(key.arn, keys)
    return {}


def list_resource_tags(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    kms = _kms(ctx)
    key = kms.authorize(ctx.caller, "kms:ListResourceTags", _key_only(params["KeyId"]))
    page = kms.list_resource_tags(key.arn, limit=params.get("Limit"), marker=params.get("Marker"))
    return {
        "Tags": [{"TagKey": tag_key, "TagValue": value} for tag_key, value in page.items],
        "NextMarker": page.token,
        "Truncated": page.truncated,
    }


# -- aliases -----------------------------------------------------------------------------------------------
# KMS authorizes the alias operations twice: on the alias, by IAM policies alone, and on each key involved,
# by its key policy (KMS developer guide, "Controlling access to aliases").


def create_alias(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    name, target = params["AliasName"], params["TargetKeyId"]
    check_alias_name(name)
    check_alias_target(target)
    kms = _kms(ctx)
    kms.authorize_account(ctx.caller, "kms:CreateAlias", kms.alias_arn(name))
    key = kms.authorize(ctx.caller, "kms:CreateAlias", target)
    kms.create_alias(name, key.arn)  # by ARN: a key of another account is not found in KMS's words
    return {}


def update_alias(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    name, target = params["AliasName"], params["TargetKeyId"]
    check_alias_name(name)
    check_alias_target(target)
    kms = _kms(ctx)
    kms.authorize_account(ctx.caller, "kms:UpdateAlias", kms.alias_arn(name))
    current = kms.get_alias(name)
    kms.authorize(ctx.caller, "kms:UpdateAlias", current.target_key_id)
    key = kms.authorize(ctx.caller, "kms:UpdateAlias", target)
    kms.update_alias(name, key.arn)
    return {}


def delete_alias(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    name = params["AliasName"]
    check_alias_name(name)
    kms = _kms(ctx)
    kms.authorize_account(ctx.caller, "kms:DeleteAlias", kms.alias_arn(name))
    current = kms.get_alias(name)
    kms.authorize(ctx.caller, "kms:DeleteAlias", current.target_key_id)
    kms.delete_alias(name)
    return {}


def list_aliases(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    kms = _kms(ctx)
    kms.authorize_account(ctx.caller, "kms:ListAliases")
    page = kms.list_aliases(key=params.get("KeyId"), limit=params.get("Limit"), marker=params.get("Marker"))
    return {
        "Aliases": [_alias_entry(alias) for alias in page.items],
        "NextMarker": page.token,
        "Truncated": page.truncated,
    }


# -- cryptography ------------------------------------------------------------------------------------------


def encrypt(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    context: dict[str, str] = params.get("EncryptionContext") or {}
    _check_algorithm(params)
    kms = _kms(ctx)
    key = kms.authorize(
        ctx.caller,
        "kms:Encrypt",
        params["KeyId"],
        encryption_context=context,
        context={"kms:EncryptionAlgorithm": SYMMETRIC_DEFAULT},
    )
    _dry_run(params)
    blob = kms.encrypt(key.arn, params["Plaintext"], context)
    return {"CiphertextBlob": blob, "KeyId": key.arn, "EncryptionAlgorithm": SYMMETRIC_DEFAULT}


def decrypt(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    _unsupported_inputs(params, "Recipient")
    blob: bytes | None = params.get("CiphertextBlob")
    if blob is None:
        raise ValidationError(
            "1 validation error detected: Value null at 'ciphertextBlob' failed to satisfy "
            "constraint: Member must not be null"
        )
    context: dict[str, str] = params.get("EncryptionContext") or {}
    _check_algorithm(params)
    kms = _kms(ctx)
    kms.authorize(
        ctx.caller,
        "kms:Decrypt",
        kms.ciphertext_key(blob).arn,
        encryption_context=context,
        context={"kms:EncryptionAlgorithm": SYMMETRIC_DEFAULT},
    )
    _dry_run(params)
    arn, plaintext = kms.decrypt(blob, context, key_id=params.get("KeyId"))
    return {"KeyId": arn, "Plaintext": plaintext, "EncryptionAlgorithm": SYMMETRIC_DEFAULT}


def _data_key_length(params: dict[str, Any]) -> int:
    spec: str | None = params.get("KeySpec")
    number: int | None = params.get("NumberOfBytes")
    if spec is not None and number is None:
        return DATA_KEY_SPECS[spec]
    if number is not None and spec is None:
        return number
    # KMS: "You must specify either the KeySpec or the NumberOfBytes parameter (but not both)".
    raise ValidationError("Please specify either number of bytes or key spec.")


def _generate_data_key(ctx: AwsContext, params: dict[str, Any], action: str) -> tuple[KeyRecord, bytes, bytes]:
    _unsupported_inputs(params, "Recipient")
    length = _data_key_length(params)
    context: dict[str, str] = params.get("EncryptionContext") or {}
    kms = _kms(ctx)
    key = kms.authorize(ctx.caller, action, params["KeyId"], encryption_context=context)
    _dry_run(params)
    plaintext, blob = kms.generate_data_key(key.arn, context=context, number_of_bytes=length)
    return key, plaintext, blob


def generate_data_key(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    key, plaintext, blob = _generate_data_key(ctx, params, "kms:GenerateDataKey")
    return {"CiphertextBlob": blob, "Plaintext": plaintext, "KeyId": key.arn}


def generate_data_key_without_plaintext(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    key, _plaintext, blob = _generate_data_key(ctx, params, "kms:GenerateDataKeyWithoutPlaintext")
    return {"CiphertextBlob": blob, "KeyId": key.arn}


def _signing(ctx: AwsContext, params: dict[str, Any], action: str) -> tuple[KeyService, KeyRecord, str, str]:
    """The key a Sign or Verify call may use, authorized with the algorithm and message type in the context."""
    algorithm, message_type = params["SigningAlgorithm"], params.get("MessageType", RAW)
    kms = _kms(ctx)
    key = kms.authorize(
        ctx.caller,
        action,
        params["KeyId"],
        context={"kms:SigningAlgorithm": algorithm, "kms:MessageType": message_type},
    )
    _dry_run(params)
    return kms, key, algorithm, message_type


def sign(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    kms, key, algorithm, message_type = _signing(ctx, params, "kms:Sign")
    signature = kms.sign(key.arn, params["Message"], message_type=message_type, algorithm=algorithm)
    return {"KeyId": key.arn, "Signature": signature, "SigningAlgorithm": algorithm}


def verify(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    kms, key, algorithm, message_type = _signing(ctx, params, "kms:Verify")
    kms.verify(key.arn, params["Message"], params["Signature"], message_type=message_type, algorithm=algorithm)
    return {"KeyId": key.arn, "SignatureValid": True, "SigningAlgorithm": algorithm}


def get_public_key(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    kms = _kms(ctx)
    key, public_key = kms.get_public_key(kms.authorize(ctx.caller, "kms:GetPublicKey", params["KeyId"]).arn)
    return {
        "KeyId": key.arn,
        "PublicKey": public_key,
        "CustomerMasterKeySpec": key.key_spec,
        "KeySpec": key.key_spec,
        "KeyUsage": key.key_usage,
        **_algorithms(key),
    }


OPERATIONS: dict[str, Operation] = {
    "CreateKey": create_key,
    "DescribeKey": describe_key,
    "ListKeys": list_keys,
    "EnableKey": enable_key,
    "DisableKey": disable_key,
    "ScheduleKeyDeletion": schedule_key_deletion,
    "CancelKeyDeletion": cancel_key_deletion,
    "EnableKeyRotation": enable_key_rotation,
    "DisableKeyRotation": disable_key_rotation,
    "GetKeyRotationStatus": get_key_rotation_status,
    "RotateKeyOnDemand": rotate_key_on_demand,
    "ListKeyRotations": list_key_rotations,
    "GetKeyPolicy": get_key_policy,
    "PutKeyPolicy": put_key_policy,
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListResourceTags": list_resource_tags,
    "CreateAlias": create_alias,
    "UpdateAlias": update_alias,
    "DeleteAlias": delete_alias,
    "ListAliases": list_aliases,
    "Encrypt": encrypt,
    "Decrypt": decrypt,
    "GenerateDataKey": generate_data_key,
    "GenerateDataKeyWithoutPlaintext": generate_data_key_without_plaintext,
    "Sign": sign,
    "Verify": verify,
    "GetPublicKey": get_public_key,
}
