"""The AWS managed ECR policies: their identities, exact documents, and what they allow."""

from __future__ import annotations

import json

import pytest

from ecrd.policy import AuthorizationRequest, Principal, evaluate, managed_policy
from ecrd.policy.managed import FULL_ACCESS, MANAGED_POLICIES, POWER_USER, PULL_ONLY, READ_ONLY, ManagedPolicy

ACCOUNT = "111122223333"
USER = Principal(f"arn:aws:iam::{ACCOUNT}:user/dev", ACCOUNT)
REPO = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/app"

READ_ONLY_ACTIONS = [
    "ecr:GetAuthorizationToken",
    "ecr:BatchCheckLayerAvailability",
    "ecr:GetDownloadUrlForLayer",
    "ecr:GetRepositoryPolicy",
    "ecr:DescribeRepositories",
    "ecr:ListImages",
    "ecr:DescribeImages",
    "ecr:BatchGetImage",
    "ecr:GetLifecyclePolicy",
    "ecr:GetLifecyclePolicyPreview",
    "ecr:ListTagsForResource",
    "ecr:DescribeImageScanFindings",
]
PUSH_ACTIONS = ["ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload", "ecr:PutImage"]


def statements(policy: ManagedPolicy) -> list[dict[str, object]]:
    document = json.loads(policy.document_text)
    assert document["Version"] == "2012-10-17"
    return list(document["Statement"])


def test_managed_policies_are_known_by_their_real_arns() -> None:
    assert sorted(MANAGED_POLICIES) == [
        "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryFullAccess",
        "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPowerUser",
        "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly",
        "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
    ]
    assert managed_policy("arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly") is READ_ONLY
    assert managed_policy("arn:aws:iam::aws:policy/AdministratorAccess") is None
    assert [(p.version_id, p.path) for p in (READ_ONLY, POWER_USER, FULL_ACCESS, PULL_ONLY)] == [
        ("v3", "/"),
        ("v3", "/"),
        ("v3", "/"),
        ("v1", "/"),
    ]


def test_read_only_document() -> None:
    assert statements(READ_ONLY) == [{"Effect": "Allow", "Action": READ_ONLY_ACTIONS, "Resource": "*"}]


def test_power_user_document_adds_push_to_read_only() -> None:
    assert statements(POWER_USER) == [{"Effect": "Allow", "Action": READ_ONLY_ACTIONS + PUSH_ACTIONS, "Resource": "*"}]


def test_full_access_document() -> None:
    assert statements(FULL_ACCESS) == [
        {"Effect": "Allow", "Action": ["ecr:*", "cloudtrail:LookupEvents"], "Resource": "*"},
        {
            "Effect": "Allow",
            "Action": ["iam:CreateServiceLinkedRole"],
            "Resource": "*",
            "Condition": {"StringEquals": {"iam:AWSServiceName": ["replication.ecr.amazonaws.com"]}},
        },
    ]


def test_pull_only_document() -> None:
    assert statements(PULL_ONLY) == [
        {
            "Effect": "Allow",
            "Action": [
                "ecr:GetAuthorizationToken",
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
                "ecr:BatchImportUpstreamImage",
            ],
            "Resource": "*",
        }
    ]


@pytest.mark.parametrize(
    ("policy", "action", "allowed"),
    [
        (READ_ONLY, "ecr:BatchGetImage", True),
        (READ_ONLY, "ecr:PutImage", False),
        (READ_ONLY, "ecr:DeleteRepository", False),
        (POWER_USER, "ecr:PutImage", True),
        (POWER_USER, "ecr:CompleteLayerUpload", True),
        (POWER_USER, "ecr:SetRepositoryPolicy", False),
        (POWER_USER, "ecr:BatchDeleteImage", False),
        (FULL_ACCESS, "ecr:DeleteRepository", True),
        (FULL_ACCESS, "ecr:PutRegistryPolicy", True),
        (FULL_ACCESS, "iam:CreateUser", False),
        (PULL_ONLY, "ecr:BatchGetImage", True),
        (PULL_ONLY, "ecr:BatchImportUpstreamImage", True),
        (PULL_ONLY, "ecr:BatchCheckLayerAvailability", False),
        (PULL_ONLY, "ecr:DescribeImages", False),
    ],
)
def test_managed_policy_grants(policy: ManagedPolicy, action: str, allowed: bool) -> None:
    request = AuthorizationRequest(USER, action, REPO, ACCOUNT)

    assert evaluate(request, [policy.document], None).allowed is allowed


@pytest.mark.parametrize(
    ("service", "allowed"), [("replication.ecr.amazonaws.com", True), ("ec2.amazonaws.com", False)]
)
def test_full_access_creates_only_the_replication_service_linked_role(service: str, allowed: bool) -> None:
    request = AuthorizationRequest(
        USER,
        "iam:CreateServiceLinkedRole",
        f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/x",
        ACCOUNT,
        context={"iam:AWSServiceName": service},
    )

    assert evaluate(request, [FULL_ACCESS.document], None).allowed is allowed
