"""The Secrets Manager API operations (JSON 1.1, target prefix ``secretsmanager``), each named after its API
operation, each authorizing through the secrets service and calling it; responses carry exactly the members of
the botocore ``secretsmanager`` model. Values pass through here only on their way in and out: they are never
put in the request record, an error message or a log line."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ecrd.aws.context import AwsContext, Operation
from ecrd.domain.secrets import SecretFilter, labels_by_version, value_of
from ecrd.errors import InvalidParameter, SecretInvalidRequest
from ecrd.services.access import request_tag_context
from ecrd.services.secrets_manager import SecretRecord, SecretSettings, SecretsManagerService, VersionWritten


def _secrets(ctx: AwsContext) -> SecretsManagerService:
    return ctx.services.secrets_manager


def _when(epoch: float | None) -> dt.datetime | None:
    return None if epoch is None else dt.datetime.fromtimestamp(epoch, tz=dt.UTC)


def _tags(raw: list[dict[str, str]] | None) -> list[tuple[str, str]]:
    tags: list[tuple[str, str]] = []
    for tag in raw or []:
        if "Key" not in tag:
            raise InvalidParameter("Invalid tag: every tag needs a Key.")
        tags.append((tag["Key"], tag.get("Value", "")))
    return tags


def _tag_list(record: SecretRecord) -> list[dict[str, str]] | None:
    return [{"Key": key, "Value": value} for key, value in record.tags] or None


def _no_replication(params: dict[str, Any]) -> None:
    if params.get("AddReplicaRegions"):
        raise SecretInvalidRequest("ecrd does not replicate secrets: each region's secrets are its own.")


def _authorize(
    ctx: AwsContext, action: str, params: dict[str, Any], context: dict[str, object] | None = None
) -> SecretRecord:
    return _secrets(ctx).authorize(ctx.caller, f"secretsmanager:{action}", params["SecretId"], context)


def _condition_keys(params: dict[str, Any], *members: str) -> dict[str, object]:
    """The request's own condition keys: Secrets Manager names each after its member (secretsmanager:KmsKeyId…)."""
    return {f"secretsmanager:{member}": params[member] for member in members if params.get(member) is not None}


def _settings(params: dict[str, Any]) -> SecretSettings:
    return SecretSettings(params.get("Description"), params.get("KmsKeyId"), params.get("Type"))


def _identity(record: SecretRecord) -> dict[str, Any]:
    return {"ARN": record.arn, "Name": record.name}


def _versions_to_stages(record: SecretRecord) -> dict[str, list[str]] | None:
    return labels_by_version(record.stages) or None


def _description(record: SecretRecord) -> dict[str, Any]:
    row = record.row
    return {
        **_identity(record),
        "Type": row.secret_type,
        "Description": row.description,
        "KmsKeyId": row.kms_key_id,
        "RotationEnabled": False,
        "LastChangedDate": _when(row.last_changed_at),
        "LastAccessedDate": _when(row.last_accessed_at),
        "DeletedDate": _when(row.deleted_at),
        "Tags": _tag_list(record),
        "CreatedDate": _when(row.created_at),
    }


# -- secrets -----------------------------------------------------------------------------------------------


def create_secret(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    _no_replication(params)
    name: str = params["Name"]
    secrets = _secrets(ctx)
    arn = secrets.new_arn(name)
    value = value_of(params.get("SecretString"), params.get("SecretBinary"), required=False)
    tags = _tags(params.get("Tags"))
    context = _condition_keys(params, "Name", "Description", "KmsKeyId")
    secrets.authorize_create(ctx.caller, arn, tags=tags, context=context)
    created = secrets.create_secret(
        ctx.caller,
        arn,
        name,
        value=value,
        token=params.get("ClientRequestToken"),
        settings=_settings(params),
        tags=tags,
    )
    if isinstance(created, VersionWritten):
        return {"ARN": created.secret.arn, "Name": created.secret.name, "VersionId": created.version_id}
    return {"ARN": created.arn, "Name": created.name}


def describe_secret(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    record = _authorize(ctx, "DescribeSecret", params)
    return {**_description(record), "VersionIdsToStages": _versions_to_stages(record)}


def list_secrets(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    filters: list[SecretFilter] = []
    for raw in params.get("Filters") or []:
        if "Key" not in raw or not raw.get("Values"):
            raise InvalidParameter("Invalid filter: every filter needs a Key and at least one value.")
        filters.append(SecretFilter(raw["Key"], tuple(raw["Values"])))
    secrets = _secrets(ctx)
    secrets.authorize_account(ctx.caller, "secretsmanager:ListSecrets")
    page = secrets.list_secrets(
        filters=filters,
        include_deleted=bool(params.get("IncludePlannedDeletion")),
        sort_by=params.get("SortBy"),
        descending=params.get("SortOrder") == "desc",
        limit=params.get("MaxResults"),
        token=params.get("NextToken"),
    )
    return {
        "SecretList": [
            {**_description(record), "SecretVersionsToStages": _versions_to_stages(record)} for record in page.items
        ],
        "NextToken": page.token,
    }


def update_secret(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    value = value_of(params.get("SecretString"), params.get("SecretBinary"), required=False)
    record = _authorize(ctx, "UpdateSecret", params, _condition_keys(params, "Description", "KmsKeyId"))
    written = _secrets(ctx).update_secret(
        ctx.caller,
        record,
        value=value,
        token=params.get("ClientRequestToken"),
        settings=_settings(params),
    )
    return {**_identity(record), "VersionId": written.version_id if written is not None else None}


def delete_secret(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    window, force = params.get("RecoveryWindowInDays"), params.get("ForceDeleteWithoutRecovery")
    context = _condition_keys(params, "RecoveryWindowInDays", "ForceDeleteWithoutRecovery")
    record = _authorize(ctx, "DeleteSecret", params, context)
    deletion_date = _secrets(ctx).delete_secret(record, window=window, force=force)
    return {**_identity(record), "DeletionDate": _when(deletion_date)}


def restore_secret(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    record = _authorize(ctx, "RestoreSecret", params)
    _secrets(ctx).restore_secret(record)
    return _identity(record)


# -- values and versions -----------------------------------------------------------------------------------


def get_secret_value(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    version_id, stage = params.get("VersionId"), params.get("VersionStage")
    record = _authorize(ctx, "GetSecretValue", params, _condition_keys(params, "VersionId", "VersionStage"))
    read = _secrets(ctx).get_secret_value(ctx.caller, record, version_id=version_id, stage=stage)
    return {
        **_identity(record),
        "VersionId": read.version.version_id,
        "SecretString": read.value.string,
        "SecretBinary": read.value.binary,
        "VersionStages": list(read.stages) or None,
        "CreatedDate": _when(read.version.created_at),
    }


def put_secret_value(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    if params.get("RotationToken"):
        raise SecretInvalidRequest("ecrd does not rotate secrets: RotationToken is not accepted.")
    value = value_of(params.get("SecretString"), params.get("SecretBinary"), required=True)
    assert value is not None  # required=True
    record = _authorize(ctx, "PutSecretValue", params)
    written = _secrets(ctx).put_secret_value(
        ctx.caller, record, value, token=params.get("ClientRequestToken"), stages=params.get("VersionStages")
    )
    return {**_identity(record), "VersionId": written.version_id, "VersionStages": list(written.stages) or None}


def update_secret_version_stage(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    stage: str = params["VersionStage"]
    record = _authorize(ctx, "UpdateSecretVersionStage", params, _condition_keys(params, "VersionStage"))
    _secrets(ctx).update_secret_version_stage(
        record, stage, remove_from=params.get("RemoveFromVersionId"), move_to=params.get("MoveToVersionId")
    )
    return _identity(record)


def list_secret_version_ids(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    record = _authorize(ctx, "ListSecretVersionIds", params)
    page = _secrets(ctx).list_secret_version_ids(
        record,
        include_deprecated=bool(params.get("IncludeDeprecated")),
        limit=params.get("MaxResults"),
        token=params.get("NextToken"),
    )
    versions = [
        {
            "VersionId": listing.version.version_id,
            "VersionStages": list(listing.stages) or None,
            "LastAccessedDate": _when(listing.version.last_accessed_at),
            "CreatedDate": _when(listing.version.created_at),
        }
        for listing in page.items
    ]
    return {**_identity(record), "Versions": versions, "NextToken": page.token}


# -- tags and resource policies ----------------------------------------------------------------------------


def tag_resource(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    tags = _tags(params["Tags"])
    record = _authorize(ctx, "TagResource", params, request_tag_context(tags))
    _secrets(ctx).tag_resource(record, tags)
    return {}


def untag_resource(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    keys: list[str] = params["TagKeys"]
    record = _authorize(ctx, "UntagResource", params, {"aws:TagKeys": keys})
    _secrets(ctx).untag_resource(record, keys)
    return {}


def put_resource_policy(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    block = bool(params.get("BlockPublicPolicy", False))
    record = _authorize(ctx, "PutResourcePolicy", params, _condition_keys(params, "BlockPublicPolicy"))
    _secrets(ctx).put_resource_policy(record, params["ResourcePolicy"], block_public=block)
    return _identity(record)


def get_resource_policy(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    record = _authorize(ctx, "GetResourcePolicy", params)
    return {**_identity(record), "ResourcePolicy": record.row.policy}


def delete_resource_policy(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    record = _authorize(ctx, "DeleteResourcePolicy", params)
    _secrets(ctx).delete_resource_policy(record)
    return _identity(record)


OPERATIONS: dict[str, Operation] = {
    "CreateSecret": create_secret,
    "DescribeSecret": describe_secret,
    "ListSecrets": list_secrets,
    "UpdateSecret": update_secret,
    "DeleteSecret": delete_secret,
    "RestoreSecret": restore_secret,
    "GetSecretValue": get_secret_value,
    "PutSecretValue": put_secret_value,
    "UpdateSecretVersionStage": update_secret_version_stage,
    "ListSecretVersionIds": list_secret_version_ids,
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "PutResourcePolicy": put_resource_policy,
    "GetResourcePolicy": get_resource_policy,
    "DeleteResourcePolicy": delete_resource_policy,
}
