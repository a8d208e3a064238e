"""KMS authorization: the key policy is the root of trust, IAM policies count only where it allows the account."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ecrd.policy.document import parse_policy
from ecrd.policy.evaluation import AuthorizationRequest, Decision, Principal
from ecrd.services.kms_policies import (
    default_key_policy,
    encryption_context_keys,
    key_access_decision,
    managed_ecr_key_policy,
)

ACCOUNT = "123456789012"
REGION = "us-east-1"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0b5c3f3e-8a7d-4c1e-9f2a-1d2e3f4a5b6c"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
BOB = f"arn:aws:iam::{ACCOUNT}:user/bob"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"


def key_policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def grant(
    principal: str | dict[str, Any],
    action: str | list[str] = "kms:*",
    *,
    effect: str = "Allow",
    condition: dict[str, Any] | None = None,
) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Effect": effect,
        "Principal": principal if isinstance(principal, dict) else {"AWS": principal},
        "Action": action,
        "Resource": "*",
    }
    if condition is not None:
        statement["Condition"] = condition
    return statement


def iam(effect: str = "Allow", action: str = "kms:*") -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": effect, "Action": action, "Resource": "*"}]})


def decide(
    principal: str,
    action: str,
    policy: str,
    identity: tuple[str, ...] = (),
    context: dict[str, object] | None = None,
    account: str = ACCOUNT,
) -> Decision:
    request = AuthorizationRequest(
        Principal(principal, account), action, KEY, ACCOUNT, {"kms:CallerAccount": account, **(context or {})}
    )
    return key_access_decision(
        request,
        [parse_policy(text, kind="identity") for text in identity],
        parse_policy(policy, kind="resource"),
        is_account_root=principal == ROOT,
    )


DEFAULT = default_key_policy(ACCOUNT)


@pytest.mark.parametrize(
    ("principal", "policy", "identity", "reason"),
    [
        (ALICE, DEFAULT, (iam(),), "allowed"),
        (ALICE, DEFAULT, (), "no_identity_allow"),
        (ROOT, DEFAULT, (), "allowed"),
        (ALICE, key_policy(grant(ALICE)), (), "allowed"),
        (ALICE, key_policy(grant(BOB)), (iam(),), "no_resource_allow"),
        (ROOT, key_policy(grant(BOB)), (), "no_resource_allow"),
        (
            ALICE,
            key_policy(grant(ROOT), grant(ALICE, "kms:Encrypt", effect="Deny")),
            (iam(),),
            "explicit_deny_resource",
        ),
        (ROOT, key_policy(grant(ROOT), grant(ROOT, "kms:Encrypt", effect="Deny")), (), "explicit_deny_resource"),
        (ALICE, DEFAULT, (iam(), iam("Deny", "kms:Encrypt")), "explicit_deny_identity"),
        (ALICE, key_policy(grant(ALICE)), (iam("Deny", "kms:Encrypt"),), "explicit_deny_identity"),
        (ALICE, key_policy(grant(ROOT, "kms:Decrypt")), (iam(),), "no_resource_allow"),
    ],
    ids=[
        "default policy delegates to an IAM allow",
        "default policy without an IAM allow",
        "default policy lets the root in",
        "key policy naming the user needs no IAM allow",
        "IAM allow without the account in the key policy is not enough",
        "not even the root gets in when the key policy leaves the account out",
        "explicit deny in the key policy wins over an IAM allow",
        "explicit deny in the key policy stops the root",
        "explicit deny in an IAM policy wins",
        "explicit deny in an IAM policy wins over a key policy naming the user",
        "account granted other actions only",
    ],
)
def test_key_policy_and_iam_policies_decide_together(
    principal: str, policy: str, identity: tuple[str, ...], reason: str
) -> None:
    assert decide(principal, "kms:Encrypt", policy, identity).reason == reason


def test_a_denial_by_the_key_policy_is_worded_as_aws_words_it() -> None:
    request = AuthorizationRequest(Principal(ALICE, ACCOUNT), "kms:Encrypt", KEY, ACCOUNT)
    decision = decide(ALICE, "kms:Encrypt", key_policy(grant(BOB)), (iam(),))
    assert decision.denial_message(request) == (
        f"User: {ALICE} is not authorized to perform: kms:Encrypt on resource: {KEY} because no resource-based "
        "policy allows the kms:Encrypt action"
    )


MANAGED = managed_ecr_key_policy(ACCOUNT, REGION)
VIA_ECR = {"kms:ViaService": f"ecr.{REGION}.amazonaws.com"}


@pytest.mark.parametrize(
    ("principal", "action", "context", "account", "allowed"),
    [
        (ALICE, "kms:GenerateDataKey", VIA_ECR, ACCOUNT, True),
        (ALICE, "kms:Decrypt", VIA_ECR, ACCOUNT, True),
        (ALICE, "kms:Decrypt", {}, ACCOUNT, False),
        (ROOT, "kms:Encrypt", {}, ACCOUNT, False),
        (ROOT, "kms:DescribeKey", {}, ACCOUNT, True),
        (ROOT, "kms:DisableKey", {}, ACCOUNT, False),
        (ROOT, "kms:PutKeyPolicy", {}, ACCOUNT, False),
        (ALICE, "kms:Decrypt", {"kms:ViaService": "s3.us-east-1.amazonaws.com"}, ACCOUNT, False),
        ("arn:aws:iam::999999999999:user/eve", "kms:Decrypt", VIA_ECR, "999999999999", False),
    ],
    ids=[
        "data key through ECR",
        "decrypt through ECR",
        "decrypt directly",
        "root encrypts directly",
        "root describes",
        "root disables",
        "root rewrites the policy",
        "through another service",
        "another account through ECR",
    ],
)
def test_the_aws_managed_ecr_key_serves_the_account_through_ecr(
    principal: str, action: str, context: dict[str, object], account: str, allowed: bool
) -> None:
    assert decide(principal, action, MANAGED, (), context, account).allowed is allowed


def test_key_policy_conditions_see_the_encryption_context() -> None:
    policy = key_policy(grant(ALICE, "kms:Decrypt", condition={"StringEquals": {"kms:EncryptionContext:team": "blue"}}))
    assert decide(ALICE, "kms:Decrypt", policy, (), encryption_context_keys({"team": "blue"})).allowed
    assert not decide(ALICE, "kms:Decrypt", policy, (), encryption_context_keys({"team": "red"})).allowed
    assert not decide(ALICE, "kms:Decrypt", policy, ()).allowed


def test_the_default_key_policy_is_kms_default() -> None:
    assert json.loads(DEFAULT) == {
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [
            {
                "Sid": "Enable IAM User Permissions",
                "Effect": "Allow",
                "Principal": {"AWS": ROOT},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }
