"""The IAM policy language and its evaluation: pure, no I/O, the clock passed in by the caller."""

from ecrd.policy.conditions import CONDITION_OPERATORS, Condition
from ecrd.policy.document import (
    POLICY_VERSIONS,
    Effect,
    PolicyDocument,
    PolicyKind,
    PrincipalSet,
    Statement,
    parse_policy,
)
from ecrd.policy.evaluation import AuthorizationRequest, Decision, DecisionReason, Principal, evaluate
from ecrd.policy.managed import MANAGED_POLICIES, ManagedPolicy, managed_policy

__all__ = [
    "CONDITION_OPERATORS",
    "MANAGED_POLICIES",
    "POLICY_VERSIONS",
    "AuthorizationRequest",
    "Condition",
    "Decision",
    "DecisionReason",
    "Effect",
    "ManagedPolicy",
    "PolicyDocument",
    "PolicyKind",
    "Principal",
    "PrincipalSet",
    "Statement",
    "evaluate",
    "managed_policy",
    "parse_policy",
]
