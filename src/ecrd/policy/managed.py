"""The AWS managed policies for ECR, with their real ARNs, default versions and exact documents.

Sources (ecr-semantics.md §2.2): the AWS Managed Policy Reference pages and the zoph-io/MAMIP snapshots of
each policy's default version. The documents are kept as text so that GetPolicyVersion can return them as
AWS does; each is parsed once, at import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Final

from ecrd.policy.document import PolicyDocument, parse_policy

__all__ = [
    "FULL_ACCESS",
    "MANAGED_POLICIES",
    "POWER_USER",
    "PULL_ONLY",
    "READ_ONLY",
    "ManagedPolicy",
    "managed_policy",
]

_ARN_PREFIX: Final = "arn:aws:iam::aws:policy/"


@dataclass(frozen=True)
class ManagedPolicy:
    """An AWS managed policy as IAM describes it (GetPolicy / GetPolicyVersion)."""

    name: str
    description: str
    version_id: str
    version_create_date: datetime
    document_text: str
    path: str = "/"
    document: PolicyDocument = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "document", parse_policy(self.document_text, kind="identity"))

    @property
    def arn(self) -> str:
        return f"{_ARN_PREFIX}{self.name}"


READ_ONLY: Final = ManagedPolicy(
    name="AmazonEC2ContainerRegistryReadOnly",
    description="Provides read-only access to Amazon EC2 Container Registry repositories.",
    version_id="v3",
    version_create_date=datetime(2019, 12, 10, 20, 56, 32, tzinfo=UTC),
    document_text="""{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
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
                "ecr:DescribeImageScanFindings"
            ],
            "Resource": "*"
        }
    ]
}""",
)

POWER_USER: Final = ManagedPolicy(
    name="AmazonEC2ContainerRegistryPowerUser",
    description=(
        "Provides full access to Amazon EC2 Container Registry repositories, "
        "but does not allow repository deletion or policy changes."
    ),
    version_id="v3",
    version_create_date=datetime(2019, 12, 10, 20, 48, 8, tzinfo=UTC),
    document_text="""{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
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
                "ecr:InitiateLayerUpload",
                "ecr:UploadLayerPart",
                "ecr:CompleteLayerUpload",
                "ecr:PutImage"
            ],
            "Resource": "*"
        }
    ]
}""",
)

FULL_ACCESS: Final = ManagedPolicy(
    name="AmazonEC2ContainerRegistryFullAccess",
    description="Provides administrative access to Amazon ECR resources",
    version_id="v3",
    version_create_date=datetime(2020, 12, 5, 0, 4, 19, tzinfo=UTC),
    document_text="""{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "ecr:*",
                "cloudtrail:LookupEvents"
            ],
            "Resource": "*"
        },
        {
            "Effect": "Allow",
            "Action": [
                "iam:CreateServiceLinkedRole"
            ],
            "Resource": "*",
            "Condition": {
                "StringEquals": {
                    "iam:AWSServiceName": [
                        "replication.ecr.amazonaws.com"
                    ]
                }
            }
        }
    ]
}""",
)

PULL_ONLY: Final = ManagedPolicy(
    name="AmazonEC2ContainerRegistryPullOnly",
    # The English reference page was not among our sources; this renders its published translations.
    description="Provides access to pull images from Amazon EC2 Container Registry repositories.",
    version_id="v1",
    version_create_date=datetime(2024, 10, 4, 16, 58, 49, tzinfo=UTC),
    document_text="""{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "ecr:GetAuthorizationToken",
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
                "ecr:BatchImportUpstreamImage"
            ],
            "Resource": "*"
        }
    ]
}""",
)

MANAGED_POLICIES: Final[Mapping[str, ManagedPolicy]] = MappingProxyType(
    {policy.arn: policy for policy in (READ_ONLY, POWER_USER, FULL_ACCESS, PULL_ONLY)}
)
"""The ECR managed policies by ARN."""


def managed_policy(arn: str) -> ManagedPolicy | None:
    """The managed policy with this ARN, or None when ecrd does not know it."""
    return MANAGED_POLICIES.get(arn)
