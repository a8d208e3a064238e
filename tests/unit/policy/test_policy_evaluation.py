"""Authorization decisions: a table of principals, policies and requests, and AWS's AccessDenied wording.

Rows marked "IAM docs" restate the IAM User Guide's evaluation examples (evaluation-logic basics,
cross-account evaluation, NotAction, NotPrincipal, IfExists, set operators) with ECR actions and ARNs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from ecrd.policy import AuthorizationRequest, Decision, PolicyDocument, Principal, evaluate, parse_policy
from ecrd.policy.evaluation import DecisionReason
from ecrd.policy.managed import READ_ONLY

A = "111122223333"  # the registry's account
B = "444455556666"  # another account
C = "777788889999"  # a third account


def repo(name: str = "app", account: str = A) -> str:
    return f"arn:aws:ecr:us-east-1:{account}:repository/{name}"


ALICE = Principal(f"arn:aws:iam::{A}:user/alice", A)
BOB = Principal(f"arn:aws:iam::{A}:user/bob", A)
CARLOS = Principal(f"arn:aws:iam::{A}:user/carlossalazar", A)
CI_SESSION = Principal(f"arn:aws:sts::{A}:assumed-role/ci/build-42", A, aliases=(f"arn:aws:iam::{A}:role/ci",))
ROOT_A = Principal(f"arn:aws:iam::{A}:root", A)
PAT_B = Principal(f"arn:aws:iam::{B}:user/pat", B)
ROOT_B = Principal(f"arn:aws:iam::{B}:root", B)


def identity(*statements: dict[str, Any]) -> PolicyDocument:
    return parse_policy(json.dumps({"Version": "2012-10-17", "Statement": list(statements)}), kind="identity")


def resource(*statements: dict[str, Any]) -> PolicyDocument:
    return parse_policy(json.dumps({"Version": "2012-10-17", "Statement": list(statements)}), kind="resource")


def allow(action: str | list[str] = "ecr:*", res: str | list[str] = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": res, **extra}


def deny(action: str | list[str] = "ecr:*", res: str | list[str] = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": res, **extra}


def grant(principal: object, action: str | list[str] = "ecr:*", effect: str = "Allow", **extra: Any) -> dict[str, Any]:
    return {"Effect": effect, "Principal": principal, "Action": action, **extra}


@dataclass(frozen=True)
class Case:
    principal: Principal
    action: str
    identity_policies: tuple[PolicyDocument, ...] = ()
    resource_policy: PolicyDocument | None = None
    expected: DecisionReason = "allowed"
    resource: str = field(default_factory=repo)
    resource_account: str | None = A
    context: dict[str, object] = field(default_factory=dict)
    root: bool = False


CASES: dict[str, Case] = {
    # -- same account: the union of identity and resource policies ----------------------------------------
    "nothing allows: implicit deny": Case(ALICE, "ecr:BatchGetImage", expected="no_identity_allow"),
    "identity policy allows": Case(ALICE, "ecr:BatchGetImage", (identity(allow("ecr:BatchGetImage", repo())),)),
    "identity policy allows another repository only": Case(
        ALICE, "ecr:BatchGetImage", (identity(allow("ecr:*", repo("other"))),), expected="no_identity_allow"
    ),
    "identity policy allows another action only": Case(
        ALICE, "ecr:PutImage", (identity(allow("ecr:BatchGetImage")),), expected="no_identity_allow"
    ),
    "action names are case-insensitive": Case(ALICE, "ecr:BatchGetImage", (identity(allow("ECR:batchgetimage")),)),
    "resource ARNs are case-sensitive": Case(
        ALICE, "ecr:BatchGetImage", (identity(allow("ecr:*", repo("APP"))),), expected="no_identity_allow"
    ),
    "wildcards in action and resource": Case(
        ALICE, "ecr:GetDownloadUrlForLayer", (identity(allow("ecr:Get*", f"arn:aws:ecr:*:{A}:repository/a?p")),)
    ),
    "an Allow in any of several policies suffices": Case(
        ALICE, "ecr:PutImage", (identity(allow("ecr:BatchGetImage")), identity(allow("ecr:PutImage")))
    ),
    "IAM docs: same account, the resource policy alone allows the user it names": Case(
        ALICE, "ecr:BatchGetImage", resource_policy=resource(grant({"AWS": ALICE.arn}, "ecr:BatchGetImage"))
    ),
    "resource policy naming everyone allows": Case(ALICE, "ecr:BatchGetImage", resource_policy=resource(grant("*"))),
    "resource policy naming every AWS principal allows": Case(
        ALICE, "ecr:BatchGetImage", resource_policy=resource(grant({"AWS": "*"}))
    ),
    "resource policy naming only the account delegates to identity policies": Case(
        ALICE,
        "ecr:BatchGetImage",
        resource_policy=resource(grant({"AWS": f"arn:aws:iam::{A}:root"})),
        expected="no_identity_allow",
    ),
    "account delegation plus an identity Allow is allowed": Case(
        ALICE,
        "ecr:BatchGetImage",
        (identity(allow()),),
        resource(grant({"AWS": A})),
    ),
    "resource policy naming another user does not allow": Case(
        ALICE, "ecr:BatchGetImage", resource_policy=resource(grant({"AWS": BOB.arn})), expected="no_identity_allow"
    ),
    "resource policy Resource element narrows it": Case(
        ALICE,
        "ecr:BatchGetImage",
        resource_policy=resource(grant("*", Resource=repo("other"))),
        expected="no_identity_allow",
    ),
    "a role ARN in a resource policy names its sessions": Case(
        CI_SESSION, "ecr:PutImage", resource_policy=resource(grant({"AWS": f"arn:aws:iam::{A}:role/ci"}))
    ),
    "a session ARN in a resource policy names that session": Case(
        CI_SESSION, "ecr:PutImage", resource_policy=resource(grant({"AWS": CI_SESSION.arn}))
    ),
    "another role's ARN does not name the session": Case(
        CI_SESSION,
        "ecr:PutImage",
        resource_policy=resource(grant({"AWS": f"arn:aws:iam::{A}:role/deploy"})),
        expected="no_identity_allow",
    ),
    "a service principal never names an IAM principal": Case(
        ALICE,
        "ecr:BatchGetImage",
        resource_policy=resource(grant({"Service": "codebuild.amazonaws.com"})),
        expected="no_identity_allow",
    ),
    # -- explicit deny wins ------------------------------------------------------------------------------
    "IAM docs: explicit deny in an identity policy overrides its own Allow": Case(
        ALICE, "ecr:DeleteRepository", (identity(allow(), deny("ecr:Delete*")),), expected="explicit_deny_identity"
    ),
    "explicit deny in one identity policy overrides another's Allow": Case(
        ALICE, "ecr:PutImage", (identity(allow()), identity(deny("ecr:PutImage"))), expected="explicit_deny_identity"
    ),
    "IAM docs (Carlos): identity deny overrides the resource policy's Allow": Case(
        CARLOS,
        "ecr:PutImage",
        (
            identity(
                {"Sid": "AllowSelf", **allow("ecr:*", repo("carlossalazar*"))},
                {"Sid": "DenyLogs", **deny("ecr:*", "arn:aws:ecr:*:*:repository/*log*")},
            ),
        ),
        resource(grant({"AWS": CARLOS.arn})),
        resource=repo("carlossalazar-logs"),
        expected="explicit_deny_identity",
    ),
    "explicit deny in the resource policy overrides an identity Allow": Case(
        ALICE,
        "ecr:PutImage",
        (identity(allow()),),
        resource(grant("*", "ecr:PutImage", "Deny")),
        expected="explicit_deny_resource",
    ),
    "a Deny naming the account applies to its users": Case(
        ALICE,
        "ecr:PutImage",
        (identity(allow()),),
        resource(grant({"AWS": A}, "ecr:*", "Deny")),
        expected="explicit_deny_resource",
    ),
    "a Deny for another action does not apply": Case(
        ALICE, "ecr:BatchGetImage", (identity(allow()),), resource(grant("*", "ecr:PutImage", "Deny"))
    ),
    # -- NotAction, NotResource, NotPrincipal -------------------------------------------------------------
    "IAM docs: Allow with NotAction allows every other action": Case(
        ALICE, "ecr:PutImage", (identity({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}),)
    ),
    "IAM docs: Allow with NotAction does not allow the listed actions": Case(
        ALICE,
        "iam:CreateUser",
        (identity({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}),),
        resource="*",
        resource_account=None,
        expected="no_identity_allow",
    ),
    "Deny with NotAction denies everything but the listed actions": Case(
        ALICE,
        "ecr:PutImage",
        (
            identity(
                allow(),
                {"Effect": "Deny", "NotAction": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], "Resource": "*"},
            ),
        ),
        expected="explicit_deny_identity",
    ),
    "Deny with NotAction leaves the listed actions alone": Case(
        ALICE,
        "ecr:BatchGetImage",
        (
            identity(
                allow(),
                {"Effect": "Deny", "NotAction": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], "Resource": "*"},
            ),
        ),
    ),
    "Allow with NotResource covers other resources": Case(
        ALICE, "ecr:PutImage", (identity({"Effect": "Allow", "Action": "ecr:*", "NotResource": repo("secret")}),)
    ),
    "Allow with NotResource excludes the listed resource": Case(
        ALICE,
        "ecr:PutImage",
        (identity({"Effect": "Allow", "Action": "ecr:*", "NotResource": repo("secret")}),),
        resource=repo("secret"),
        expected="no_identity_allow",
    ),
    "IAM docs: Deny with NotPrincipal spares the named principal": Case(
        ALICE,
        "ecr:PutImage",
        (identity(allow()),),
        resource({"Effect": "Deny", "NotPrincipal": {"AWS": ALICE.arn}, "Action": "ecr:*"}),
    ),
    "IAM docs: Deny with NotPrincipal denies everyone else": Case(
        BOB,
        "ecr:PutImage",
        (identity(allow()),),
        resource({"Effect": "Deny", "NotPrincipal": {"AWS": ALICE.arn}, "Action": "ecr:*"}),
        expected="explicit_deny_resource",
    ),
    "NotPrincipal naming a role spares its sessions": Case(
        CI_SESSION,
        "ecr:PutImage",
        (identity(allow()),),
        resource({"Effect": "Deny", "NotPrincipal": {"AWS": f"arn:aws:iam::{A}:role/ci"}, "Action": "ecr:*"}),
    ),
    # -- conditions ---------------------------------------------------------------------------------------
    "IAM docs: Deny when aws:SecureTransport is false": Case(
        ALICE,
        "ecr:BatchGetImage",
        (identity(allow(), deny("*", Condition={"Bool": {"aws:SecureTransport": "false"}})),),
        context={"aws:SecureTransport": False},
        expected="explicit_deny_identity",
    ),
    "Deny on aws:SecureTransport false does not apply over TLS": Case(
        ALICE,
        "ecr:BatchGetImage",
        (identity(allow(), deny("*", Condition={"Bool": {"aws:SecureTransport": "false"}})),),
        context={"aws:SecureTransport": True},
    ),
    "IAM docs: Allow from a source IP range": Case(
        ALICE,
        "ecr:BatchGetImage",
        (identity(allow(Condition={"IpAddress": {"aws:SourceIp": ["192.0.2.0/24", "203.0.113.0/24"]}})),),
        context={"aws:SourceIp": "203.0.113.9"},
    ),
    "Allow from a source IP range refuses others": Case(
        ALICE,
        "ecr:BatchGetImage",
        (identity(allow(Condition={"IpAddress": {"aws:SourceIp": ["192.0.2.0/24", "203.0.113.0/24"]}})),),
        context={"aws:SourceIp": "198.51.100.1"},
        expected="no_identity_allow",
    ),
    "IAM docs: Allow until a date, before it": Case(
        ALICE,
        "ecr:BatchGetImage",
        (identity(allow(Condition={"DateLessThan": {"aws:CurrentTime": "2025-01-01T00:00:00Z"}})),),
        context={"aws:CurrentTime": datetime(2024, 12, 31, 23, 59, tzinfo=UTC)},
    ),
    "Allow until a date, after it": Case(
        ALICE,
        "ecr:BatchGetImage",
        (identity(allow(Condition={"DateLessThan": {"aws:CurrentTime": "2025-01-01T00:00:00Z"}})),),
        context={"aws:CurrentTime": datetime(2025, 1, 1, tzinfo=UTC)},
        expected="no_identity_allow",
    ),
    "aws:EpochTime is derived from aws:CurrentTime": Case(
        ALICE,
        "ecr:BatchGetImage",
        (identity(allow(Condition={"NumericLessThan": {"aws:EpochTime": 1735689600}})),),
        context={"aws:CurrentTime": datetime(2024, 12, 31, tzinfo=UTC)},
    ),
    "a date condition with no clock in the context is false": Case(
        ALICE,
        "ecr:BatchGetImage",
        (identity(allow(Condition={"DateLessThan": {"aws:CurrentTime": "2025-01-01T00:00:00Z"}})),),
        expected="no_identity_allow",
    ),
    "condition keys in a block are ANDed": Case(
        ALICE,
        "ecr:BatchGetImage",
        (
            identity(
                allow(
                    Condition={
                        "Bool": {"aws:SecureTransport": "true"},
                        "StringEquals": {"aws:RequestedRegion": "us-east-1", "ecr:ResourceTag/env": "dev"},
                    }
                )
            ),
        ),
        context={"aws:SecureTransport": True, "aws:RequestedRegion": "us-east-1", "ecr:ResourceTag/env": "prod"},
        expected="no_identity_allow",
    ),
    "IAM docs: IfExists allows when the key is absent": Case(
        ALICE,
        "ecr:BatchGetImage",
        (identity(allow(Condition={"StringEqualsIfExists": {"ecr:ResourceTag/env": "dev"}})),),
    ),
    "IAM docs: IfExists checks the key when present": Case(
        ALICE,
        "ecr:BatchGetImage",
        (identity(allow(Condition={"StringEqualsIfExists": {"ecr:ResourceTag/env": "dev"}})),),
        context={"ecr:ResourceTag/env": "prod"},
        expected="no_identity_allow",
    ),
    "IAM docs: ForAllValues with an empty set is true, so the Allow applies": Case(
        ALICE,
        "ecr:TagResource",
        (
            identity(
                allow("ecr:TagResource", Condition={"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team"]}})
            ),
        ),
        context={"aws:TagKeys": []},
    ),
    "ForAllValues refuses a tag key outside the list": Case(
        ALICE,
        "ecr:TagResource",
        (
            identity(
                allow("ecr:TagResource", Condition={"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team"]}})
            ),
        ),
        context={"aws:TagKeys": ["env", "secret"]},
        expected="no_identity_allow",
    ),
    "IAM docs: ForAnyValue with an empty set is false": Case(
        ALICE,
        "ecr:TagResource",
        (identity(allow("ecr:TagResource", Condition={"ForAnyValue:StringEquals": {"aws:TagKeys": ["env"]}})),),
        context={"aws:TagKeys": []},
        expected="no_identity_allow",
    ),
    "aws:PrincipalArn of a session is its role's ARN": Case(
        CI_SESSION,
        "ecr:PutImage",
        resource_policy=resource(grant("*", Condition={"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{A}:role/c?"}})),
    ),
    "aws:PrincipalAccount is derived from the principal": Case(
        PAT_B,
        "ecr:BatchGetImage",
        (identity(allow()),),
        resource(grant("*", Condition={"StringEquals": {"aws:PrincipalAccount": B}})),
    ),
    "aws:PrincipalAccount names the caller's account only": Case(
        PAT_B,
        "ecr:BatchGetImage",
        (identity(allow()),),
        resource(grant("*", Condition={"StringEquals": {"aws:PrincipalAccount": C}})),
        expected="no_resource_allow",
    ),
    "a context value given by the caller wins over the derived one": Case(
        ALICE,
        "ecr:BatchGetImage",
        (identity(allow(Condition={"StringEquals": {"aws:username": "someone-else"}})),),
        context={"AWS:UserName": "someone-else"},
    ),
    # -- policy variables ---------------------------------------------------------------------------------
    "IAM docs: ${aws:username} in Resource grants the user's own repositories": Case(
        ALICE,
        "ecr:PutImage",
        (identity(allow("ecr:*", f"arn:aws:ecr:*:{A}:repository/${{aws:username}}/*")),),
        resource=repo("alice/app"),
    ),
    "${aws:username} in Resource does not grant another user's": Case(
        BOB,
        "ecr:PutImage",
        (identity(allow("ecr:*", f"arn:aws:ecr:*:{A}:repository/${{aws:username}}/*")),),
        resource=repo("alice/app"),
        expected="no_identity_allow",
    ),
    "a session has no aws:username, so the variable matches nothing": Case(
        CI_SESSION,
        "ecr:PutImage",
        (identity(allow("ecr:*", f"arn:aws:ecr:*:{A}:repository/${{aws:username}}/*")),),
        resource=repo("ci/app"),
        expected="no_identity_allow",
    ),
    "a variable in a 2008-10-17 policy is literal text": Case(
        ALICE,
        "ecr:PutImage",
        (
            parse_policy(
                json.dumps(
                    {
                        "Version": "2008-10-17",
                        "Statement": [allow("ecr:*", f"arn:aws:ecr:*:{A}:repository/${{aws:username}}/*")],
                    }
                ),
                kind="identity",
            ),
        ),
        resource=repo("alice/app"),
        expected="no_identity_allow",
    ),
    "a variable in a condition value": Case(
        ALICE,
        "ecr:PutImage",
        (identity(allow(Condition={"StringEquals": {"ecr:ResourceTag/owner": "${aws:username}"}})),),
        context={"ecr:ResourceTag/owner": "alice"},
    ),
    # -- cross account: both sides must allow -------------------------------------------------------------
    "IAM docs: cross-account, identity and resource policies both allow": Case(
        PAT_B,
        "ecr:BatchGetImage",
        (identity(allow("ecr:BatchGetImage", repo())),),
        resource(grant({"AWS": f"arn:aws:iam::{B}:root"})),
    ),
    "cross-account, the account named by its ID": Case(
        PAT_B, "ecr:BatchGetImage", (identity(allow()),), resource(grant({"AWS": B}))
    ),
    "cross-account, the user named by ARN": Case(
        PAT_B, "ecr:BatchGetImage", (identity(allow()),), resource(grant({"AWS": PAT_B.arn}))
    ),
    "IAM docs: cross-account without a resource policy": Case(
        PAT_B, "ecr:BatchGetImage", (identity(allow()),), expected="no_resource_allow"
    ),
    "IAM docs: cross-account, the resource policy alone is not enough": Case(
        PAT_B, "ecr:BatchGetImage", resource_policy=resource(grant({"AWS": B})), expected="no_identity_allow"
    ),
    "cross-account, neither side allows": Case(PAT_B, "ecr:BatchGetImage", expected="no_identity_allow"),
    "cross-account, the resource policy names a third account": Case(
        PAT_B, "ecr:BatchGetImage", (identity(allow()),), resource(grant({"AWS": C})), expected="no_resource_allow"
    ),
    "cross-account, the resource policy allows another action": Case(
        PAT_B,
        "ecr:PutImage",
        (identity(allow()),),
        resource(grant({"AWS": B}, "ecr:BatchGetImage")),
        expected="no_resource_allow",
    ),
    "cross-account explicit deny in the resource policy": Case(
        PAT_B,
        "ecr:PutImage",
        (identity(allow()),),
        resource(grant({"AWS": B}), grant("*", "ecr:PutImage", "Deny")),
        expected="explicit_deny_resource",
    ),
    "cross-account explicit deny in the identity policy": Case(
        PAT_B,
        "ecr:PutImage",
        (identity(allow(), deny("ecr:PutImage")),),
        resource(grant({"AWS": B})),
        expected="explicit_deny_identity",
    ),
    # -- the account root user ----------------------------------------------------------------------------
    "root is allowed everything in its account": Case(ROOT_A, "ecr:DeleteRepository", root=True),
    "root is not subject to identity policies": Case(ROOT_A, "ecr:DeleteRepository", (identity(deny()),), root=True),
    "root is denied by a resource policy's explicit deny": Case(
        ROOT_A,
        "ecr:DeleteRepository",
        resource_policy=resource(grant("*", "ecr:Delete*", "Deny")),
        root=True,
        expected="explicit_deny_resource",
    ),
    "another account's root needs the resource policy": Case(
        ROOT_B, "ecr:BatchGetImage", root=True, expected="no_resource_allow"
    ),
    "another account's root is allowed when its account is named": Case(
        ROOT_B, "ecr:BatchGetImage", resource_policy=resource(grant({"AWS": B})), root=True
    ),
    # -- actions without resource-level permissions -------------------------------------------------------
    "GetAuthorizationToken on '*' under a managed policy": Case(
        ALICE, "ecr:GetAuthorizationToken", (READ_ONLY.document,), resource="*", resource_account=None
    ),
    "a repository-scoped Allow does not cover '*'": Case(
        ALICE,
        "ecr:GetAuthorizationToken",
        (identity(allow("ecr:*", repo())),),
        resource="*",
        resource_account=None,
        expected="no_identity_allow",
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_decision(case: Case) -> None:
    request = AuthorizationRequest(
        principal=case.principal,
        action=case.action,
        resource=case.resource,
        resource_account=case.resource_account,
        context=case.context,
    )

    decision = evaluate(request, case.identity_policies, case.resource_policy, is_account_root=case.root)

    assert decision == Decision(case.expected == "allowed", case.expected)


# -- AccessDenied wording --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("principal", "action", "resource_arn", "reason", "message"),
    [
        (
            ALICE,
            "ecr:BatchGetImage",
            repo(),
            "no_identity_allow",
            f"User: arn:aws:iam::{A}:user/alice is not authorized to perform: ecr:BatchGetImage on resource: "
            f"arn:aws:ecr:us-east-1:{A}:repository/app because no identity-based policy allows the "
            "ecr:BatchGetImage action",
        ),
        (
            PAT_B,
            "ecr:DescribeImages",
            repo(),
            "no_resource_allow",
            f"User: arn:aws:iam::{B}:user/pat is not authorized to perform: ecr:DescribeImages on resource: "
            f"arn:aws:ecr:us-east-1:{A}:repository/app because no resource-based policy allows the "
            "ecr:DescribeImages action",
        ),
        (
            CI_SESSION,
            "ecr:PutImage",
            repo(),
            "explicit_deny_identity",
            f"User: arn:aws:sts::{A}:assumed-role/ci/build-42 is not authorized to perform: ecr:PutImage on "
            f"resource: arn:aws:ecr:us-east-1:{A}:repository/app with an explicit deny in an identity-based policy",
        ),
        (
            ALICE,
            "ecr:DeleteRepository",
            repo(),
            "explicit_deny_resource",
            f"User: arn:aws:iam::{A}:user/alice is not authorized to perform: ecr:DeleteRepository on resource: "
            f"arn:aws:ecr:us-east-1:{A}:repository/app with an explicit deny in a resource-based policy",
        ),
        (
            BOB,
            "ecr:GetAuthorizationToken",
            "*",
            "no_identity_allow",
            f"User: arn:aws:iam::{A}:user/bob is not authorized to perform: ecr:GetAuthorizationToken on "
            "resource: * because no identity-based policy allows the ecr:GetAuthorizationToken action",
        ),
    ],
)
def test_denial_message_uses_aws_wording(
    principal: Principal, action: str, resource_arn: str, reason: DecisionReason, message: str
) -> None:
    request = AuthorizationRequest(principal, action, resource_arn, A)

    assert Decision(False, reason).denial_message(request) == message


def test_denial_message_of_an_evaluated_decision() -> None:
    request = AuthorizationRequest(PAT_B, "ecr:BatchGetImage", repo(), A)

    decision = evaluate(request, [identity(allow())], None)

    assert not decision.allowed
    assert decision.denial_message(request).endswith(
        "because no resource-based policy allows the ecr:BatchGetImage action"
    )


def test_an_allowed_decision_has_no_denial_message() -> None:
    request = AuthorizationRequest(ALICE, "ecr:BatchGetImage", repo(), A)

    with pytest.raises(ValueError, match="no denial message"):
        Decision(True, "allowed").denial_message(request)


def test_one_parsed_policy_serves_many_requests() -> None:
    policy = identity(allow("ecr:*", f"arn:aws:ecr:*:{A}:repository/${{aws:username}}/*"))

    decisions = [
        evaluate(AuthorizationRequest(user, "ecr:PutImage", repo(f"{name}/app"), A), [policy], None).allowed
        for user, name in [(ALICE, "alice"), (BOB, "alice"), (BOB, "bob"), (ALICE, "bob")]
    ]

    assert decisions == [True, False, True, False]
