"""The ECR API's replication operations, each named after its API operation. Reached through ``ecrd.aws.ecr``,
whose helpers they share and whose ``OPERATIONS`` lists them.

The service authorization reference: PutReplicationConfiguration acts on the registry ("*", as the other registry
settings), DescribeImageReplicationStatus on the repository. DescribeRegistry (in ``ecrd.aws.ecr``) shows the
configuration.
"""

from __future__ import annotations

from typing import Any

from ecrd.aws.context import AwsContext, Operation
from ecrd.aws.ecr import _one_image, _repository
from ecrd.domain.replication import parse_configuration


def put_replication_configuration(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    ctx.authorize("ecr:PutReplicationConfiguration", "*")
    configuration = parse_configuration(params["replicationConfiguration"])
    ctx.services.replication.put_configuration(configuration)
    return {"replicationConfiguration": configuration.json()}


def describe_image_replication_status(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    repository = _repository(ctx, params, "ecr:DescribeImageReplicationStatus")
    image = _one_image(ctx, repository, params["imageId"])
    states = ctx.services.replication.statuses(repository, image.digest)
    return {
        "repositoryName": repository.name,
        "imageId": {
            "imageDigest": image.digest,
            **({"imageTag": params["imageId"]["imageTag"]} if "imageTag" in params["imageId"] else {}),
        },
        "replicationStatuses": [
            {
                **state.destination.json(),
                "status": state.status,
                **({"failureCode": state.failure_code} if state.failure_code else {}),
            }
            for state in states
        ],
    }


REPLICATION_OPERATIONS: dict[str, Operation] = {
    "PutReplicationConfiguration": put_replication_configuration,
    "DescribeImageReplicationStatus": describe_image_replication_status,
}
