"""ECR's account settings: the names and values PutAccountSetting accepts, their defaults, and what each registry
policy scope governs and lets a registry policy name."""

from __future__ import annotations

import json

import pytest

from ecrd.domain.account_settings import (
    BASIC_SCAN_TYPE_VERSION,
    REGISTRY_POLICY_SCOPE,
    check_account_setting,
    default_value,
    registry_policy_governs,
)
from ecrd.errors import InvalidParameter
from ecrd.policy.document import parse_policy
from ecrd.services.account_settings import check_registry_policy_scope

# ECR's answer to a registry policy it refuses (hashicorp/terraform-provider-aws#40933).
INVALID_REGISTRY_POLICY = (
    "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid registry policy provided'"
)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (BASIC_SCAN_TYPE_VERSION, "AWS_NATIVE"),
        (REGISTRY_POLICY_SCOPE, "V1"),
        (REGISTRY_POLICY_SCOPE, "V2"),
    ],
)
def test_the_values_ecr_accepts_are_accepted(name: str, value: str) -> None:
    check_account_setting(name, value)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "BLOB_MOUNTING",
            "ENABLED",
            "Invalid parameter at 'name' failed to satisfy constraint: 'Account setting name must be one of "
            "[BASIC_SCAN_TYPE_VERSION, REGISTRY_POLICY_SCOPE]'",
        ),
        (
            "registry_policy_scope",
            "V2",
            "Invalid parameter at 'name' failed to satisfy constraint: 'Account setting name must be one of "
            "[BASIC_SCAN_TYPE_VERSION, REGISTRY_POLICY_SCOPE]'",
        ),
        (
            REGISTRY_POLICY_SCOPE,
            "V3",
            "Invalid parameter at 'value' failed to satisfy constraint: 'Value for REGISTRY_POLICY_SCOPE must be "
            "one of [V1, V2]'",
        ),
        (
            REGISTRY_POLICY_SCOPE,
            "v2",
            "Invalid parameter at 'value' failed to satisfy constraint: 'Value for REGISTRY_POLICY_SCOPE must be "
            "one of [V1, V2]'",
        ),
        # Clair basic scanning is retired: the model names AWS_NATIVE as the one valid value.
        (
            BASIC_SCAN_TYPE_VERSION,
            "CLAIR",
            "Invalid parameter at 'value' failed to satisfy constraint: 'Value for BASIC_SCAN_TYPE_VERSION must "
            "be one of [AWS_NATIVE]'",
        ),
    ],
)
def test_other_names_and_values_are_invalid_parameters(name: str, value: str, message: str) -> None:
    with pytest.raises(InvalidParameter) as refused:
        check_account_setting(name, value)
    assert refused.value.message == message


def test_an_unknown_name_is_refused_when_read_too() -> None:
    with pytest.raises(InvalidParameter):
        default_value("BLOB_MOUNTING")


def test_a_registry_that_never_chose_has_ecrs_defaults_for_new_registries() -> None:
    assert default_value(REGISTRY_POLICY_SCOPE) == "V2"
    assert default_value(BASIC_SCAN_TYPE_VERSION) == "AWS_NATIVE"


@pytest.mark.parametrize(
    ("scope", "action", "governed"),
    [
        ("V2", "ecr:BatchGetImage", True),
        ("V2", "ecr:CreateRepository", True),
        ("V2", "iam:CreateUser", False),
        ("V2", "kms:Decrypt", False),
        ("V1", "ecr:CreateRepository", True),
        ("V1", "ecr:ReplicateImage", True),
        ("V1", "ecr:BatchImportUpstreamImage", True),
        ("V1", "ecr:BatchGetImage", False),
        ("V1", "ecr:DescribeRepositories", False),
        ("V1", "iam:CreateUser", False),
    ],
)
def test_each_scope_governs_its_actions(scope: str, action: str, governed: bool) -> None:
    assert registry_policy_governs(scope, action) is governed


def _policy(*actions: str, element: str = "Action") -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                    element: list(actions),
                    "Resource": "*",
                }
            ],
        }
    )


@pytest.mark.parametrize(
    ("scope", "actions"),
    [
        ("V1", ["ecr:CreateRepository", "ecr:ReplicateImage"]),
        ("V1", ["ecr:BatchImportUpstreamImage"]),
        ("V1", ["ECR:createrepository"]),
        # ECR's docs allow ecr:* in a V1 policy, of which only the V1 actions take effect.
        ("V1", ["ecr:*"]),
        ("V1", ["*"]),
        ("V1", ["ecr:Replicate*"]),
        ("V2", ["ecr:BatchGetImage", "ecr:PutImage", "ecr:CreateRepository"]),
        ("V2", ["ecr:*"]),
        ("V2", ["*"]),
    ],
)
def test_a_policy_within_its_scope_is_accepted(scope: str, actions: list[str]) -> None:
    check_registry_policy_scope(parse_policy(_policy(*actions), kind="resource"), scope)


@pytest.mark.parametrize(
    ("scope", "actions", "element"),
    [
        ("V1", ["ecr:CreateRepository", "ecr:BatchGetImage"], "Action"),
        ("V1", ["ecr:Describe*"], "Action"),
        ("V1", ["ecr:DescribeRepositories"], "NotAction"),
        ("V2", ["iam:CreateUser"], "Action"),
        ("V2", ["ecr:BatchGetImage", "kms:*"], "Action"),
        ("V2", ["sts:AssumeRole"], "NotAction"),
    ],
)
def test_an_action_outside_the_scope_is_an_invalid_registry_policy(
    scope: str, actions: list[str], element: str
) -> None:
    with pytest.raises(InvalidParameter) as refused:
        check_registry_policy_scope(parse_policy(_policy(*actions, element=element), kind="resource"), scope)
    assert refused.value.message == INVALID_REGISTRY_POLICY
