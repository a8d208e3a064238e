"""The repository creation template operations answer exactly the botocore model's output shapes (checked on the
raw JSON, before botocore's lenient parser sees it), with every member a template can carry and with none of the
optional ones; their errors are ones the model lists for the operation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ecrd.aws import ecr as ecr_operations
from ecrd.aws.ecr_templates import TEMPLATE_OPERATIONS
from ecrd.aws.models import service_model
from tests.contract import test_ecr_contract, test_ecr_lifecycle_contract

# boto3 on the in-process registry, each raw response checked against the model.
checked_ecr = test_ecr_contract.checked_ecr


def test_the_template_operations_are_in_the_model_and_served() -> None:
    assert set(TEMPLATE_OPERATIONS) <= set(service_model("ecr").operation_names)
    assert set(TEMPLATE_OPERATIONS) <= set(ecr_operations.OPERATIONS)


def _model_errors(operation: str) -> set[str]:
    return {shape.name for shape in service_model("ecr").operation_model(operation).error_shapes}


def _error(call: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return str(caught.value.response["Error"]["Code"])


def test_responses_of_every_template_operation_match_the_model(checked_ecr: tuple[Any, list[str], set[str]]) -> None:
    ecr, problems, seen = checked_ecr
    policy = json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage"}]}
    )
    ecr.create_repository_creation_template(prefix="bare", appliedFor=["REPLICATION"])
    ecr.create_repository_creation_template(
        prefix="full",
        description="every member",
        encryptionConfiguration={"encryptionType": "KMS"},
        resourceTags=[{"Key": "k", "Value": "v"}],
        imageTagMutability="MUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "release-*"}],
        repositoryPolicy=policy,
        lifecyclePolicy=test_ecr_lifecycle_contract.POLICY,
        appliedFor=["REPLICATION", "PULL_THROUGH_CACHE", "CREATE_ON_PUSH"],
    )
    ecr.describe_repository_creation_templates()
    ecr.describe_repository_creation_templates(maxResults=1)
    ecr.describe_repository_creation_templates(prefixes=["full", "absent"])
    ecr.update_repository_creation_template(prefix="bare", imageTagMutability="IMMUTABLE")
    ecr.delete_repository_creation_template(prefix="full")
    ecr.delete_repository_creation_template(prefix="bare")
    assert problems == []
    assert seen == set(TEMPLATE_OPERATIONS)


def test_template_errors_are_the_models(checked_ecr: tuple[Any, list[str], set[str]]) -> None:
    ecr, _, _ = checked_ecr
    ecr.create_repository_creation_template(prefix="one", appliedFor=["REPLICATION"])
    errors = {
        "CreateRepositoryCreationTemplate": [
            _error(lambda: ecr.create_repository_creation_template(prefix="one", appliedFor=["REPLICATION"])),
            _error(
                lambda: ecr.create_repository_creation_template(
                    prefix="two", appliedFor=["REPLICATION"], lifecyclePolicy="{}"
                )
            ),
        ],
        "UpdateRepositoryCreationTemplate": [
            _error(lambda: ecr.update_repository_creation_template(prefix="absent", description="x"))
        ],
        "DeleteRepositoryCreationTemplate": [_error(lambda: ecr.delete_repository_creation_template(prefix="absent"))],
        "DescribeRepositoryCreationTemplates": [
            _error(lambda: ecr.describe_repository_creation_templates(nextToken="forged"))
        ],
    }
    for operation, codes in errors.items():
        assert set(codes) <= _model_errors(operation), (operation, codes)
