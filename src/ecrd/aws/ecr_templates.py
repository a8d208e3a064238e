"""The ECR API's repository creation template operations, each named after its API operation. Reached through
``ecrd.aws.ecr``, whose helpers they share and whose ``OPERATIONS`` lists them.

ECR's user guide ("IAM permissions for creating repository creation templates"): the four actions "must be
granted using an identity-based IAM policy"; the service authorization reference gives them no resource type,
so they are authorized on "*", as the registry's other settings are. Creating or updating a template also needs
the permissions the guide lists with them for what the template carries: ecr:CreateRepository, and
ecr:PutLifecyclePolicy, ecr:SetRepositoryPolicy and iam:PassRole when it has a lifecycle policy, a repository
policy and a custom role — on the repositories the template's prefix covers (the role on its own ARN).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ecrd.aws.context import AwsContext, Operation
from ecrd.aws.ecr import (
    _checked_policy,
    _encryption,
    _exclusions_json,
    _mutability,
    _paging,
    _position,
    _tags_dict,
    _when,
)
from ecrd.domain.arns import repository_arn
from ecrd.domain.creation_templates import ROOT, CreationTemplate, checked_applied_for, normalized_prefix
from ecrd.services.creation_templates import CreationTemplateService

TEMPLATE_PAGES = _paging(100, 1000)

# Request members, each with the template field it sets.
FIELDS = {
    "description": "description",
    "resourceTags": "resource_tags",
    "repositoryPolicy": "repository_policy",
    "lifecyclePolicy": "lifecycle_policy",
    "appliedFor": "applied_for",
    "customRoleArn": "custom_role_arn",
}


def _templates(ctx: AwsContext) -> CreationTemplateService:
    return ctx.services.templates


def _template_json(template: CreationTemplate) -> dict[str, Any]:
    out: dict[str, Any] = {
        "prefix": template.prefix,
        "encryptionConfiguration": {"encryptionType": template.encryption_type},
        "resourceTags": [{"Key": key, "Value": value} for key, value in template.resource_tags],
        "imageTagMutability": template.image_tag_mutability,
        "appliedFor": list(template.applied_for),
        "createdAt": _when(template.created_at),
        "updatedAt": _when(template.updated_at),
    }
    if template.kms_key:
        out["encryptionConfiguration"]["kmsKey"] = template.kms_key
    if template.mutability_exclusions:
        out["imageTagMutabilityExclusionFilters"] = _exclusions_json(template.mutability_exclusions)
    for member, value in (
        ("description", template.description),
        ("repositoryPolicy", template.repository_policy),
        ("lifecyclePolicy", template.lifecycle_policy),
        ("customRoleArn", template.custom_role_arn),
    ):
        if value is not None:
            out[member] = value
    return out


def _answer(ctx: AwsContext, template: CreationTemplate) -> dict[str, Any]:
    return {"registryId": ctx.account_id, "repositoryCreationTemplate": _template_json(template)}


def _request_values(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    """The template fields a Create or Update request sets, parsed and checked as the repository operations
    check them (a policy text as SetRepositoryPolicy does; the service checks the lifecycle policy as
    PutLifecyclePolicy does). Empty texts (the model allows length 0) mean "none"."""
    values: dict[str, Any] = {}
    for member, field in FIELDS.items():
        if member in params:
            values[field] = params[member]
    if "resource_tags" in values:
        values["resource_tags"] = tuple(_tags_dict(values["resource_tags"]).items())
    if "applied_for" in values:
        values["applied_for"] = checked_applied_for(values["applied_for"])
    for field in ("repository_policy", "lifecycle_policy", "custom_role_arn", "description"):
        if field in values and values[field] == "":
            values[field] = None
    if values.get("repository_policy") is not None:
        values["repository_policy"] = _checked_policy(ctx, values["repository_policy"], "repositoryPolicy")
    if "imageTagMutability" in params or "imageTagMutabilityExclusionFilters" in params:
        values["image_tag_mutability"], values["mutability_exclusions"] = _mutability(params)
    if "encryptionConfiguration" in params:
        encryption = _encryption(params)
        values["encryption_type"] = encryption["encryptionType"]
        values["kms_key"] = encryption.get("kmsKey") or None
    return values


def _authorize_contents(ctx: AwsContext, template: CreationTemplate) -> None:
    """The permissions ECR's guide lists for a template's contents, on the repositories its prefix covers."""
    prefix = normalized_prefix(template.prefix)
    covered = repository_arn(ctx.region, ctx.account_id, "*" if prefix == ROOT else f"{prefix}/*")
    ctx.authorize("ecr:CreateRepository", covered)
    if template.lifecycle_policy is not None:
        ctx.authorize("ecr:PutLifecyclePolicy", covered)
    if template.repository_policy is not None:
        ctx.authorize("ecr:SetRepositoryPolicy", covered)
    if template.custom_role_arn is not None and template.custom_role_arn.split(":")[4:5] == [ctx.account_id]:
        # A role of another account is no role the template may name: refused as invalid when it is stored.
        ctx.authorize("iam:PassRole", template.custom_role_arn)


def create_repository_creation_template(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    ctx.authorize("ecr:CreateRepositoryCreationTemplate", "*")
    # appliedFor is required by the model, which the door has checked: the values always hold it.
    template = CreationTemplate(prefix=params["prefix"], **_request_values(ctx, params))
    _authorize_contents(ctx, template)
    return _answer(ctx, _templates(ctx).create_template(template))


def update_repository_creation_template(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    ctx.authorize("ecr:UpdateRepositoryCreationTemplate", "*")
    values = _request_values(ctx, params)

    def change(current: CreationTemplate) -> CreationTemplate:
        updated = dataclasses.replace(current, **values)
        _authorize_contents(ctx, updated)
        return updated

    return _answer(ctx, _templates(ctx).update_template(params["prefix"], change))


def delete_repository_creation_template(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    ctx.authorize("ecr:DeleteRepositoryCreationTemplate", "*")
    return _answer(ctx, _templates(ctx).delete_template(params["prefix"]))


def describe_repository_creation_templates(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    ctx.authorize("ecr:DescribeRepositoryCreationTemplates", "*")
    templates = _templates(ctx)
    prefixes = params.get("prefixes")
    if prefixes:
        # Like DescribeRepositories with repositoryNames: named templates, one page, no token.
        found = templates.describe_templates(prefixes)
        return {"registryId": ctx.account_id, "repositoryCreationTemplates": [_template_json(t) for t in found]}
    after = _position(TEMPLATE_PAGES, params.get("nextToken"), str)
    size = TEMPLATE_PAGES.size(params.get("maxResults"))
    page = TEMPLATE_PAGES.page_of_rows(
        templates.describe_templates(None, after=after, limit=size + 1), size, lambda template: template.prefix
    )
    return {
        "registryId": ctx.account_id,
        "repositoryCreationTemplates": [_template_json(t) for t in page.items],
        "nextToken": page.token,
    }


TEMPLATE_OPERATIONS: dict[str, Operation] = {
    "CreateRepositoryCreationTemplate": create_repository_creation_template,
    "DescribeRepositoryCreationTemplates": describe_repository_creation_templates,
    "UpdateRepositoryCreationTemplate": update_repository_creation_template,
    "DeleteRepositoryCreationTemplate": delete_repository_creation_template,
}
