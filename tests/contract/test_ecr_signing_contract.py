"""The managed signing operations answer exactly the botocore model's output shapes (checked on the raw JSON),
with every status member a signing can report, and their errors are ones the model lists for the operation."""

from __future__ import annotations

from typing import Any

from ecrd.app import Registry
from ecrd.aws import ecr as ecr_operations
from ecrd.aws.ecr_signing import SIGNING_OPERATIONS
from ecrd.aws.models import service_model
from tests.contract import test_ecr_contract, test_ecr_templates_contract
from tests.support.clients import put_image_through_api
from tests.support.images import build_image

checked_ecr = test_ecr_contract.checked_ecr


def test_the_signing_operations_are_in_the_model_and_served() -> None:
    assert set(SIGNING_OPERATIONS) <= set(service_model("ecr").operation_names)
    assert set(SIGNING_OPERATIONS) <= set(ecr_operations.OPERATIONS)


# The operation's model errors and a call's error code, as the template contract reads them.
_model_errors = test_ecr_templates_contract._model_errors
_error = test_ecr_templates_contract._error


def test_responses_of_every_signing_operation_match_the_model(
    checked_ecr: tuple[Any, list[str], set[str]], registry: Registry
) -> None:
    ecr, problems, seen = checked_ecr
    signing = registry.aws.services.signing
    kept = signing.create_signing_profile("kept").arn
    dropped = signing.create_signing_profile("dropped").arn
    ecr.put_signing_configuration(
        signingConfiguration={
            "rules": [
                {
                    "signingProfileArn": kept,
                    "repositoryFilters": [{"filter": "signed*", "filterType": "WILDCARD_MATCH"}],
                },
                {"signingProfileArn": dropped},
            ]
        }
    )
    ecr.get_signing_configuration()
    ecr.create_repository(repositoryName="signed")
    pushed = put_image_through_api(ecr, "signed", build_image([64], seed=1), "v1")
    ecr.describe_image_signing_status(repositoryName="signed", imageId={"imageTag": "v1"})  # IN_PROGRESS
    with registry.store.write() as conn:
        # The second profile is gone by the time its job runs: that signing FAILS.
        conn.exec_driver_sql("DELETE FROM signing_profiles WHERE name = 'dropped'")
    registry.jobs.drain()
    statuses = ecr.describe_image_signing_status(repositoryName="signed", imageId=pushed["imageId"])["signingStatuses"]
    assert {(s["signingProfileArn"], s["status"]) for s in statuses} == {(kept, "COMPLETE"), (dropped, "FAILED")}
    ecr.delete_signing_configuration()
    assert problems == []
    assert set(SIGNING_OPERATIONS) <= seen


def test_signing_errors_are_the_models(checked_ecr: tuple[Any, list[str], set[str]]) -> None:
    ecr, _, _ = checked_ecr
    ecr.create_repository(repositoryName="plain")
    unknown_profile = "arn:aws:signer:us-east-1:123456789012:/signing-profiles/absent"
    errors = {
        "GetSigningConfiguration": [_error(ecr.get_signing_configuration)],
        "DeleteSigningConfiguration": [_error(ecr.delete_signing_configuration)],
        "PutSigningConfiguration": [
            _error(
                lambda: ecr.put_signing_configuration(
                    signingConfiguration={"rules": [{"signingProfileArn": unknown_profile}]}
                )
            )
        ],
        "DescribeImageSigningStatus": [
            _error(lambda: ecr.describe_image_signing_status(repositoryName="absent", imageId={"imageTag": "x"})),
            _error(lambda: ecr.describe_image_signing_status(repositoryName="plain", imageId={"imageTag": "x"})),
        ],
    }
    assert errors["GetSigningConfiguration"] == ["SigningConfigurationNotFoundException"]
    for operation, codes in errors.items():
        assert set(codes) <= _model_errors(operation), (operation, codes)
