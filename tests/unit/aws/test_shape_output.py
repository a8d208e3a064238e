"""Python values written as JSON 1.1 by their output shape: timestamps as epoch seconds, blobs as base64, absent
members left out, members the model does not know passed through, at any depth."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from ecrd.aws.models import service_model
from ecrd.aws.shapes import to_json

PUSHED = dt.datetime(2024, 5, 6, 7, 8, 9, 500000, tzinfo=dt.UTC)


def _output(service: str, operation: str) -> Any:
    return service_model(service).operation_model(operation).output_shape


def test_image_details_write_timestamps_as_epoch_seconds_and_drop_absent_members() -> None:
    value = {
        "imageDetails": [
            {
                "repositoryName": "team/app",
                "imageDigest": "sha256:" + "a" * 64,
                "imageTags": ["v1", "latest"],
                "imageSizeInBytes": 1234,
                "imagePushedAt": PUSHED,
                "lastRecordedPullTime": None,
                "imageScanStatus": {"status": "COMPLETE", "description": "done"},
                "imageScanFindingsSummary": {
                    "imageScanCompletedAt": PUSHED,
                    "findingSeverityCounts": {"HIGH": 2, "LOW": 1},
                },
            }
        ],
        "nextToken": None,
    }

    written = to_json(_output("ecr", "DescribeImages"), value)

    assert written == {
        "imageDetails": [
            {
                "repositoryName": "team/app",
                "imageDigest": "sha256:" + "a" * 64,
                "imageTags": ["v1", "latest"],
                "imageSizeInBytes": 1234,
                "imagePushedAt": PUSHED.timestamp(),
                "imageScanStatus": {"status": "COMPLETE", "description": "done"},
                "imageScanFindingsSummary": {
                    "imageScanCompletedAt": PUSHED.timestamp(),
                    "findingSeverityCounts": {"HIGH": 2, "LOW": 1},
                },
            }
        ]
    }


def test_a_timestamp_given_as_a_number_is_written_as_a_float() -> None:
    written = to_json(_output("ecr", "GetAuthorizationToken"), {"authorizationData": [{"expiresAt": 1700000000}]})
    assert written == {"authorizationData": [{"expiresAt": 1700000000.0}]}
    assert isinstance(written["authorizationData"][0]["expiresAt"], float)


def test_blobs_are_written_as_base64() -> None:
    written = to_json(_output("kms", "Encrypt"), {"CiphertextBlob": b"\x00\xffsecret", "KeyId": "k"})
    assert written == {"CiphertextBlob": "AP9zZWNyZXQ=", "KeyId": "k"}


def test_members_the_model_does_not_know_are_passed_through() -> None:
    written = to_json(_output("ecr", "ListImages"), {"imageIds": [], "extra": {"kept": PUSHED.isoformat()}})
    assert written == {"imageIds": [], "extra": {"kept": PUSHED.isoformat()}}


@pytest.mark.parametrize("value", [None, {}])
def test_empty_values_stay_empty(value: dict[str, Any] | None) -> None:
    assert to_json(_output("ecr", "ListImages"), value) == value


def test_without_a_shape_the_value_is_unchanged() -> None:
    assert to_json(None, {"a": [1, None]}) == {"a": [1, None]}


def test_every_output_shape_of_the_served_models_can_be_written() -> None:
    # Recursive or unusual shapes must not stop a writer from being built (IAM and STS included).
    for service in ("ecr", "kms", "iam", "sts"):
        model = service_model(service)
        for name in model.operation_names:
            shape = model.operation_model(name).output_shape
            if shape is not None:
                assert to_json(shape, {}) == {}
