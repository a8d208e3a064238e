"""Every ECR operation ecrd implements exists in the botocore model, and every response it sends matches the
model's output shape exactly (checked on the raw JSON, before botocore's lenient parser sees it)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from ecrd.app import Registry
from ecrd.aws import ecr as ecr_operations
from ecrd.aws.ecr_account import ACCOUNT_OPERATIONS
from ecrd.aws.ecr_archive import ARCHIVE_OPERATIONS
from ecrd.aws.ecr_lifecycle import LIFECYCLE_OPERATIONS
from ecrd.aws.ecr_pull_policy import PULL_POLICY_OPERATIONS
from ecrd.aws.ecr_pull_through import PULL_THROUGH_OPERATIONS
from ecrd.aws.ecr_replication import REPLICATION_OPERATIONS
from ecrd.aws.ecr_signing import SIGNING_OPERATIONS
from ecrd.aws.ecr_templates import TEMPLATE_OPERATIONS
from ecrd.aws.models import service_model
from tests.conftest import ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY
from tests.support.clients import AwsCredentials, aws_client
from tests.support.live_server import live_server
from tests.support.model_check import check_shape
from tests.support.oci import config_blob, digest_of, image_manifest, random_blob


def test_every_implemented_operation_is_in_the_model() -> None:
    names = set(service_model("ecr").operation_names)
    assert set(ecr_operations.OPERATIONS) <= names


def checked(client: Any) -> tuple[Any, list[str], set[str]]:
    """``client`` with each raw response checked against its model: the problems found, the operations seen."""
    problems: list[str] = []
    seen: set[str] = set()

    def check(http_response: Any, parsed: Any, model: Any, **_: Any) -> None:
        seen.add(model.name)
        if http_response.status_code != 200 or model.output_shape is None:
            return
        body = json.loads(http_response.content or b"{}")
        problems.extend(f"{model.name}: {p}" for p in check_shape(model.output_shape, body))

    client.meta.events.register("after-call.ecr", check)
    return client, problems, seen


@pytest.fixture
def checked_ecr(registry: Registry) -> Iterator[tuple[Any, list[str], set[str]]]:
    with live_server(registry) as url:
        yield checked(aws_client("ecr", url, AwsCredentials(ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY)))


def test_responses_of_every_operation_match_the_model(
    checked_ecr: tuple[Any, list[str], set[str]], registry: Registry
) -> None:
    ecr, problems, seen = checked_ecr
    arn = ecr.create_repository(repositoryName="contract", tags=[{"Key": "k", "Value": "v"}])["repository"][
        "repositoryArn"
    ]
    ecr.get_authorization_token()
    ecr.describe_repositories()
    ecr.describe_registry()
    ecr.put_image_tag_mutability(repositoryName="contract", imageTagMutability="MUTABLE")
    ecr.put_image_scanning_configuration(repositoryName="contract", imageScanningConfiguration={"scanOnPush": False})
    policy = json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage"}]}
    )
    ecr.set_repository_policy(repositoryName="contract", policyText=policy)
    ecr.get_repository_policy(repositoryName="contract")
    ecr.delete_repository_policy(repositoryName="contract")
    ecr.put_registry_policy(
        policyText=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                        "Action": "ecr:CreateRepository",
                        "Resource": "*",
                    }
                ],
            }
        )
    )
    ecr.get_registry_policy()
    ecr.delete_registry_policy()
    ecr.tag_resource(resourceArn=arn, tags=[{"Key": "a", "Value": "b"}])
    ecr.untag_resource(resourceArn=arn, tagKeys=["a"])
    ecr.list_tags_for_resource(resourceArn=arn)
    config, layer = config_blob(), random_blob(100)
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
    ecr.batch_check_layer_availability(repositoryName="contract", layerDigests=[layer.digest])
    ecr.get_download_url_for_layer(repositoryName="contract", layerDigest=layer.digest)
    manifest = image_manifest(config, [layer])
    ecr.put_image(repositoryName="contract", imageManifest=manifest.decode(), imageTag="v1")
    ecr.list_images(repositoryName="contract")
    ecr.describe_images(repositoryName="contract")
    ecr.batch_get_image(repositoryName="contract", imageIds=[{"imageTag": "v1"}])
    ecr.list_image_referrers(repositoryName="contract", subjectId={"imageDigest": digest_of(manifest)})
    ecr.put_registry_scanning_configuration(
        scanType="BASIC",
        rules=[
            {"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "contract*", "filterType": "WILDCARD"}]}
        ],
    )
    ecr.get_registry_scanning_configuration()
    ecr.batch_get_repository_scanning_configuration(repositoryNames=["contract", "missing"])
    ecr.start_image_scan(repositoryName="contract", imageId={"imageTag": "v1"})
    registry.jobs.drain()
    ecr.describe_image_scan_findings(repositoryName="contract", imageId={"imageTag": "v1"})
    ecr.describe_images(repositoryName="contract")
    ecr.batch_delete_image(repositoryName="contract", imageIds=[{"imageTag": "v1"}])
    ecr.delete_repository(repositoryName="contract", force=True)
    assert problems == []
    # Lifecycle, archive, account setting, template, pull-through, replication, signing and pull policy operations
    # have contract files of their own (test_ecr_lifecycle_contract.py, test_ecr_archive_contract.py,
    # test_ecr_account_contract.py, test_ecr_templates_contract.py, test_ecr_pull_through_contract.py,
    # test_ecr_replication_contract.py, test_ecr_signing_contract.py, test_ecr_pull_policy_contract.py).
    own_files = set(LIFECYCLE_OPERATIONS) | set(ARCHIVE_OPERATIONS) | set(ACCOUNT_OPERATIONS) | set(TEMPLATE_OPERATIONS)
    own_files |= set(PULL_THROUGH_OPERATIONS) | set(REPLICATION_OPERATIONS)
    own_files |= set(SIGNING_OPERATIONS) | set(PULL_POLICY_OPERATIONS)
    assert seen == set(ecr_operations.OPERATIONS) - own_files
