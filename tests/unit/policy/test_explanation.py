"""The policy check explains the engine's decision statement by statement, and never differs from it."""

from __future__ import annotations

import json

from ecrd.policy.document import parse_policy
from ecrd.policy.evaluation import AuthorizationRequest, Principal, evaluate
from ecrd.policy.explanation import explain

ACCOUNT = "111122223333"
REPOSITORY = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/app"
ALICE = Principal(arn=f"arn:aws:iam::{ACCOUNT}:user/alice", account_id=ACCOUNT)


def _identity(*statements: dict[str, object]) -> tuple[str, object]:
    return "identity policy 1", parse_policy(
        json.dumps({"Version": "2012-10-17", "Statement": list(statements)}), kind="identity"
    )


def test_an_allowing_statement_applies_and_the_others_say_which_part_misses() -> None:
    # given alice's policy: pull from every repository, push nowhere
    name, document = _identity(
        {"Sid": "Pull", "Effect": "Allow", "Action": "ecr:BatchGetImage", "Resource": "*"},
        {"Sid": "OtherRepo", "Effect": "Allow", "Action": "ecr:PutImage", "Resource": REPOSITORY + "-other"},
    )
    request = AuthorizationRequest(ALICE, "ecr:BatchGetImage", REPOSITORY, ACCOUNT)

    # when the engine explains a pull
    explanation = explain(request, [(name, document)], None)  # type: ignore[list-item]

    # then it is allowed, as evaluate decides, by the statement that applies
    assert explanation.decision == evaluate(request, [document], None)  # type: ignore[list-item]
    assert explanation.decision.allowed and explanation.denial_message is None
    pull, other = explanation.statements
    assert pull.applies and pull.says == "allows the request"
    assert not other.applies and other.says == "does not apply: its action, resource do not match"


def test_a_denial_carries_awss_message() -> None:
    request = AuthorizationRequest(ALICE, "ecr:PutImage", REPOSITORY, ACCOUNT)
    explanation = explain(request, [], None)
    assert not explanation.decision.allowed
    assert explanation.denial_message == (
        f"User: {ALICE.arn} is not authorized to perform: ecr:PutImage on resource: {REPOSITORY} "
        "because no identity-based policy allows the ecr:PutImage action"
    )


def test_an_explicit_deny_is_named_and_wins() -> None:
    name, document = _identity(
        {"Effect": "Allow", "Action": "ecr:*", "Resource": "*"},
        {"Sid": "NoPush", "Effect": "Deny", "Action": "ecr:PutImage", "Resource": "*"},
    )
    request = AuthorizationRequest(ALICE, "ecr:PutImage", REPOSITORY, ACCOUNT)
    explanation = explain(request, [(name, document)], None)  # type: ignore[list-item]
    assert not explanation.decision.allowed
    assert [s.says for s in explanation.statements] == ["allows the request", "denies the request"]
    assert explanation.denial_message is not None and explanation.denial_message.endswith(
        "with an explicit deny in an identity-based policy"
    )
