"""UpdateImageStorageClass and the archive's fields and filters of ListImages and DescribeImages answer exactly the
botocore model's shapes (checked on the raw JSON, before botocore's lenient parser sees it), in every status an
image can be in; its errors are the model's."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from ecrd.app import Registry
from ecrd.aws import ecr as ecr_operations
from ecrd.aws.ecr_archive import ARCHIVE_OPERATIONS
from ecrd.aws.models import service_model
from tests.contract import test_ecr_contract, test_ecr_lifecycle_contract

# boto3 on the in-process registry, each raw response checked against the model.
checked_ecr = test_ecr_contract.checked_ecr


def test_the_archive_operation_is_in_the_model_and_served() -> None:
    assert set(ARCHIVE_OPERATIONS) <= set(service_model("ecr").operation_names)
    assert set(ARCHIVE_OPERATIONS) <= set(ecr_operations.OPERATIONS)


def _put_image(ecr: Any, tag: str) -> str:
    test_ecr_lifecycle_contract._put_image(ecr, tag)
    return str(
        ecr.describe_images(repositoryName="contract", imageIds=[{"imageTag": tag}])["imageDetails"][0]["imageDigest"]
    )


def _error(call: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


def test_every_status_of_an_image_answers_the_model(
    checked_ecr: tuple[Any, list[str], set[str]], registry: Registry
) -> None:
    ecr, problems, seen = checked_ecr
    ecr.create_repository(repositoryName="contract")
    digest = _put_image(ecr, "old")
    _put_image(ecr, "new")

    archived = ecr.update_image_storage_class(
        repositoryName="contract", imageId={"imageTag": "old"}, targetStorageClass="ARCHIVE"
    )
    assert archived["imageStatus"] == "ARCHIVED"
    assert archived["imageId"] == {"imageDigest": digest, "imageTag": "old"}
    # Listings show ACTIVE images unless asked for others (the model: "If not specified, only images with ACTIVE
    # status are returned").
    assert [i["imageTag"] for i in ecr.list_images(repositoryName="contract")["imageIds"]] == ["new"]
    listed = ecr.list_images(repositoryName="contract", filter={"imageStatus": "ARCHIVED"})["imageIds"]
    assert listed == [{"imageDigest": digest, "imageTag": "old"}]
    assert len(ecr.describe_images(repositoryName="contract", filter={"imageStatus": "ANY"})["imageDetails"]) == 2
    detail = ecr.describe_images(repositoryName="contract", imageIds=[{"imageTag": "old"}])["imageDetails"][0]
    assert detail["imageStatus"] == "ARCHIVED" and "lastArchivedAt" in detail and "lastActivatedAt" not in detail
    failures = ecr.batch_get_image(repositoryName="contract", imageIds=[{"imageTag": "old"}])["failures"]
    assert [f["failureCode"] for f in failures] == ["ImageNotFound"]

    restoring = ecr.update_image_storage_class(
        repositoryName="contract", imageId={"imageDigest": digest}, targetStorageClass="STANDARD"
    )
    assert restoring["imageStatus"] == "ACTIVATING"
    again = ecr.update_image_storage_class(
        repositoryName="contract", imageId={"imageDigest": digest}, targetStorageClass="STANDARD"
    )
    assert again["imageStatus"] == "ACTIVATING"
    assert ecr.list_images(repositoryName="contract", filter={"imageStatus": "ACTIVATING"})["imageIds"]
    code, _ = _error(
        lambda: ecr.update_image_storage_class(
            repositoryName="contract", imageId={"imageDigest": digest}, targetStorageClass="ARCHIVE"
        )
    )
    assert code == "ImageStorageClassUpdateNotSupportedException"
    registry.jobs.drain()
    detail = ecr.describe_images(repositoryName="contract", imageIds=[{"imageDigest": digest}])["imageDetails"][0]
    assert detail["imageStatus"] == "ACTIVE" and "lastActivatedAt" in detail and "lastArchivedAt" in detail

    code, _ = _error(
        lambda: ecr.update_image_storage_class(
            repositoryName="contract", imageId={"imageTag": "missing"}, targetStorageClass="ARCHIVE"
        )
    )
    assert code == "ImageNotFoundException"
    code, _ = _error(
        lambda: ecr.update_image_storage_class(
            repositoryName="nothing-here", imageId={"imageTag": "old"}, targetStorageClass="ARCHIVE"
        )
    )
    assert code == "RepositoryNotFoundException"
    op = service_model("ecr").operation_model("UpdateImageStorageClass")
    assert {"ImageStorageClassUpdateNotSupportedException", "ImageNotFoundException"} <= {
        e.name for e in op.error_shapes
    }
    assert problems == []
    assert {"UpdateImageStorageClass", "ListImages", "DescribeImages", "BatchGetImage"} <= seen
