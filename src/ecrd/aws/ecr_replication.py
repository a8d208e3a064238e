"""The ECR API's replication operations, each named after its API operation. Reached through ``ecrd.aws.ecr``,
whose helpers they share and whose ``OPERATIONS`` lists them.

The service authorization reference: PutReplicationConfiguration and the backfill operations act on the registry
("*", as the other registry settings), DescribeImageReplicationStatus on the repository. DescribeRegistry (in
``ecrd.aws.ecr``) shows the configuration.
"""

from __future__ import annotations

from typing import Any

from ecrd.aws.context import AwsContext, Operation
from ecrd.aws.ecr import _check_registry, _one_image, _paging, _position, _repository, _when
from ecrd.domain.replication import Backfill, Destination, parse_configuration

BACKFILL_PAGES = _paging(50, 50)
RESULT_PAGES = _paging(1000, 1000)


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


def _backfill_json(ctx: AwsContext, backfill: Backfill) -> dict[str, Any]:
    return {
        "registryId": ctx.account_id,
        "replicationBackfillId": backfill.id,
        "destination": backfill.destination.json(),
        "status": backfill.status,
        "startedAt": _when(backfill.started_at),
    }


def _progress(backfill: Backfill, codes: list[str]) -> dict[str, Any]:
    return {
        "totalReplicationCount": backfill.total,
        "completedReplicationCount": backfill.completed,
        "failedReplicationCount": backfill.failed,
        "failureCodes": codes,
    }


def start_replication_backfill(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    _check_registry(ctx, params)
    ctx.authorize("ecr:StartReplicationBackfill", "*")
    destination = Destination(params["destination"]["region"], params["destination"]["registryId"])
    return _backfill_json(ctx, ctx.services.replication.start_backfill(destination))


def stop_replication_backfill(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    _check_registry(ctx, params)
    ctx.authorize("ecr:StopReplicationBackfill", "*")
    return _backfill_json(ctx, ctx.services.replication.stop_backfill(params["replicationBackfillId"]))


def list_replication_backfills(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    _check_registry(ctx, params)
    ctx.authorize("ecr:ListReplicationBackfills", "*")
    after = _position(BACKFILL_PAGES, params.get("nextToken"), float, str)
    size = BACKFILL_PAGES.size(params.get("maxResults"))
    replication = ctx.services.replication
    page = BACKFILL_PAGES.page_of_rows(
        replication.backfills(after=after, limit=size + 1), size, lambda b: [b.started_at, b.id]
    )
    summaries = []
    for backfill in page.items:
        _, codes = replication.backfill(backfill.id)
        summary = {
            "replicationBackfillId": backfill.id,
            "destination": backfill.destination.json(),
            "status": backfill.status,
            "progress": _progress(backfill, codes),
            "startedAt": _when(backfill.started_at),
        }
        if backfill.failure_code:
            summary["failureCode"] = backfill.failure_code
        if backfill.ended_at is not None:
            summary["endedAt"] = _when(backfill.ended_at)
        summaries.append(summary)
    return {"registryId": ctx.account_id, "backfills": summaries, "nextToken": page.token}


def describe_replication_backfill_results(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    _check_registry(ctx, params)
    ctx.authorize("ecr:DescribeReplicationBackfillResults", "*")
    backfill_id = params["replicationBackfillId"]
    replication = ctx.services.replication
    backfill, codes = replication.backfill(backfill_id)
    after = _position(RESULT_PAGES, params.get("nextToken"), int)
    size = RESULT_PAGES.size(params.get("maxResults"))
    found = replication.backfill_results(
        backfill_id, status=params.get("resultStatusFilter"), after=after, limit=size + 1
    )
    page = RESULT_PAGES.page_of_rows(found, size, lambda r: r.number)
    out: dict[str, Any] = {
        **_backfill_json(ctx, backfill),
        "progress": _progress(backfill, codes),
        "results": [
            {
                "repositoryName": r.repository_name,
                "imageId": {"imageDigest": r.digest, **({"imageTag": r.tag} if r.tag else {})},
                "status": r.status,
                **({"failureCode": r.failure_code} if r.failure_code else {}),
            }
            for r in page.items
        ],
        "nextToken": page.token,
    }
    if backfill.failure_code:
        out["failureCode"] = backfill.failure_code
    if backfill.ended_at is not None:
        out["endedAt"] = _when(backfill.ended_at)
    return out


REPLICATION_OPERATIONS: dict[str, Operation] = {
    "PutReplicationConfiguration": put_replication_configuration,
    "DescribeImageReplicationStatus": describe_image_replication_status,
    "StartReplicationBackfill": start_replication_backfill,
    "StopReplicationBackfill": stop_replication_backfill,
    "ListReplicationBackfills": list_replication_backfills,
    "DescribeReplicationBackfillResults": describe_replication_backfill_results,
}
