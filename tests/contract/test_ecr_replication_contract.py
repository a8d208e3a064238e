"""The replication operations answer exactly the botocore model's output shapes (checked on the raw JSON), and
their errors are ones the model lists for the operation."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from ecrd.app import Registry
from ecrd.aws import ecr as ecr_operations
from ecrd.aws.ecr_replication import REPLICATION_OPERATIONS
from ecrd.aws.models import service_model
from ecrd.domain.replication import Destination
from tests.contract import test_ecr_contract
from tests.support.clients import put_image_through_api
from tests.support.images import build_image

checked_ecr = test_ecr_contract.checked_ecr
PEER = Destination("eu-west-1", "111122223333")
MISSING = "00000000-0000-4000-8000-000000000000"


def _model_errors(operation: str) -> set[str]:
    return {shape.name for shape in service_model("ecr").operation_model(operation).error_shapes}


def _error(call: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return str(caught.value.response["Error"]["Code"])


def _put(ecr: Any, destinations: list[dict[str, str]]) -> Any:
    return ecr.put_replication_configuration(replicationConfiguration={"rules": [{"destinations": destinations}]})


def test_the_replication_operations_are_in_the_model_and_served() -> None:
    assert set(REPLICATION_OPERATIONS) <= set(service_model("ecr").operation_names)
    assert set(REPLICATION_OPERATIONS) <= set(ecr_operations.OPERATIONS)


def test_responses_of_every_replication_operation_match_the_model(
    checked_ecr: tuple[Any, list[str], set[str]], registry: Registry
) -> None:
    ecr, problems, seen = checked_ecr
    # A peer that is never reached: the status stays IN_PROGRESS, as no job runs here.
    registry.replication.put_peer(PEER, "http://127.0.0.1:1", "AKIAPEERPEERPEERPEER", "peer-secret")
    ecr.describe_registry()
    ecr.put_replication_configuration(
        replicationConfiguration={
            "rules": [
                {
                    "destinations": [{"region": PEER.region, "registryId": PEER.registry_id}],
                    "repositoryFilters": [{"filter": "team", "filterType": "PREFIX_MATCH"}],
                }
            ]
        }
    )
    described = ecr.describe_registry()["replicationConfiguration"]
    assert described["rules"][0]["destinations"] == [{"region": PEER.region, "registryId": PEER.registry_id}]
    ecr.create_repository(repositoryName="team/app")
    put_image_through_api(ecr, "team/app", build_image((512,), seed=7), "v1")
    status = ecr.describe_image_replication_status(repositoryName="team/app", imageId={"imageTag": "v1"})
    assert status["replicationStatuses"] == [
        {"region": PEER.region, "registryId": PEER.registry_id, "status": "IN_PROGRESS"}
    ]
    backfill = ecr.start_replication_backfill(destination=PEER.json())["replicationBackfillId"]
    ecr.list_replication_backfills()
    ecr.list_replication_backfills(maxResults=1)
    ecr.describe_replication_backfill_results(replicationBackfillId=backfill)
    ecr.stop_replication_backfill(replicationBackfillId=backfill)
    registry.jobs.drain()
    ecr.describe_replication_backfill_results(replicationBackfillId=backfill, resultStatusFilter="COMPLETE")
    ecr.put_replication_configuration(replicationConfiguration={"rules": []})
    assert problems == []
    assert seen >= set(REPLICATION_OPERATIONS)


def test_replication_errors_are_the_models(checked_ecr: tuple[Any, list[str], set[str]]) -> None:
    ecr, _, _ = checked_ecr
    source = {"region": "us-east-1", "registryId": "000000000000"}
    unserved = {"region": "ap-south-1", "registryId": "999999999999"}
    errors = {
        "PutReplicationConfiguration": [
            _error(
                lambda: ecr.put_replication_configuration(
                    replicationConfiguration={"rules": [{"destinations": [source]}]}
                )
            ),
            _error(
                lambda: ecr.put_replication_configuration(
                    replicationConfiguration={"rules": [{"destinations": [unserved]}]}
                )
            ),
            _error(
                lambda: ecr.put_replication_configuration(
                    replicationConfiguration={"rules": [{"destinations": [unserved, unserved]}]}
                )
            ),
        ],
        "DescribeImageReplicationStatus": [
            _error(lambda: ecr.describe_image_replication_status(repositoryName="absent", imageId={"imageTag": "x"})),
        ],
        "StartReplicationBackfill": [_error(lambda: ecr.start_replication_backfill(destination=unserved))],
        "StopReplicationBackfill": [_error(lambda: ecr.stop_replication_backfill(replicationBackfillId=MISSING))],
        "DescribeReplicationBackfillResults": [
            _error(lambda: ecr.describe_replication_backfill_results(replicationBackfillId=MISSING))
        ],
        "ListReplicationBackfills": [_error(lambda: ecr.list_replication_backfills(nextToken="forged"))],
    }
    assert errors["PutReplicationConfiguration"] == ["InvalidParameterException"] * 3
    assert errors["DescribeImageReplicationStatus"] == ["RepositoryNotFoundException"]
    for operation, codes in errors.items():
        assert set(codes) <= _model_errors(operation), (operation, codes)
