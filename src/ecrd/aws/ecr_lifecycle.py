"""The ECR API's lifecycle operations (policies, previews) and pull-time update exclusions, each named after its
API operation. Reached through ``ecrd.aws.ecr``, whose helpers they share and whose ``OPERATIONS`` lists them.

CreateRepository takes no lifecycle policy in the botocore model (only repository creation templates do), so a
policy is set with PutLifecyclePolicy alone.
"""

from __future__ import annotations

from typing import Any

from ecrd.aws.context import AwsContext, Operation
from ecrd.aws.ecr import _paging, _position, _repository, _resolve_image_id, _when
from ecrd.domain.pages import Page
from ecrd.errors import InvalidParameter
from ecrd.services.lifecycle import LifecycleService, PreviewPage, PreviewResult

PREVIEW_PAGES = _paging(100, 100)
EXCLUSION_PAGES = _paging(100, 1000)


def _lifecycle(ctx: AwsContext) -> LifecycleService:
    return ctx.services.lifecycle


def put_lifecycle_policy(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    repository = _repository(ctx, params, "ecr:PutLifecyclePolicy")
    text = _lifecycle(ctx).put_policy(repository, params["lifecyclePolicyText"])
    return {"registryId": ctx.account_id, "repositoryName": repository.name, "lifecyclePolicyText": text}


def _policy_json(ctx: AwsContext, name: str, text: str, last_evaluated_at: float | None) -> dict[str, Any]:
    out: dict[str, Any] = {"registryId": ctx.account_id, "repositoryName": name, "lifecyclePolicyText": text}
    if last_evaluated_at is not None:
        out["lastEvaluatedAt"] = _when(last_evaluated_at)
    return out


def get_lifecycle_policy(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    repository = _repository(ctx, params, "ecr:GetLifecyclePolicy")
    stored = _lifecycle(ctx).get_policy(repository)
    return _policy_json(ctx, repository.name, stored.text, stored.last_evaluated_at)


def delete_lifecycle_policy(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    repository = _repository(ctx, params, "ecr:DeleteLifecyclePolicy")
    stored = _lifecycle(ctx).delete_policy(repository)
    return _policy_json(ctx, repository.name, stored.text, stored.last_evaluated_at)


def start_lifecycle_policy_preview(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    repository = _repository(ctx, params, "ecr:StartLifecyclePolicyPreview")
    text = _lifecycle(ctx).start_preview(repository, params.get("lifecyclePolicyText"))
    return {
        "registryId": ctx.account_id,
        "repositoryName": repository.name,
        "lifecyclePolicyText": text,
        "status": "IN_PROGRESS",
    }


def get_lifecycle_policy_preview(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    repository = _repository(ctx, params, "ecr:GetLifecyclePolicyPreview")
    tag_status = (params.get("filter") or {}).get("tagStatus", "ANY")
    image_ids = params.get("imageIds")
    if image_ids is not None:
        if params.get("nextToken") or params.get("maxResults"):
            raise InvalidParameter("Invalid parameter: nextToken and maxResults cannot be used with imageIds")
        resolved = (_resolve_image_id(ctx, repository, image_id)[0] for image_id in image_ids)
        digests = [found.digest for found in resolved if found is not None]
        page = _lifecycle(ctx).get_preview(repository, tag_status=tag_status, digests=digests)
        results: Page[PreviewResult] = Page(tuple(page.results))
    else:
        after = _position(PREVIEW_PAGES, params.get("nextToken"), str)
        size = PREVIEW_PAGES.size(params.get("maxResults"))
        page = _lifecycle(ctx).get_preview(repository, tag_status=tag_status, after=after, limit=size + 1)
        results = PREVIEW_PAGES.page_of_rows(page.results, size, lambda result: result.digest)
    out: dict[str, Any] = {
        "registryId": ctx.account_id,
        "repositoryName": repository.name,
        "lifecyclePolicyText": page.preview.text,
        "status": page.preview.status,
    }
    if page.preview.status == "COMPLETE":
        out["previewResults"] = [_preview_result_json(result) for result in results.items]
        out["nextToken"] = results.token
        out["summary"] = _summary_json(page)
    return out


def _preview_result_json(result: PreviewResult) -> dict[str, Any]:
    action: dict[str, Any] = {"type": result.action}
    if result.target_storage_class:
        action["targetStorageClass"] = result.target_storage_class
    out: dict[str, Any] = {
        "imageDigest": result.digest,
        "imagePushedAt": _when(result.pushed_at),
        "action": action,
        "appliedRulePriority": result.rule_priority,
        "storageClass": result.storage_class,
    }
    if result.tags:
        out["imageTags"] = list(result.tags)
    return out


def _summary_json(page: PreviewPage) -> dict[str, Any]:
    expiring = sum(count for (action, _), count in page.summary.items() if action == "EXPIRE")
    transitioning = [
        {"targetStorageClass": target, "imageTotalCount": count}
        for (action, target), count in sorted(page.summary.items(), key=lambda item: str(item[0]))
        if action == "TRANSITION" and target is not None
    ]
    return {"expiringImageTotalCount": expiring, "transitioningImageTotalCounts": transitioning}


# -- pull-time update exclusions: registry-level, so authorized on "*" as the registry's other settings are ----


def register_pull_time_update_exclusion(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    ctx.authorize("ecr:RegisterPullTimeUpdateExclusion", "*")
    arn = params["principalArn"]
    created_at = _lifecycle(ctx).register_exclusion(arn)
    return {"principalArn": arn, "createdAt": _when(created_at)}


def deregister_pull_time_update_exclusion(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    ctx.authorize("ecr:DeregisterPullTimeUpdateExclusion", "*")
    arn = params["principalArn"]
    _lifecycle(ctx).deregister_exclusion(arn)
    return {"principalArn": arn}


def list_pull_time_update_exclusions(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    ctx.authorize("ecr:ListPullTimeUpdateExclusions", "*")
    after = _position(EXCLUSION_PAGES, params.get("nextToken"), str)
    size = EXCLUSION_PAGES.size(params.get("maxResults"))
    rows = _lifecycle(ctx).list_exclusions(after=after, limit=size + 1)
    page = EXCLUSION_PAGES.page_of_rows(rows, size, lambda arn: arn)
    return {"pullTimeUpdateExclusions": list(page.items), "nextToken": page.token}


LIFECYCLE_OPERATIONS: dict[str, Operation] = {
    "PutLifecyclePolicy": put_lifecycle_policy,
    "GetLifecyclePolicy": get_lifecycle_policy,
    "DeleteLifecyclePolicy": delete_lifecycle_policy,
    "StartLifecyclePolicyPreview": start_lifecycle_policy_preview,
    "GetLifecyclePolicyPreview": get_lifecycle_policy_preview,
    "RegisterPullTimeUpdateExclusion": register_pull_time_update_exclusion,
    "DeregisterPullTimeUpdateExclusion": deregister_pull_time_update_exclusion,
    "ListPullTimeUpdateExclusions": list_pull_time_update_exclusions,
}
