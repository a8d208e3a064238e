"""Repository creation templates through boto3 against a real socket, on both metadata back ends: the four
operations, and a push to a missing repository creating it from the CREATE_ON_PUSH template that covers it."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ecrd.app import Registry, build_registry
from ecrd.config import Settings
from ecrd.domain.creation_templates import CreationTemplate
from ecrd.services.creation_templates import CreationTemplateService
from tests.conftest import ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY
from tests.integration.test_ecr_api import client_for, error_code
from tests.support.clients import Credentials, OciHttp, registry_session
from tests.support.oci import OCI_MANIFEST, config_blob, image_manifest, index_manifest, random_blob

ACCOUNT = "000000000000"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
REPOSITORY_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "pull", "Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage"}],
    }
)
LIFECYCLE_POLICY = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 7,
                },
                "action": {"type": "expire"},
            }
        ]
    }
)
# A template's settings, each of them given.
EVERY_SETTING: dict[str, Any] = {
    "encryptionConfiguration": {"encryptionType": "KMS"},
    "resourceTags": [{"Key": "team", "Value": "blue"}],
    "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION",
    "imageTagMutabilityExclusionFilters": [{"filterType": "WILDCARD", "filter": "latest"}],
    "repositoryPolicy": REPOSITORY_POLICY,
    "lifecyclePolicy": LIFECYCLE_POLICY,
}
PUSH_ACTIONS = [
    "ecr:GetAuthorizationToken",
    "ecr:BatchCheckLayerAvailability",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
]


def _allow(*actions: str, resource: str = "*") -> str:
    return json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": resource}]}
    )


def _pusher(endpoint: str, key: tuple[str, str]) -> Iterator[OciHttp]:
    """The OCI client of a ``docker login`` with ``key``."""
    token = client_for(endpoint, "ecr", *key).get_authorization_token()["authorizationData"][0]["authorizationToken"]
    user, _, password = base64.b64decode(token).decode().partition(":")
    with registry_session(Credentials(user, password)) as session:
        yield OciHttp(session, endpoint)


def _push(oci: OciHttp, name: str, tag: str) -> Any:
    """A docker-style push: blobs (POST, PUT), then the manifest; the manifest PUT's response."""
    config, layer = config_blob(), random_blob(300)
    for blob in (config, layer):
        started = oci.start_upload(name)
        if started.status_code != 202:
            return started
        finished = oci.finish_upload(started.headers["Location"], blob.digest, blob.data)
        assert finished.status_code == 201, finished.text
    return oci.put_manifest(name, tag, image_manifest(config, [layer]), OCI_MANIFEST)


@pytest.fixture
def root_oci(endpoint: str) -> Iterator[OciHttp]:
    yield from _pusher(endpoint, (ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY))


def _user(endpoint: str, name: str, *policies: str) -> tuple[str, str]:
    iam = client_for(endpoint, "iam")
    iam.create_user(UserName=name)
    for index, policy in enumerate(policies):
        iam.put_user_policy(UserName=name, PolicyName=f"p{index}", PolicyDocument=policy)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


# -- the operations ---------------------------------------------------------------------------------------------


def test_a_template_is_created_described_updated_and_deleted(ecr: Any) -> None:
    # Given a template with every setting
    created = ecr.create_repository_creation_template(
        prefix="prod",
        description="production images",
        **EVERY_SETTING,
        appliedFor=["CREATE_ON_PUSH", "PULL_THROUGH_CACHE"],
    )
    # Then it is answered as ECR shapes it
    assert created["registryId"] == ACCOUNT
    template = created["repositoryCreationTemplate"]
    assert template["prefix"] == "prod"
    assert template["description"] == "production images"
    assert template["encryptionConfiguration"] == {"encryptionType": "KMS"}
    assert template["resourceTags"] == [{"Key": "team", "Value": "blue"}]
    assert template["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
    assert template["imageTagMutabilityExclusionFilters"] == [{"filterType": "WILDCARD", "filter": "latest"}]
    assert template["repositoryPolicy"] == REPOSITORY_POLICY
    assert template["lifecyclePolicy"] == LIFECYCLE_POLICY
    assert template["appliedFor"] == ["CREATE_ON_PUSH", "PULL_THROUGH_CACHE"]
    assert isinstance(template["createdAt"], dt.datetime) and template["createdAt"] == template["updatedAt"]

    # When it is described by prefix (with or without the assumed trailing slash) and in a listing
    assert ecr.describe_repository_creation_templates(prefixes=["prod/"])["repositoryCreationTemplates"] == [template]
    listed = ecr.describe_repository_creation_templates()
    assert listed["registryId"] == ACCOUNT and listed["repositoryCreationTemplates"] == [template]

    # When it is updated, members left out keep their values
    updated = ecr.update_repository_creation_template(
        prefix="prod", description="changed", appliedFor=["REPLICATION"], lifecyclePolicy=""
    )["repositoryCreationTemplate"]
    assert updated["description"] == "changed" and updated["appliedFor"] == ["REPLICATION"]
    assert "lifecyclePolicy" not in updated
    assert updated["repositoryPolicy"] == REPOSITORY_POLICY and updated["createdAt"] == template["createdAt"]
    assert updated["updatedAt"] >= template["updatedAt"]

    # When it is deleted, it is answered once more and then gone
    deleted = ecr.delete_repository_creation_template(prefix="prod")
    assert deleted["repositoryCreationTemplate"]["description"] == "changed"
    assert ecr.describe_repository_creation_templates()["repositoryCreationTemplates"] == []
    assert ecr.describe_repository_creation_templates(prefixes=["prod"])["repositoryCreationTemplates"] == []
    for call in (
        lambda: ecr.delete_repository_creation_template(prefix="prod"),
        lambda: ecr.update_repository_creation_template(prefix="prod", description="x"),
    ):
        with pytest.raises(ClientError) as missing:
            call()
        assert error_code(missing) == "TemplateNotFoundException"


def test_a_second_template_of_a_prefix_already_exists(ecr: Any) -> None:
    ecr.create_repository_creation_template(prefix="team/a", appliedFor=["CREATE_ON_PUSH"])
    with pytest.raises(ClientError) as exists:
        ecr.create_repository_creation_template(prefix="team/a/", appliedFor=["REPLICATION"])
    assert error_code(exists) == "TemplateAlreadyExistsException"


def test_templates_are_listed_in_pages(ecr: Any) -> None:
    for prefix in ("a", "b", "c", "ROOT"):
        ecr.create_repository_creation_template(prefix=prefix, appliedFor=["REPLICATION"])
    pages = list(ecr.get_paginator("describe_repository_creation_templates").paginate(PaginationConfig={"PageSize": 3}))
    assert len(pages) == 2
    assert [t["prefix"] for p in pages for t in p["repositoryCreationTemplates"]] == ["ROOT", "a", "b", "c"]
    with pytest.raises(ClientError) as bad:
        ecr.describe_repository_creation_templates(nextToken="not-a-token")
    assert error_code(bad) == "InvalidParameterException"


INVALID: dict[str, dict[str, Any]] = {
    "policy": {"repositoryPolicy": "{not json"},
    "lifecycle": {"lifecyclePolicy": json.dumps({"rules": []})},
    "exclusions": {"imageTagMutability": "IMMUTABLE_WITH_EXCLUSION"},
    "kms-key": {
        "encryptionConfiguration": {"encryptionType": "AES256", "kmsKey": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1"}
    },
    "absent-kms-key": {
        "encryptionConfiguration": {"encryptionType": "KMS", "kmsKey": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1"}
    },
    "role-account": {"customRoleArn": "arn:aws:iam::111122223333:role/elsewhere"},
    "role-absent": {"customRoleArn": f"arn:aws:iam::{ACCOUNT}:role/absent"},
    "tags": {"resourceTags": [{"Key": "aws:reserved", "Value": "x"}]},
    "applied-for": {"appliedFor": []},
    "prefix": {"prefix": "Upper/Case"},
    "description": {"description": "x" * 257},
}


@pytest.mark.parametrize("members", INVALID.values(), ids=INVALID.keys())
def test_an_invalid_template_is_an_invalid_parameter(ecr: Any, members: dict[str, Any]) -> None:
    # ECR's model lists no finer error for these: each is InvalidParameterException, and nothing is stored
    request = {"prefix": "prod", "appliedFor": ["CREATE_ON_PUSH"], **members}
    with pytest.raises(ClientError) as refused:
        ecr.create_repository_creation_template(**request)
    assert error_code(refused) == "InvalidParameterException"
    assert ecr.describe_repository_creation_templates()["repositoryCreationTemplates"] == []


def test_the_template_operations_need_their_iam_actions(endpoint: str) -> None:
    # Given a user allowed to manage templates but not to create the repositories a template makes
    manage = _allow(
        "ecr:CreateRepositoryCreationTemplate",
        "ecr:DescribeRepositoryCreationTemplates",
        "ecr:UpdateRepositoryCreationTemplate",
        "ecr:DeleteRepositoryCreationTemplate",
    )
    ecr = client_for(endpoint, "ecr", *_user(endpoint, "templater", manage))

    # Then creating a template is refused for want of ecr:CreateRepository on what its prefix covers
    with pytest.raises(ClientError) as refused:
        ecr.create_repository_creation_template(prefix="prod", appliedFor=["CREATE_ON_PUSH"])
    assert error_code(refused) == "AccessDeniedException"
    assert f"ecr:CreateRepository on resource: arn:aws:ecr:us-east-1:{ACCOUNT}:repository/prod/*" in str(refused.value)

    # Given ecr:CreateRepository there, but no ecr:SetRepositoryPolicy
    client_for(endpoint, "iam").put_user_policy(
        UserName="templater",
        PolicyName="create",
        PolicyDocument=_allow("ecr:CreateRepository", resource=f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/prod/*"),
    )
    ecr.create_repository_creation_template(prefix="prod", appliedFor=["CREATE_ON_PUSH"])
    with pytest.raises(ClientError) as policy:
        ecr.update_repository_creation_template(prefix="prod", repositoryPolicy=REPOSITORY_POLICY)
    assert "ecr:SetRepositoryPolicy" in str(policy.value)
    assert "repositoryPolicy" not in ecr.describe_repository_creation_templates()["repositoryCreationTemplates"][0]
    ecr.delete_repository_creation_template(prefix="prod")


def test_a_deleted_user_named_by_a_template_policy_is_named_by_its_unique_id(endpoint: str, ecr: Any) -> None:
    # Given a template whose repository policy names a user
    iam = client_for(endpoint, "iam")
    user = iam.create_user(UserName="bob")["User"]
    named = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": user["Arn"]}, "Action": "ecr:BatchGetImage"}],
        }
    )
    ecr.create_repository_creation_template(prefix="ROOT", appliedFor=["CREATE_ON_PUSH"], repositoryPolicy=named)

    # When the user is deleted (and another made under its name)
    iam.delete_user(UserName="bob")
    iam.create_user(UserName="bob")

    # Then the template's policy names the deleted user's unique id, as IAM shows a repository policy's
    policy = ecr.describe_repository_creation_templates()["repositoryCreationTemplates"][0]["repositoryPolicy"]
    assert json.loads(policy)["Statement"][0]["Principal"]["AWS"] == user["UserId"]


# -- create on push -------------------------------------------------------------------------------------------


def test_a_push_creates_the_missing_repository_from_the_longest_matching_template(ecr: Any, root_oci: OciHttp) -> None:
    # Given a ROOT template and a more specific one with every setting, both for CREATE_ON_PUSH
    ecr.create_repository_creation_template(prefix="ROOT", appliedFor=["CREATE_ON_PUSH"])
    ecr.create_repository_creation_template(prefix="prod", appliedFor=["CREATE_ON_PUSH"], **EVERY_SETTING)

    # When images are pushed, docker-style, to two repositories that do not exist
    assert _push(root_oci, "prod/app", "v1").status_code == 201
    assert _push(root_oci, "dev/app", "v1").status_code == 201

    # Then each was created with the settings of the longest prefix that covers it
    prod = ecr.describe_repositories(repositoryNames=["prod/app"])["repositories"][0]
    assert prod["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
    assert prod["imageTagMutabilityExclusionFilters"] == [{"filterType": "WILDCARD", "filter": "latest"}]
    assert prod["encryptionConfiguration"]["encryptionType"] == "KMS"
    assert prod["encryptionConfiguration"]["kmsKey"].startswith(f"arn:aws:kms:us-east-1:{ACCOUNT}:key/")
    assert ecr.list_tags_for_resource(resourceArn=prod["repositoryArn"])["tags"] == [{"Key": "team", "Value": "blue"}]
    assert ecr.get_repository_policy(repositoryName="prod/app")["policyText"] == REPOSITORY_POLICY
    assert ecr.get_lifecycle_policy(repositoryName="prod/app")["lifecyclePolicyText"] == LIFECYCLE_POLICY
    dev = ecr.describe_repositories(repositoryNames=["dev/app"])["repositories"][0]
    assert dev["imageTagMutability"] == "MUTABLE" and dev["encryptionConfiguration"] == {"encryptionType": "AES256"}
    # And the settings are enforced: the tag v1 of prod/app cannot move
    assert _push(root_oci, "prod/app", "v1").status_code == 400


def test_a_push_no_create_on_push_template_covers_answers_name_unknown(ecr: Any, root_oci: OciHttp) -> None:
    # Given templates that cover other names, or serve other scenarios
    ecr.create_repository_creation_template(prefix="prod", appliedFor=["CREATE_ON_PUSH"])
    ecr.create_repository_creation_template(prefix="cache", appliedFor=["PULL_THROUGH_CACHE", "REPLICATION"])

    for name in ("dev/app", "cache/app", "prod"):
        answer = root_oci.start_upload(name)
        assert answer.status_code == 404 and answer.json()["errors"][0]["code"] == "NAME_UNKNOWN", name
    assert ecr.describe_repositories()["repositories"] == []


def test_the_pusher_also_needs_create_repository(endpoint: str, ecr: Any) -> None:
    # Given a CREATE_ON_PUSH template and a user who may push anywhere but not create repositories
    ecr.create_repository_creation_template(prefix="ROOT", appliedFor=["CREATE_ON_PUSH"])
    pusher = _user(endpoint, "pusher", _allow(*PUSH_ACTIONS))

    # When it pushes to a missing repository, docker-style and through PutImage
    for oci in _pusher(endpoint, pusher):
        denied = _push(oci, "app", "v1")
        # Then it is refused, naming the action it lacks, and nothing is created
        assert denied.status_code == 403 and denied.json()["errors"][0]["code"] == "DENIED"
        assert "ecr:CreateRepository" in denied.json()["errors"][0]["message"]
    api = client_for(endpoint, "ecr", *pusher)
    with pytest.raises(ClientError) as refused:
        api.put_image(repositoryName="app", imageManifest=index_manifest([]).decode(), imageTag="v1")
    assert error_code(refused) == "AccessDeniedException" and "ecr:CreateRepository" in str(refused.value)
    assert ecr.describe_repositories()["repositories"] == []

    # When it is allowed ecr:CreateRepository on that repository, the same pushes create it
    client_for(endpoint, "iam").put_user_policy(
        UserName="pusher",
        PolicyName="create",
        PolicyDocument=_allow("ecr:CreateRepository", resource=f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/app"),
    )
    for oci in _pusher(endpoint, pusher):
        assert _push(oci, "app", "v1").status_code == 201
    api.put_image(repositoryName="app", imageManifest=index_manifest([]).decode(), imageTag="v2")
    with pytest.raises(ClientError):
        api.put_image(repositoryName="other", imageManifest=index_manifest([]).decode(), imageTag="v1")
    assert [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]] == ["app"]


def test_put_image_and_initiate_layer_upload_create_a_missing_repository(ecr: Any) -> None:
    ecr.create_repository_creation_template(prefix="api", appliedFor=["CREATE_ON_PUSH"], imageTagMutability="IMMUTABLE")
    ecr.initiate_layer_upload(repositoryName="api/layers")
    ecr.put_image(repositoryName="api/index", imageManifest=index_manifest([]).decode(), imageTag="v1")
    names = {r["repositoryName"]: r["imageTagMutability"] for r in ecr.describe_repositories()["repositories"]}
    assert names == {"api/layers": "IMMUTABLE", "api/index": "IMMUTABLE"}


def test_a_template_with_a_custom_role_creates_as_that_role(endpoint: str, ecr: Any, root_oci: OciHttp) -> None:
    # Given a role without permissions, named by a template that tags what it creates
    iam = client_for(endpoint, "iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecr.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    role_arn = iam.create_role(RoleName="creator", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    ecr.create_repository_creation_template(
        prefix="ROOT",
        appliedFor=["CREATE_ON_PUSH"],
        customRoleArn=role_arn,
        resourceTags=[{"Key": "team", "Value": "blue"}],
    )
    assert ecr.describe_repository_creation_templates()["repositoryCreationTemplates"][0]["customRoleArn"] == role_arn

    # Then a push is refused: the role may not create the repository
    refused = _push(root_oci, "app", "v1")
    assert refused.status_code == 403 and "assumed-role/creator/" in refused.json()["errors"][0]["message"]

    # When the role may create and tag repositories, the push creates it
    iam.put_role_policy(
        RoleName="creator", PolicyName="create", PolicyDocument=_allow("ecr:CreateRepository", "ecr:TagResource")
    )
    assert _push(root_oci, "app", "v1").status_code == 201
    arn = ecr.describe_repositories(repositoryNames=["app"])["repositories"][0]["repositoryArn"]
    assert ecr.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "team", "Value": "blue"}]


# -- --create-on-push -------------------------------------------------------------------------------------------


def _templates(registry: Registry) -> CreationTemplateService:
    return registry.aws.services.templates


def test_create_on_push_installs_a_root_template_once(settings: Settings, registry: Registry) -> None:
    # When servers start with --create-on-push, twice
    flagged = dataclasses.replace(settings, create_on_push=True)
    for _ in range(2):
        build_registry(flagged).close()

    # Then one ROOT template creates any repository on push, with CreateRepository's defaults
    (root,) = _templates(registry).describe_templates(None)
    assert root.prefix == "ROOT" and root.applied_for == ("CREATE_ON_PUSH",)
    assert (root.image_tag_mutability, root.encryption_type, root.repository_policy) == ("MUTABLE", "AES256", None)
    assert _templates(registry).template_for("any/name", "CREATE_ON_PUSH") == root


def test_create_on_push_keeps_an_operators_root_template(settings: Settings, registry: Registry) -> None:
    # Given an operator's ROOT template for replication only
    ecr_templates = _templates(registry)
    ecr_templates.create_template(
        CreationTemplate(prefix="ROOT", applied_for=("REPLICATION",), image_tag_mutability="IMMUTABLE")
    )

    # When a server starts with --create-on-push
    build_registry(dataclasses.replace(settings, create_on_push=True)).close()

    # Then that template also applies on push, its settings unchanged
    (root,) = ecr_templates.describe_templates(None)
    assert root.applied_for == ("REPLICATION", "CREATE_ON_PUSH") and root.image_tag_mutability == "IMMUTABLE"
