"""Parsing and validating policy documents: what parses into what, and what is refused with which message."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecrd.errors import MalformedPolicyDocument
from ecrd.policy import PolicyDocument, PrincipalSet, Statement, parse_policy
from ecrd.policy.document import PolicyKind

ACCOUNT = "123456789012"
REPO = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/app"


def doc(*statements: dict[str, Any], version: str | None = "2012-10-17") -> str:
    document: dict[str, Any] = {"Statement": list(statements)}
    if version is not None:
        document["Version"] = version
    return json.dumps(document)


# -- what parses -----------------------------------------------------------------------------------------


def test_identity_policy_parses_into_frozen_statements() -> None:
    policy = parse_policy(
        doc({"Sid": "Pull", "Effect": "Allow", "Action": "ecr:BatchGetImage", "Resource": REPO}),
        kind="identity",
    )

    assert policy == PolicyDocument(
        version="2012-10-17",
        statements=(Statement(sid="Pull", effect="Allow", actions=("ecr:BatchGetImage",), resources=(REPO,)),),
    )
    with pytest.raises(AttributeError):
        policy.statements[0].effect = "Deny"  # type: ignore[misc]


def test_statement_may_be_a_single_object_and_action_a_list() -> None:
    text = json.dumps(
        {
            "Version": "2012-10-17",
            "Id": "policy-1",
            "Statement": {"Effect": "Deny", "Action": ["ecr:PutImage", "ecr:Delete*"], "NotResource": [REPO]},
        }
    )

    policy = parse_policy(text, kind="identity")

    assert policy.id == "policy-1"
    (statement,) = policy.statements
    assert statement.effect == "Deny"
    assert statement.actions == ("ecr:PutImage", "ecr:Delete*")
    assert statement.not_resources == (REPO,)
    assert statement.resources is None


def test_missing_version_means_2008_10_17() -> None:
    policy = parse_policy(doc({"Effect": "Allow", "Action": "*", "Resource": "*"}, version=None), kind="identity")

    assert policy.version == "2008-10-17"
    assert policy.statements[0].policy_variables is False


def test_repository_policy_needs_no_resource() -> None:
    policy = parse_policy(
        doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "ecr:*"}),
        kind="resource",
    )

    statement = policy.statements[0]
    assert statement.resources is None and statement.not_resources is None
    assert statement.principals == PrincipalSet(aws=(f"arn:aws:iam::{ACCOUNT}:root",))


def test_resource_policy_keeps_a_resource_when_present() -> None:
    policy = parse_policy(
        doc({"Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage", "Resource": REPO}),
        kind="resource",
    )

    assert policy.statements[0].resources == (REPO,)
    assert policy.statements[0].principals == PrincipalSet(everyone=True)


@pytest.mark.parametrize(
    ("principal", "expected"),
    [
        ("*", PrincipalSet(everyone=True)),
        ({"AWS": "*"}, PrincipalSet(aws=("*",))),
        ({"AWS": ACCOUNT}, PrincipalSet(aws=(ACCOUNT,))),
        (
            {"AWS": [f"arn:aws:iam::{ACCOUNT}:user/alice", f"arn:aws:iam::{ACCOUNT}:role/ci"]},
            PrincipalSet(aws=(f"arn:aws:iam::{ACCOUNT}:user/alice", f"arn:aws:iam::{ACCOUNT}:role/ci")),
        ),
        ({"Service": "codebuild.amazonaws.com"}, PrincipalSet(service=("codebuild.amazonaws.com",))),
        (
            {"AWS": f"arn:aws:sts::{ACCOUNT}:assumed-role/ci/build-7", "Federated": "cognito-identity.amazonaws.com"},
            PrincipalSet(
                aws=(f"arn:aws:sts::{ACCOUNT}:assumed-role/ci/build-7",),
                federated=("cognito-identity.amazonaws.com",),
            ),
        ),
    ],
)
def test_principal_forms(principal: object, expected: PrincipalSet) -> None:
    policy = parse_policy(doc({"Effect": "Allow", "Principal": principal, "Action": "ecr:*"}), kind="resource")

    assert policy.statements[0].principals == expected


def test_condition_values_of_any_json_scalar_become_strings() -> None:
    policy = parse_policy(
        doc(
            {
                "Effect": "Allow",
                "Action": "ecr:*",
                "Resource": "*",
                "Condition": {
                    "Bool": {"aws:SecureTransport": True},
                    "NumericLessThan": {"s3:max-keys": [10, 2.5]},
                    "forallvalues:stringlikeifexists": {"aws:TagKeys": ["env", "team*"]},
                },
            }
        ),
        kind="identity",
    )

    conditions = policy.statements[0].conditions
    assert [(c.operator, c.key, c.values) for c in conditions] == [
        ("Bool", "aws:SecureTransport", ("true",)),
        ("NumericLessThan", "s3:max-keys", ("10", "2.5")),
        ("ForAllValues:StringLikeIfExists", "aws:TagKeys", ("env", "team*")),
    ]


def test_every_documented_operator_parses_with_and_without_if_exists() -> None:
    samples = {
        "String": "x",
        "Arn": "arn:aws:iam::123456789012:root",
        "Numeric": "1",
        "Date": "2024-01-01T00:00:00Z",
        "Bool": "true",
        "Binary": "QmluYXJ5",
        "IpAddress": "10.0.0.0/8",
        "NotIpAddress": "10.0.0.0/8",
        "Null": "true",
    }
    operators = [
        *(f"String{s}" for s in ("Equals", "NotEquals", "EqualsIgnoreCase", "NotEqualsIgnoreCase", "Like", "NotLike")),
        *(f"Arn{s}" for s in ("Equals", "Like", "NotEquals", "NotLike")),
        *(
            f"{family}{s}"
            for family in ("Numeric", "Date")
            for s in ("Equals", "NotEquals", "LessThan", "LessThanEquals", "GreaterThan", "GreaterThanEquals")
        ),
        "Bool",
        "BinaryEquals",
        "IpAddress",
        "NotIpAddress",
    ]
    for name in operators:
        value = next(v for prefix, v in samples.items() if name.startswith(prefix))
        for variant in (name, f"{name}IfExists", f"ForAnyValue:{name}", f"ForAllValues:{name}IfExists"):
            parse_policy(
                doc({"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {variant: {"k": value}}}),
                kind="identity",
            )
    parse_policy(
        doc({"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"Null": {"k": "true"}}}), kind="identity"
    )


# -- what is refused, and how it is described ------------------------------------------------------------

ALLOW_ALL = {"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}


def with_(**changes: Any) -> dict[str, Any]:
    statement = {**ALLOW_ALL, **changes}
    return {key: value for key, value in statement.items() if value is not None}


PARSE_ERRORS: list[tuple[str, PolicyKind, str, str]] = [
    ("empty text", "identity", "", "Invalid policy document: the policy is empty"),
    (
        "not json",
        "identity",
        "{",
        "Invalid policy document: not valid JSON "
        "(Expecting property name enclosed in double quotes at line 1 column 2)",
    ),
    ("NaN literal", "identity", '{"Version": NaN}', "Invalid policy document: 'NaN' is not valid JSON"),
    ("json array", "identity", "[]", "Invalid policy document: the policy must be a JSON object"),
    (
        "duplicate key",
        "identity",
        '{"Statement": [], "Statement": []}',
        "Invalid policy document: duplicate key 'Statement'",
    ),
    (
        "unknown top-level element",
        "identity",
        json.dumps({"Statement": [ALLOW_ALL], "Foo": 1}),
        "Invalid policy document: unknown element 'Foo'",
    ),
    (
        "bad version",
        "identity",
        doc(ALLOW_ALL, version="2020-01-01"),
        'Invalid policy document: Version: must be one of 2012-10-17, 2008-10-17, not "2020-01-01"',
    ),
    (
        "version not a string",
        "identity",
        json.dumps({"Version": 2012, "Statement": [ALLOW_ALL]}),
        "Invalid policy document: Version: must be one of 2012-10-17, 2008-10-17, not 2012",
    ),
    (
        "id not a string",
        "identity",
        json.dumps({"Id": 1, "Statement": [ALLOW_ALL]}),
        "Invalid policy document: Id: must be a string",
    ),
    (
        "missing statement",
        "identity",
        json.dumps({"Version": "2012-10-17"}),
        "Invalid policy document: missing Statement",
    ),
    ("empty statement list", "identity", doc(), "Invalid policy document: Statement: must not be empty"),
    (
        "statement a string",
        "identity",
        json.dumps({"Statement": "x"}),
        "Invalid policy document: Statement: must be an object or a list of objects",
    ),
    (
        "statement item not an object",
        "identity",
        json.dumps({"Statement": [ALLOW_ALL, "x"]}),
        "Invalid policy document: Statement[1]: must be an object",
    ),
    (
        "missing effect",
        "identity",
        doc(ALLOW_ALL, with_(Effect=None)),
        "Invalid policy document: Statement[1]: missing Effect",
    ),
    (
        "lower-case effect",
        "identity",
        doc(with_(Effect="allow")),
        "Invalid policy document: Statement[0]: Effect must be 'Allow' or 'Deny', not \"allow\"",
    ),
    (
        "unknown statement element",
        "identity",
        doc(with_(Actions="ecr:*")),
        "Invalid policy document: Statement[0]: unknown element 'Actions'",
    ),
    ("sid not a string", "identity", doc(with_(Sid=1)), "Invalid policy document: Statement[0]: Sid must be a string"),
    ("missing action", "identity", doc(with_(Action=None)), "Invalid policy document: Statement[0]: missing Action"),
    (
        "action and notaction",
        "identity",
        doc(with_(NotAction="ecr:*")),
        "Invalid policy document: Statement[0]: has both Action and NotAction",
    ),
    (
        "action without service",
        "identity",
        doc(with_(Action="BatchGetImage")),
        "Invalid policy document: Statement[0]: Action 'BatchGetImage' is not of the form 'service:Action' or '*'",
    ),
    (
        "action with space",
        "identity",
        doc(with_(Action="ecr:Batch Get")),
        "Invalid policy document: Statement[0]: Action 'ecr:Batch Get' is not of the form 'service:Action' or '*'",
    ),
    (
        "empty action list",
        "identity",
        doc(with_(Action=[])),
        "Invalid policy document: Statement[0]: Action must not be empty",
    ),
    (
        "action not a string",
        "identity",
        doc(with_(Action=["ecr:*", 3])),
        "Invalid policy document: Statement[0]: Action must be a string or a list of strings",
    ),
    (
        "identity without resource",
        "identity",
        doc(with_(Resource=None)),
        "Invalid policy document: Statement[0]: missing Resource",
    ),
    (
        "resource and notresource",
        "identity",
        doc(with_(NotResource="*")),
        "Invalid policy document: Statement[0]: has both Resource and NotResource",
    ),
    (
        "resource not an arn",
        "identity",
        doc(with_(Resource="repository/app")),
        "Invalid policy document: Statement[0]: Resource 'repository/app' must be '*' or an ARN",
    ),
    (
        "identity with principal",
        "identity",
        doc(with_(Principal="*")),
        "Invalid policy document: Statement[0]: Principal is not allowed in an identity-based policy",
    ),
    (
        "identity with notprincipal",
        "identity",
        doc(with_(NotPrincipal="*")),
        "Invalid policy document: Statement[0]: NotPrincipal is not allowed in an identity-based policy",
    ),
    (
        "resource policy without principal",
        "resource",
        doc(ALLOW_ALL),
        "Invalid policy document: Statement[0]: missing Principal",
    ),
    (
        "principal and notprincipal",
        "resource",
        doc(with_(Principal="*", NotPrincipal="*")),
        "Invalid policy document: Statement[0]: has both Principal and NotPrincipal",
    ),
    (
        "principal a bare account",
        "resource",
        doc(with_(Principal=ACCOUNT)),
        'Invalid policy document: Statement[0]: Principal must be "*" or an object such as {"AWS": ...}',
    ),
    (
        "unknown principal type",
        "resource",
        doc(with_(Principal={"Aws": "*"})),
        "Invalid policy document: Statement[0]: Principal has unknown principal type 'Aws'",
    ),
    (
        "empty principal object",
        "resource",
        doc(with_(Principal={})),
        "Invalid policy document: Statement[0]: Principal must not be empty",
    ),
    (
        "wildcard in principal arn",
        "resource",
        doc(with_(Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:user/*"})),
        f"Invalid policy document: Statement[0]: invalid principal 'arn:aws:iam::{ACCOUNT}:user/*': "
        "use '*', an account ID or an IAM/STS ARN",
    ),
    (
        "principal not an arn",
        "resource",
        doc(with_(Principal={"AWS": "alice"})),
        "Invalid policy document: Statement[0]: invalid principal 'alice': use '*', an account ID or an IAM/STS ARN",
    ),
    (
        "condition not an object",
        "identity",
        doc(with_(Condition=[])),
        "Invalid policy document: Statement[0]: Condition must be an object",
    ),
    (
        "unknown operator",
        "identity",
        doc(with_(Condition={"StringEqual": {"k": "v"}})),
        "Invalid policy document: Statement[0]: Condition: unknown condition operator 'StringEqual'",
    ),
    (
        "unknown set qualifier",
        "identity",
        doc(with_(Condition={"ForEachValue:StringEquals": {"k": "v"}})),
        "Invalid policy document: Statement[0]: Condition: unknown condition operator 'ForEachValue:StringEquals'",
    ),
    (
        "null if exists",
        "identity",
        doc(with_(Condition={"NullIfExists": {"k": "true"}})),
        "Invalid policy document: Statement[0]: Condition: the Null operator cannot take the IfExists suffix",
    ),
    (
        "operator block not an object",
        "identity",
        doc(with_(Condition={"StringEquals": "v"})),
        "Invalid policy document: Statement[0]: Condition operator 'StringEquals' must map condition keys to values",
    ),
    (
        "empty value list",
        "identity",
        doc(with_(Condition={"StringEquals": {"k": []}})),
        "Invalid policy document: Statement[0]: Condition 'StringEquals' on 'k' has no values",
    ),
    (
        "nested value",
        "identity",
        doc(with_(Condition={"StringEquals": {"k": {"a": "b"}}})),
        "Invalid policy document: Statement[0]: condition values must be strings, numbers or booleans",
    ),
    (
        "null value",
        "identity",
        doc(with_(Condition={"StringEquals": {"k": None}})),
        "Invalid policy document: Statement[0]: condition values must be strings, numbers or booleans",
    ),
    (
        "bad date",
        "identity",
        doc(with_(Condition={"DateGreaterThan": {"aws:CurrentTime": "tomorrow"}})),
        "Invalid policy document: Statement[0]: Condition: 'tomorrow' is not an ISO 8601 date or an epoch time",
    ),
    (
        "bad number",
        "identity",
        doc(with_(Condition={"NumericEquals": {"k": "ten"}})),
        "Invalid policy document: Statement[0]: Condition: 'ten' is not a number",
    ),
    (
        "bad bool",
        "identity",
        doc(with_(Condition={"Bool": {"aws:SecureTransport": "yes"}})),
        "Invalid policy document: Statement[0]: Condition: 'yes' is not true or false",
    ),
    (
        "bad cidr",
        "identity",
        doc(with_(Condition={"IpAddress": {"aws:SourceIp": "10.0.0.300/8"}})),
        "Invalid policy document: Statement[0]: Condition: '10.0.0.300/8' is not an IP address or CIDR range",
    ),
    (
        "bad base64",
        "identity",
        doc(with_(Condition={"BinaryEquals": {"k": "***"}})),
        "Invalid policy document: Statement[0]: Condition: '***' is not base64",
    ),
    (
        "bad variable in condition",
        "identity",
        doc(with_(Condition={"StringEquals": {"k": "${}"}})),
        "Invalid policy document: Statement[0]: Condition: invalid policy variable '${}'",
    ),
    (
        "bad variable in resource",
        "identity",
        doc(with_(Resource=f"{REPO}/${{aws:username, default}}")),
        "Invalid policy document: Statement[0]: invalid policy variable '${aws:username, default}'",
    ),
]


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [pytest.param(kind, text, message, id=name) for name, kind, text, message in PARSE_ERRORS],
)
def test_invalid_policy_is_refused_with_a_message_naming_the_problem(kind: PolicyKind, text: str, message: str) -> None:
    with pytest.raises(MalformedPolicyDocument) as raised:
        parse_policy(text, kind=kind)

    assert raised.value.message == message
    assert str(raised.value) == message


def test_policy_variables_are_literal_text_in_version_2008() -> None:
    # IAM reads ${...} only in 2012-10-17 policies, so an ill-formed one is not an error in older versions.
    parse_policy(doc(with_(Resource=f"{REPO}/${{}}"), version="2008-10-17"), kind="identity")


def test_deep_nesting_is_refused_not_crashed() -> None:
    with pytest.raises(MalformedPolicyDocument, match="not valid JSON"):
        parse_policy("[" * 100_000 + "]" * 100_000, kind="identity")


def test_huge_integer_is_refused_not_crashed() -> None:
    with pytest.raises(MalformedPolicyDocument, match="not valid JSON"):
        parse_policy('{"Version": ' + "9" * 10_000 + "}", kind="identity")


def test_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="kind must be"):
        parse_policy(doc(ALLOW_ALL), kind="group")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"effect": "Allow"}, "exactly one of actions and not_actions"),
        ({"effect": "Allow", "actions": ("*",), "not_actions": ("*",)}, "exactly one of actions and not_actions"),
        (
            {"effect": "Allow", "actions": ("*",), "resources": ("*",), "not_resources": ("*",)},
            "at most one of resources",
        ),
        (
            {
                "effect": "Allow",
                "actions": ("*",),
                "principals": PrincipalSet(everyone=True),
                "not_principals": PrincipalSet(everyone=True),
            },
            "at most one of principals",
        ),
    ],
)
def test_statement_built_in_code_checks_its_shape(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Statement(**fields)


# -- properties ------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=25,
)

# Values drawn mostly from the policy grammar's own vocabulary, so that generated documents get past the
# first checks and exercise the deeper ones.
words = st.sampled_from(
    [
        "*",
        "ecr:*",
        "ecr:BatchGetImage",
        "ecr:Get?",
        "Allow",
        "Deny",
        "2012-10-17",
        "2008-10-17",
        REPO,
        f"{REPO}/${{aws:username}}",
        "${",
        "${*}",
        ACCOUNT,
        f"arn:aws:iam::{ACCOUNT}:root",
        "10.0.0.0/8",
        "2024-01-01",
        "true",
        "1.5",
        "",
        "arn:",
        "x",
    ]
)
keys = st.sampled_from(
    [
        "Version",
        "Id",
        "Statement",
        "Sid",
        "Effect",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Principal",
        "NotPrincipal",
        "Condition",
        "AWS",
        "Service",
        "StringEquals",
        "ForAnyValue:StringLike",
        "DateLessThanIfExists",
        "IpAddress",
        "Null",
        "Bool",
        "NumericGreaterThan",
        "aws:SourceIp",
        "Bogus",
    ]
)
policy_like = st.recursive(
    words | st.booleans() | st.integers(-3, 3) | st.none(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=6),
    max_leaves=40,
)


def assert_parses_or_is_malformed(text: str) -> None:
    kinds: tuple[PolicyKind, ...] = ("identity", "resource")
    for kind in kinds:
        try:
            policy = parse_policy(text, kind=kind)
        except MalformedPolicyDocument as error:
            assert error.message.startswith("Invalid policy document: ")
        else:
            assert isinstance(policy, PolicyDocument)


@settings(max_examples=300, database=None, deadline=None)
@given(json_values)
def test_arbitrary_json_parses_or_raises_malformed_policy_document(value: object) -> None:
    assert_parses_or_is_malformed(json.dumps(value))


@settings(max_examples=500, database=None, deadline=None)
@given(policy_like)
def test_policy_shaped_json_parses_or_raises_malformed_policy_document(value: object) -> None:
    assert_parses_or_is_malformed(json.dumps(value))


@settings(max_examples=300, database=None, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_parses_or_raises_malformed_policy_document(text: str) -> None:
    assert_parses_or_is_malformed(text)
