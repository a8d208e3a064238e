"""The ECR API's managed signing operations (PutSigningConfiguration, GetSigningConfiguration,
DeleteSigningConfiguration, DescribeImageSigningStatus), each named after its API operation. Reached through
``ecrd.aws.ecr``, whose helpers they share and whose ``OPERATIONS`` lists them.

The signing configuration belongs to the registry, so its three actions are authorized on "*" as the registry's
other settings are; DescribeImageSigningStatus reads an image and is authorized on its repository.
"""

from __future__ import annotations

from typing import Any

from ecrd.aws.context import AwsContext, Operation
from ecrd.aws.ecr import _one_image, _repository
from ecrd.domain.signing import SigningConfiguration
from ecrd.services.signing import ImageSigningStatus


def _answer(ctx: AwsContext, configuration: SigningConfiguration) -> dict[str, Any]:
    return {"registryId": ctx.account_id, "signingConfiguration": configuration.to_json()}


def put_signing_configuration(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    ctx.authorize("ecr:PutSigningConfiguration", "*")
    configuration = SigningConfiguration.from_json(params["signingConfiguration"])
    stored = ctx.services.signing.put_signing_configuration(configuration)
    return {"signingConfiguration": stored.to_json()}


def get_signing_configuration(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    ctx.authorize("ecr:GetSigningConfiguration", "*")
    return _answer(ctx, ctx.services.signing.get_signing_configuration())


def delete_signing_configuration(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    ctx.authorize("ecr:DeleteSigningConfiguration", "*")
    return _answer(ctx, ctx.services.signing.delete_signing_configuration())


def _status_json(status: ImageSigningStatus) -> dict[str, Any]:
    out: dict[str, Any] = {"status": status.status}
    for member, value in (
        ("signingProfileArn", status.profile_arn),
        ("failureCode", status.failure_code),
        ("failureReason", status.failure_reason),
    ):
        if value is not None:
            out[member] = value
    return out


def describe_image_signing_status(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    repository = _repository(ctx, params, "ecr:DescribeImageSigningStatus")
    image = _one_image(ctx, repository, params["imageId"])
    statuses = ctx.services.signing.image_signing_status(repository, image.digest)
    image_id = {"imageDigest": image.digest}
    if "imageTag" in params["imageId"]:
        image_id["imageTag"] = params["imageId"]["imageTag"]
    return {
        "registryId": ctx.account_id,
        "repositoryName": repository.name,
        "imageId": image_id,
        "signingStatuses": [_status_json(status) for status in statuses],
    }


SIGNING_OPERATIONS: dict[str, Operation] = {
    "PutSigningConfiguration": put_signing_configuration,
    "GetSigningConfiguration": get_signing_configuration,
    "DeleteSigningConfiguration": delete_signing_configuration,
    "DescribeImageSigningStatus": describe_image_signing_status,
}
