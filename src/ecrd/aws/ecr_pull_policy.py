"""ecrd's image pull policy operations on the ECR door (PutImagePullPolicy, GetImagePullPolicy,
DeleteImagePullPolicy; modelled in ``ecrd.aws.extensions``), each named after its operation. Reached through
``ecrd.aws.ecr``, whose helpers they share and whose ``OPERATIONS`` lists them.

Each names a repository (``repositoryName``) or a repository creation template (``templatePrefix``), whose
repositories start with its policy. ECR has no such operations, so their IAM actions are ecrd's own
(``ecrd:PutImagePullPolicy`` …), authorized on the repository as ECR's repository settings are; on a template,
on the repositories its prefix covers, with ecr:UpdateRepositoryCreationTemplate (or
ecr:DescribeRepositoryCreationTemplates to read it) on "*" as ECR's template operations are (decision 0030).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ecrd.aws.context import AwsContext, Operation
from ecrd.aws.ecr import _check_registry, _repository
from ecrd.domain.arns import repository_arn
from ecrd.domain.creation_templates import ROOT, normalized_prefix
from ecrd.domain.pull_policy import PullPolicy
from ecrd.domain.records import Repository
from ecrd.errors import InvalidParameter


def _template_prefix(ctx: AwsContext, params: dict[str, Any], action: str, template_action: str) -> str | None:
    """The template prefix the request names, after authorizing it; None when it names a repository."""
    prefix = params.get("templatePrefix")
    if (prefix is None) == (params.get("repositoryName") is None):
        raise InvalidParameter(
            "Invalid parameter: name exactly one of 'repositoryName' (a repository) and 'templatePrefix' "
            "(a repository creation template)"
        )
    if prefix is None:
        return None
    _check_registry(ctx, params)
    ctx.authorize(template_action, "*")
    covered = normalized_prefix(prefix)
    ctx.authorize(action, repository_arn(ctx.region, ctx.account_id, "*" if covered == ROOT else f"{covered}/*"))
    return str(prefix)


def _answer(ctx: AwsContext, params: dict[str, Any], policy: PullPolicy) -> dict[str, Any]:
    target = {k: params[k] for k in ("repositoryName", "templatePrefix") if params.get(k) is not None}
    return {"registryId": ctx.account_id, **target, "pullPolicy": policy.to_json()}


def _on_target(
    ctx: AwsContext,
    params: dict[str, Any],
    action: str,
    template_action: str,
    on_template: Callable[[str], PullPolicy],
    on_repository: Callable[[Repository], PullPolicy],
) -> dict[str, Any]:
    """Authorize ``action`` on the repository or template the request names, apply the matching call, answer."""
    prefix = _template_prefix(ctx, params, action, template_action)
    policy = on_template(prefix) if prefix is not None else on_repository(_repository(ctx, params, action))
    return _answer(ctx, params, policy)


def put_image_pull_policy(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    policy = PullPolicy.from_json(params["pullPolicy"])
    service = ctx.services.pull_policy
    return _on_target(
        ctx,
        params,
        "ecrd:PutImagePullPolicy",
        "ecr:UpdateRepositoryCreationTemplate",
        lambda prefix: service.put_template_pull_policy(prefix, policy),
        lambda repository: service.put_image_pull_policy(repository, policy),
    )


def get_image_pull_policy(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    service = ctx.services.pull_policy
    return _on_target(
        ctx,
        params,
        "ecrd:GetImagePullPolicy",
        "ecr:DescribeRepositoryCreationTemplates",
        service.get_template_pull_policy,
        service.get_image_pull_policy,
    )


def delete_image_pull_policy(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    service = ctx.services.pull_policy
    return _on_target(
        ctx,
        params,
        "ecrd:DeleteImagePullPolicy",
        "ecr:UpdateRepositoryCreationTemplate",
        service.delete_template_pull_policy,
        service.delete_image_pull_policy,
    )


PULL_POLICY_OPERATIONS: dict[str, Operation] = {
    "PutImagePullPolicy": put_image_pull_policy,
    "GetImagePullPolicy": get_image_pull_policy,
    "DeleteImagePullPolicy": delete_image_pull_policy,
}
