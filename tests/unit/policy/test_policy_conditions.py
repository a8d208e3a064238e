"""Condition operators, set qualifiers, IfExists, missing keys and policy variables, one row per rule."""

from __future__ import annotations

import ipaddress
import time
from datetime import UTC, datetime

import pytest

from ecrd.policy import Condition
from ecrd.policy.conditions import PatternSet, RequestContext

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
ROLE = "arn:aws:iam::123456789012:role/ci"

# (operator, key, policy values, request context, expected)
Row = tuple[str, str, tuple[str, ...], dict[str, object], bool]

ROWS: dict[str, Row] = {
    # strings
    "StringEquals matches exactly": (
        "StringEquals",
        "ecr:ResourceTag/env",
        ("prod",),
        {"ecr:ResourceTag/env": "prod"},
        True,
    ),
    "StringEquals is case-sensitive": ("StringEquals", "k", ("prod",), {"k": "Prod"}, False),
    "values of one key are ORed": ("StringEquals", "k", ("dev", "prod"), {"k": "prod"}, True),
    "condition key names are case-insensitive": (
        "StringEquals",
        "AWS:SourceVpc",
        ("vpc-1",),
        {"aws:sourcevpc": "vpc-1"},
        True,
    ),
    "StringEquals on a missing key is false": ("StringEquals", "k", ("prod",), {}, False),
    "StringNotEquals holds for another value": ("StringNotEquals", "k", ("prod",), {"k": "dev"}, True),
    "StringNotEquals is the NOR of its values": ("StringNotEquals", "k", ("dev", "prod"), {"k": "prod"}, False),
    "StringNotEquals on a missing key is true": ("StringNotEquals", "k", ("prod",), {}, True),
    "StringEqualsIgnoreCase folds case": ("StringEqualsIgnoreCase", "k", ("PROD",), {"k": "prod"}, True),
    "StringNotEqualsIgnoreCase folds case": ("StringNotEqualsIgnoreCase", "k", ("PROD",), {"k": "prod"}, False),
    "StringLike star": ("StringLike", "k", ("team-*",), {"k": "team-a/b"}, True),
    "StringLike question mark is one character": ("StringLike", "k", ("v?",), {"k": "v10"}, False),
    "StringLike without wildcard is exact": ("StringLike", "k", ("abc",), {"k": "abcd"}, False),
    "StringLike is case-sensitive": ("StringLike", "k", ("Team-*",), {"k": "team-a"}, False),
    "StringNotLike": ("StringNotLike", "k", ("team-*",), {"k": "ops"}, True),
    "StringNotLike on a missing key is true": ("StringNotLike", "k", ("team-*",), {}, True),
    "a boolean context value compares as 'true'": ("StringEquals", "k", ("true",), {"k": True}, True),
    # ARNs
    "ArnLike wildcard within a component": (
        "ArnLike",
        "aws:PrincipalArn",
        ("arn:aws:iam::*:role/ci",),
        {"aws:PrincipalArn": ROLE},
        True,
    ),
    "ArnLike wildcard does not cross a colon": (
        "ArnLike",
        "aws:SourceArn",
        ("arn:aws:*:123456789012:role/ci",),
        {"aws:SourceArn": ROLE},
        False,
    ),
    "ArnLike last component may hold colons": (
        "ArnLike",
        "aws:SourceArn",
        ("arn:aws:logs:*:*:log-group:*",),
        {"aws:SourceArn": "arn:aws:logs:us-east-1:1:log-group:a:b"},
        True,
    ),
    "ArnEquals takes wildcards too": (
        "ArnEquals",
        "aws:SourceArn",
        ("arn:aws:iam::123456789012:role/*",),
        {"aws:SourceArn": ROLE},
        True,
    ),
    "ArnNotLike": ("ArnNotLike", "aws:PrincipalArn", ("arn:aws:iam::*:role/admin",), {"aws:PrincipalArn": ROLE}, True),
    "ArnNotEquals on a missing key is true": ("ArnNotEquals", "aws:SourceArn", (ROLE,), {}, True),
    "ArnLike never matches a non-string": ("ArnLike", "k", ("*",), {"k": 5}, False),
    # numbers
    "NumericEquals": ("NumericEquals", "n", ("10",), {"n": 10}, True),
    "NumericEquals compares numbers, not text": ("NumericEquals", "n", ("10",), {"n": "10.0"}, True),
    "NumericNotEquals": ("NumericNotEquals", "n", ("10",), {"n": 11}, True),
    "NumericLessThan": ("NumericLessThan", "n", ("10",), {"n": 9.5}, True),
    "NumericLessThan at the bound": ("NumericLessThan", "n", ("10",), {"n": 10}, False),
    "NumericLessThanEquals": ("NumericLessThanEquals", "n", ("10",), {"n": 10}, True),
    "NumericGreaterThan": ("NumericGreaterThan", "n", ("10",), {"n": 11}, True),
    "NumericGreaterThanEquals": ("NumericGreaterThanEquals", "n", ("10",), {"n": 9}, False),
    "a non-numeric context value matches no number": ("NumericLessThan", "n", ("10",), {"n": "many"}, False),
    "a boolean is not a number": ("NumericEquals", "n", ("1",), {"n": True}, False),
    # dates
    "DateGreaterThan ISO 8601": (
        "DateGreaterThan",
        "aws:CurrentTime",
        ("2024-01-01T00:00:00Z",),
        {"aws:CurrentTime": NOW},
        True,
    ),
    "DateLessThan ISO 8601": (
        "DateLessThan",
        "aws:CurrentTime",
        ("2024-01-01T00:00:00Z",),
        {"aws:CurrentTime": NOW},
        False,
    ),
    "DateLessThan epoch seconds": ("DateLessThan", "aws:CurrentTime", ("1717243200",), {"aws:CurrentTime": NOW}, False),
    "DateLessThanEquals epoch seconds at the bound": (
        "DateLessThanEquals",
        "aws:CurrentTime",
        ("1717243200",),
        {"aws:CurrentTime": NOW},
        True,
    ),
    "DateEquals across time zones": (
        "DateEquals",
        "aws:CurrentTime",
        ("2024-06-01T14:00:00+02:00",),
        {"aws:CurrentTime": NOW},
        True,
    ),
    "DateNotEquals": ("DateNotEquals", "aws:CurrentTime", ("2024-06-01",), {"aws:CurrentTime": NOW}, True),
    "DateGreaterThanEquals with an ISO context string": (
        "DateGreaterThanEquals",
        "d",
        ("2024-06-01",),
        {"d": "2024-06-01T00:00:00Z"},
        True,
    ),
    "a naive datetime is UTC": ("DateEquals", "d", ("2024-06-01T12:00:00Z",), {"d": datetime(2024, 6, 1, 12)}, True),
    "an epoch context value": ("DateEquals", "d", ("2024-06-01T12:00:00Z",), {"d": 1717243200}, True),
    "an unparseable context date matches nothing": ("DateGreaterThan", "d", ("2024-06-01",), {"d": "soon"}, False),
    # booleans
    "Bool true": ("Bool", "aws:SecureTransport", ("true",), {"aws:SecureTransport": True}, True),
    "Bool false does not match true": ("Bool", "aws:SecureTransport", ("false",), {"aws:SecureTransport": True}, False),
    "Bool from a string context value": (
        "Bool",
        "aws:MultiFactorAuthPresent",
        ("true",),
        {"aws:MultiFactorAuthPresent": "TRUE"},
        True,
    ),
    "Bool on a missing key is false": ("Bool", "aws:MultiFactorAuthPresent", ("true",), {}, False),
    # binary
    "BinaryEquals": ("BinaryEquals", "k", ("QmluYXJ5",), {"k": b"Binary"}, True),
    # IP addresses
    "IpAddress in range": ("IpAddress", "aws:SourceIp", ("203.0.113.0/24",), {"aws:SourceIp": "203.0.113.7"}, True),
    "IpAddress out of range": (
        "IpAddress",
        "aws:SourceIp",
        ("203.0.113.0/24",),
        {"aws:SourceIp": "198.51.100.7"},
        False,
    ),
    "IpAddress single address": ("IpAddress", "aws:SourceIp", ("203.0.113.7",), {"aws:SourceIp": "203.0.113.7"}, True),
    "IpAddress IPv6": ("IpAddress", "aws:SourceIp", ("2001:db8::/32",), {"aws:SourceIp": "2001:db8::1"}, True),
    "IpAddress never mixes IP versions": ("IpAddress", "aws:SourceIp", ("::/0",), {"aws:SourceIp": "0.0.0.1"}, False),
    "IpAddress takes an address object": (
        "IpAddress",
        "aws:SourceIp",
        ("10.0.0.0/8",),
        {"aws:SourceIp": ipaddress.ip_address("10.1.2.3")},
        True,
    ),
    "NotIpAddress": ("NotIpAddress", "aws:SourceIp", ("203.0.113.0/24",), {"aws:SourceIp": "198.51.100.7"}, True),
    "NotIpAddress on a missing key is true": ("NotIpAddress", "aws:SourceIp", ("203.0.113.0/24",), {}, True),
    "a garbage address is in no range": (
        "IpAddress",
        "aws:SourceIp",
        ("0.0.0.0/0",),
        {"aws:SourceIp": "localhost"},
        False,
    ),
    # Null
    "Null true holds when the key is absent": ("Null", "aws:TokenIssueTime", ("true",), {}, True),
    "Null true fails when the key is present": (
        "Null",
        "aws:TokenIssueTime",
        ("true",),
        {"aws:TokenIssueTime": NOW},
        False,
    ),
    "Null false holds when the key is present": (
        "Null",
        "aws:TokenIssueTime",
        ("false",),
        {"aws:TokenIssueTime": NOW},
        True,
    ),
    "Null treats an empty set as absent": ("Null", "aws:TagKeys", ("true",), {"aws:TagKeys": []}, True),
    # IfExists
    "IfExists holds when the key is absent": ("StringLikeIfExists", "ec2:InstanceType", ("t1.*", "t2.*"), {}, True),
    "IfExists checks the key when present": (
        "StringLikeIfExists",
        "ec2:InstanceType",
        ("t1.*", "t2.*"),
        {"ec2:InstanceType": "m5.large"},
        False,
    ),
    "negated IfExists when present": ("StringNotEqualsIfExists", "k", ("a",), {"k": "a"}, False),
    "NumericLessThanIfExists absent": ("NumericLessThanIfExists", "n", ("1",), {}, True),
    # set qualifiers
    "ForAllValues every request value is allowed": (
        "ForAllValues:StringEquals",
        "aws:TagKeys",
        ("env", "team"),
        {"aws:TagKeys": ["env", "team"]},
        True,
    ),
    "ForAllValues one request value is not": (
        "ForAllValues:StringEquals",
        "aws:TagKeys",
        ("env", "team"),
        {"aws:TagKeys": ["env", "cost"]},
        False,
    ),
    "ForAllValues with an empty set is true": (
        "ForAllValues:StringLike",
        "aws:TagKeys",
        ("key1*",),
        {"aws:TagKeys": []},
        True,
    ),
    "ForAllValues with a missing key is true": ("ForAllValues:StringLike", "aws:TagKeys", ("key1*",), {}, True),
    "ForAnyValue one request value matches": (
        "ForAnyValue:StringEquals",
        "aws:TagKeys",
        ("env",),
        {"aws:TagKeys": ["cost", "env"]},
        True,
    ),
    "ForAnyValue no request value matches": (
        "ForAnyValue:StringEquals",
        "aws:TagKeys",
        ("env",),
        {"aws:TagKeys": ["cost"]},
        False,
    ),
    "ForAnyValue with an empty set is false": (
        "ForAnyValue:StringEquals",
        "aws:TagKeys",
        ("env",),
        {"aws:TagKeys": []},
        False,
    ),
    "ForAnyValue negated with a missing key is false": (
        "ForAnyValue:StringNotEquals",
        "aws:TagKeys",
        ("env",),
        {},
        False,
    ),
    "ForAllValues negated: no request value may be listed": (
        "ForAllValues:StringNotEquals",
        "aws:TagKeys",
        ("secret",),
        {"aws:TagKeys": ["env", "secret"]},
        False,
    ),
    "ForAllValues negated with an empty set is true": (
        "ForAllValues:StringNotEquals",
        "aws:TagKeys",
        ("secret",),
        {"aws:TagKeys": []},
        True,
    ),
    "ForAnyValue negated: some request value unlisted": (
        "ForAnyValue:StringNotEquals",
        "aws:TagKeys",
        ("secret",),
        {"aws:TagKeys": ["env", "secret"]},
        True,
    ),
    "ForAnyValue IfExists with a missing key is true": (
        "ForAnyValue:StringEqualsIfExists",
        "aws:TagKeys",
        ("env",),
        {},
        True,
    ),
    "a single value counts as a one-element set": (
        "ForAllValues:StringEquals",
        "aws:TagKeys",
        ("env",),
        {"aws:TagKeys": "env"},
        True,
    ),
    "without a qualifier a multivalued key matches on any value": (
        "StringEquals",
        "aws:TagKeys",
        ("env",),
        {"aws:TagKeys": ["cost", "env"]},
        True,
    ),
    "without a qualifier a negated operator needs no value to match": (
        "StringNotEquals",
        "aws:TagKeys",
        ("env",),
        {"aws:TagKeys": ["cost", "env"]},
        False,
    ),
    # policy variables in values
    "StringEquals with a policy variable": (
        "StringEquals",
        "ecr:ResourceTag/owner",
        ("${aws:username}",),
        {"ecr:ResourceTag/owner": "alice", "aws:username": "alice"},
        True,
    ),
    "StringLike with a policy variable and a wildcard": (
        "StringLike",
        "s3:prefix",
        ("home/${aws:username}/*",),
        {"s3:prefix": "home/alice/docs", "aws:username": "alice"},
        True,
    ),
    "a substituted value is literal, not a wildcard": (
        "StringLike",
        "k",
        ("${aws:username}",),
        {"k": "alice", "aws:username": "*"},
        False,
    ),
    "a variable with no value matches nothing": ("StringEquals", "k", ("${aws:username}",), {"k": ""}, False),
    "a variable's default applies when it has no value": (
        "StringEquals",
        "k",
        ("${aws:username, 'nobody'}",),
        {"k": "nobody"},
        True,
    ),
    "escaped characters are literal": ("StringLike", "k", ("a${*}b${?}${$}",), {"k": "a*b?$"}, True),
    "escaped star matches only a star": ("StringLike", "k", ("a${*}",), {"k": "abc"}, False),
    "a multivalued key is no variable": (
        "StringEquals",
        "k",
        ("${aws:TagKeys}",),
        {"k": "env", "aws:TagKeys": ["env"]},
        False,
    ),
    "variables are substituted case-insensitively by key": (
        "StringEquals",
        "k",
        ("${AWS:UserName}",),
        {"k": "bob", "aws:username": "bob"},
        True,
    ),
}


@pytest.mark.parametrize(("operator", "key", "values", "context", "expected"), list(ROWS.values()), ids=list(ROWS))
def test_condition(
    operator: str, key: str, values: tuple[str, ...], context: dict[str, object], expected: bool
) -> None:
    condition = Condition(operator, key, values)

    assert condition.evaluate(RequestContext(context)) is expected


def test_policy_variables_are_text_when_disabled() -> None:
    condition = Condition("StringEquals", "k", ("${aws:username}",), policy_variables=False)

    assert condition.evaluate(RequestContext({"k": "${aws:username}", "aws:username": "alice"}))


def test_operator_names_are_canonicalized() -> None:
    condition = Condition("forallvalues:stringequalsifexists", "k", ("a",))

    assert condition.operator == "ForAllValues:StringEqualsIfExists"
    assert (condition.qualifier, condition.if_exists, condition.negated) == ("ForAllValues", True, False)


def test_glob_matching_does_not_backtrack_exponentially() -> None:
    # A translated ".*a.*a.*a..." regex needs far longer than any test budget on this input.
    patterns = PatternSet(["*a*a*a*a*a*a*a*a*a*a*a*a*b"], case_sensitive=True, policy_variables=False)
    arns = PatternSet(["arn:*:*:*:*:*a*a*a*a*a*a*a*a*a*a*b"], case_sensitive=True, policy_variables=False, arn=True)
    subject = "a" * 20_000

    started = time.perf_counter()
    assert not patterns.matches(subject, RequestContext({}))
    assert not arns.matches(f"arn:aws:ecr:r:1:{subject}", RequestContext({}))
    assert time.perf_counter() - started < 2.0


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("ecr:*", "ECR:BatchGetImage", True),
        ("ecr:Batch*", "ecr:batchgetimage", True),
        ("ecr:Get?ownloadUrlForLayer", "ecr:GetDownloadUrlForLayer", True),
        ("ecr:*Image", "ecr:BatchGetImages", False),
        ("*", "anything:At-All", True),
    ],
)
def test_action_patterns_ignore_case(pattern: str, value: str, expected: bool) -> None:
    assert (
        PatternSet([pattern], case_sensitive=False, policy_variables=False).matches(value, RequestContext({}))
        is expected
    )
