"""The ECR API's pull-through cache rule operations, each named after its API operation. Reached through
``ecrd.aws.ecr``, whose helpers they share and whose ``OPERATIONS`` lists them.

ECR's service authorization reference gives these actions no resource type: they are authorized on "*", as the
registry's other settings are. A rule with a custom role also needs iam:PassRole on it, as a creation template
with one does.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ecrd.aws.context import AwsContext, Operation
from ecrd.aws.ecr import _paging, _position, _when
from ecrd.domain.creation_templates import ROOT
from ecrd.domain.pull_through import PullThroughRule
from ecrd.services.pull_through_cache import PullThroughCacheService

RULE_PAGES = _paging(100, 1000)


def _rules(ctx: AwsContext) -> PullThroughCacheService:
    return ctx.services.pull_through


def _rule_json(ctx: AwsContext, rule: PullThroughRule, *members: str) -> dict[str, Any]:
    """The members of ``rule`` an output shape has (``members``), those set."""
    values: dict[str, Any] = {
        "ecrRepositoryPrefix": rule.ecr_repository_prefix,
        "upstreamRegistryUrl": rule.upstream_registry_url,
        "createdAt": _when(rule.created_at),
        "updatedAt": _when(rule.updated_at),
        "registryId": ctx.account_id,
        "upstreamRegistry": rule.upstream_registry,
        "upstreamRepositoryPrefix": _answered_upstream_prefix(rule),
        "credentialArn": rule.credential_arn,
        "customRoleArn": rule.custom_role_arn,
    }
    return {member: values[member] for member in members if values[member] is not None}


def _answered_upstream_prefix(rule: PullThroughRule) -> str | None:
    """The upstream prefix as ECR answers it: the implied ``ROOT`` only for an ECR upstream, where the prefix is a
    setting of the rule; for other upstreams only a prefix the rule names (Terraform's provider reads the member
    into a force-new attribute, so an answered default would replace the rule on every plan)."""
    if rule.upstream_repository_prefix == ROOT and rule.upstream_registry != "ecr":
        return None
    return rule.upstream_repository_prefix


CREATED = (
    "ecrRepositoryPrefix",
    "upstreamRegistryUrl",
    "createdAt",
    "registryId",
    "upstreamRegistry",
    "credentialArn",
    "customRoleArn",
    "upstreamRepositoryPrefix",
)
DESCRIBED = (*CREATED, "updatedAt")
UPDATED = (
    "ecrRepositoryPrefix",
    "registryId",
    "updatedAt",
    "credentialArn",
    "customRoleArn",
    "upstreamRepositoryPrefix",
)
DELETED = tuple(member for member in CREATED if member != "upstreamRegistry")
VALIDATED = (
    "ecrRepositoryPrefix",
    "registryId",
    "upstreamRegistryUrl",
    "credentialArn",
    "customRoleArn",
    "upstreamRepositoryPrefix",
)


def _pass_role(ctx: AwsContext, params: dict[str, Any]) -> None:
    if params.get("customRoleArn"):
        ctx.authorize("iam:PassRole", params["customRoleArn"])


def create_pull_through_cache_rule(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    ctx.authorize("ecr:CreatePullThroughCacheRule", "*")
    _pass_role(ctx, params)
    rule = PullThroughRule(
        ecr_repository_prefix=params["ecrRepositoryPrefix"],
        upstream_registry_url=params["upstreamRegistryUrl"],
        upstream_registry=params.get("upstreamRegistry"),
        upstream_repository_prefix=params.get("upstreamRepositoryPrefix") or ROOT,
        credential_arn=params.get("credentialArn") or None,
        custom_role_arn=params.get("customRoleArn") or None,
    )
    return _rule_json(ctx, _rules(ctx).create_rule(rule), *CREATED)


def update_pull_through_cache_rule(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    ctx.authorize("ecr:UpdatePullThroughCacheRule", "*")
    _pass_role(ctx, params)

    def change(current: PullThroughRule) -> PullThroughRule:
        # Members left out keep their values; an empty one removes it.
        credential = params["credentialArn"] or None if "credentialArn" in params else current.credential_arn
        role = params["customRoleArn"] or None if "customRoleArn" in params else current.custom_role_arn
        return dataclasses.replace(current, credential_arn=credential, custom_role_arn=role)

    updated = _rules(ctx).update_rule(params["ecrRepositoryPrefix"], change)
    return _rule_json(ctx, updated, *UPDATED)


def delete_pull_through_cache_rule(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    ctx.authorize("ecr:DeletePullThroughCacheRule", "*")
    return _rule_json(ctx, _rules(ctx).delete_rule(params["ecrRepositoryPrefix"]), *DELETED)


def describe_pull_through_cache_rules(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    ctx.authorize("ecr:DescribePullThroughCacheRules", "*")
    rules = _rules(ctx)
    prefixes = params.get("ecrRepositoryPrefixes")
    if prefixes:
        found = rules.describe_rules(prefixes)
        return {"pullThroughCacheRules": [_rule_json(ctx, rule, *DESCRIBED) for rule in found]}
    after = _position(RULE_PAGES, params.get("nextToken"), str)
    size = RULE_PAGES.size(params.get("maxResults"))
    page = RULE_PAGES.page_of_rows(
        rules.describe_rules(None, after=after, limit=size + 1), size, lambda rule: rule.ecr_repository_prefix
    )
    return {
        "pullThroughCacheRules": [_rule_json(ctx, rule, *DESCRIBED) for rule in page.items],
        "nextToken": page.token,
    }


def validate_pull_through_cache_rule(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    # The service authorization reference lists ecr:ValidatePullThroughCacheRule.
    ctx.authorize("ecr:ValidatePullThroughCacheRule", "*")
    result = _rules(ctx).validate_rule(params["ecrRepositoryPrefix"])
    out = _rule_json(ctx, result.rule, *VALIDATED)
    out["isValid"] = result.is_valid
    if result.failure is not None:
        out["failure"] = result.failure
    return out


PULL_THROUGH_OPERATIONS: dict[str, Operation] = {
    "CreatePullThroughCacheRule": create_pull_through_cache_rule,
    "DescribePullThroughCacheRules": describe_pull_through_cache_rules,
    "UpdatePullThroughCacheRule": update_pull_through_cache_rule,
    "DeletePullThroughCacheRule": delete_pull_through_cache_rule,
    "ValidatePullThroughCacheRule": validate_pull_through_cache_rule,
}
