"""The ECR API's archive operation, UpdateImageStorageClass, named after it. Reached through ``ecrd.aws.ecr``,
whose helpers it shares and whose ``OPERATIONS`` lists it.
"""

from __future__ import annotations

from typing import Any

from ecrd.aws.context import AwsContext, Operation
from ecrd.aws.ecr import _one_image, _repository


def update_image_storage_class(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    repository = _repository(ctx, params, "ecr:UpdateImageStorageClass")
    image_id: dict[str, str] = params["imageId"]
    image = _one_image(ctx, repository, image_id)
    status = ctx.services.archive.update_storage_class(repository, image.digest, params["targetStorageClass"])
    return {
        "registryId": ctx.account_id,
        "repositoryName": repository.name,
        "imageId": {
            "imageDigest": image.digest,
            **({"imageTag": image_id["imageTag"]} if "imageTag" in image_id else {}),
        },
        "imageStatus": status,
    }


ARCHIVE_OPERATIONS: dict[str, Operation] = {
    "UpdateImageStorageClass": update_image_storage_class,
}
