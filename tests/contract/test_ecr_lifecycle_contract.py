"""The lifecycle operations and pull-time update exclusions answer exactly the botocore model's output shapes
(checked on the raw JSON, before botocore's lenient parser sees it), in every state a response can be in."""

from __future__ import annotations

import json
from typing import Any

from ecrd.app import Registry
from ecrd.aws import ecr as ecr_operations
from ecrd.aws.ecr_lifecycle import LIFECYCLE_OPERATIONS
from ecrd.aws.models import service_model
from tests.contract import test_ecr_contract
from tests.support.oci import config_blob, image_manifest, random_blob

POLICY = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
                "description": "keep the newest release",
                "selection": {
                    "tagStatus": "tagged",
                    "tagPrefixList": ["release-"],
                    "countType": "imageCountMoreThan",
                    "countNumber": 1,
                },
                "action": {"type": "expire"},
            }
        ]
    }
)

# boto3 on the in-process registry, each raw response checked against the model.
checked_ecr = test_ecr_contract.checked_ecr


def test_the_lifecycle_operations_are_in_the_model_and_served() -> None:
    assert set(LIFECYCLE_OPERATIONS) <= set(service_model("ecr").operation_names)
    assert set(LIFECYCLE_OPERATIONS) <= set(ecr_operations.OPERATIONS)


def test_create_repository_takes_no_lifecycle_policy_in_the_model() -> None:
    # Only repository creation templates carry one; PutLifecyclePolicy is the way to set it.
    members = service_model("ecr").operation_model("CreateRepository").input_shape.members
    assert not any("lifecycle" in name.lower() for name in members)


def _put_image(ecr: Any, tag: str) -> None:
    config, layer = config_blob({"tag": tag}), random_blob(100)
    for blob in (config, layer):
        upload = ecr.initiate_layer_upload(repositoryName="contract")["uploadId"]
        ecr.upload_layer_part(
            repositoryName="contract",
            uploadId=upload,
            partFirstByte=0,
            partLastByte=len(blob.data) - 1,
            layerPartBlob=blob.data,
        )
        ecr.complete_layer_upload(repositoryName="contract", uploadId=upload, layerDigests=[blob.digest])
    ecr.put_image(repositoryName="contract", imageManifest=image_manifest(config, [layer]).decode(), imageTag=tag)


def test_responses_of_every_lifecycle_operation_match_the_model(
    checked_ecr: tuple[Any, list[str], set[str]], registry: Registry
) -> None:
    ecr, problems, seen = checked_ecr
    ecr.create_repository(repositoryName="contract")
    for tag in ("release-1", "release-2", "release-3"):
        _put_image(ecr, tag)
    ecr.put_lifecycle_policy(repositoryName="contract", lifecyclePolicyText=POLICY)
    ecr.get_lifecycle_policy(repositoryName="contract")
    ecr.start_lifecycle_policy_preview(repositoryName="contract")
    in_progress = ecr.get_lifecycle_policy_preview(repositoryName="contract")
    registry.jobs.drain()
    first = ecr.get_lifecycle_policy_preview(repositoryName="contract", maxResults=1)
    ecr.get_lifecycle_policy_preview(repositoryName="contract", maxResults=1, nextToken=first["nextToken"])
    ecr.get_lifecycle_policy_preview(repositoryName="contract", imageIds=[{"imageTag": "release-1"}])
    list(registry.lifecycle.run("contract"))
    evaluated = ecr.get_lifecycle_policy(repositoryName="contract")
    ecr.delete_lifecycle_policy(repositoryName="contract")
    arn = "arn:aws:iam::000000000000:role/scanner"
    ecr.register_pull_time_update_exclusion(principalArn=arn)
    ecr.list_pull_time_update_exclusions()
    ecr.deregister_pull_time_update_exclusion(principalArn=arn)

    assert problems == []
    assert seen >= set(LIFECYCLE_OPERATIONS)
    assert in_progress["status"] == "IN_PROGRESS"
    assert first["summary"]["expiringImageTotalCount"] == 2
    assert "lastEvaluatedAt" in evaluated
