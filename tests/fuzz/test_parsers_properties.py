"""Every parser of client input, fed hostile input by Hypothesis: only ecrd errors escape, valid input round-trips.

Parsers covered here: manifests and indexes, digests, ``Range`` headers, repository names and tags, policy
evaluation over parsed policies, pagination tokens (ECR's), the botocore-shape checks of JSON input and the
Query form decoding, registry passwords and the Basic credentials that carry them. Policy *parsing* and the
SigV4 header parser have their own properties in ``tests/unit/policy`` and ``tests/unit/aws``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from datetime import UTC
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ecrd.aws import ecr, iam, kms, sts
from ecrd.aws.models import service_model
from ecrd.aws.shapes import ShapeViolation, convert, query_input, validation_error
from ecrd.domain import media_types as mt
from ecrd.domain.digests import Digest, is_digest
from ecrd.domain.manifests import MAX_MANIFEST_BYTES, parse_manifest
from ecrd.domain.names import check_repository_name, check_tag, is_repository_name, is_tag
from ecrd.domain.pages import Page
from ecrd.errors import (
    DigestInvalid,
    EcrdError,
    InvalidParameter,
    MalformedPolicyDocument,
    ManifestInvalid,
    ManifestTooLarge,
    NameInvalid,
    RangeNotSatisfiable,
    TagInvalid,
    TokenExpiredDenied,
    TokenInvalid,
    UnsupportedMediaType,
    UnsupportedOperation,
)
from ecrd.oci.responses import parse_range
from ecrd.policy import AuthorizationRequest, Principal, evaluate, parse_policy
from ecrd.services.access import Caller, CallerKind
from ecrd.services.identity import TokenAuthenticator
from ecrd.services.secrets import SecretBox
from ecrd.services.tokens import RegistryTokens
from tests.support.clock import FakeClock
from tests.support.fuzzing import JSON_VALUES, fuzz_settings, json_body, mutate_json, query_form, shape_values

pytestmark = pytest.mark.fuzz

HEX = "0123456789abcdef"


def outcome(call: Any) -> Any:
    """What ``call()`` returns or the ecrd error it raises; any other exception fails the test."""
    try:
        return call()
    except EcrdError as error:
        return error


# -- digests -----------------------------------------------------------------------------------------------

valid_digests = st.one_of(
    st.text(HEX, min_size=64, max_size=64).map(lambda h: f"sha256:{h}"),
    st.text(HEX, min_size=128, max_size=128).map(lambda h: f"sha512:{h}"),
)
digest_like = st.one_of(
    st.text(max_size=80),
    st.tuples(
        st.sampled_from(["sha256", "sha512", "md5", "SHA256", "sha256+b64", ""]),
        st.sampled_from([":", "", "::", "%3a"]),
        st.text(HEX + "ABCDEF=_-./\x00", max_size=140),
    ).map("".join),
    valid_digests.map(lambda d: d + "\n"),
    valid_digests.map(lambda d: "../" + d),
)


@fuzz_settings(400)
@given(valid_digests)
def test_valid_digests_round_trip(text: str) -> None:
    parsed = Digest.parse(text)
    assert str(parsed) == text
    assert is_digest(text)
    assert Digest.parse(str(parsed)) == parsed


@fuzz_settings(600)
@given(digest_like)
def test_any_digest_text_parses_or_is_refused_as_invalid_or_unsupported(text: str) -> None:
    parsed = outcome(lambda: Digest.parse(text))
    assert isinstance(parsed, Digest | DigestInvalid | UnsupportedOperation)
    if isinstance(parsed, Digest):
        # What reaches a path is hex of the registered length after a known algorithm: no '/', no '.'.
        assert parsed.algorithm in ("sha256", "sha512")
        assert set(parsed.encoded) <= set(HEX)
        assert str(parsed) == text
    if isinstance(parsed, EcrdError):
        assert len(parsed.message) < 400  # the echo of hostile input is bounded


def test_digest_of_bytes_is_what_parse_reads_back() -> None:
    digest = Digest.of(b"hello")
    assert Digest.parse(str(digest)) == digest
    assert digest.encoded == hashlib.sha256(b"hello").hexdigest()


# -- repository names and tags -----------------------------------------------------------------------------

component = st.from_regex(r"[a-z0-9]{1,6}(?:(?:\.|_|__|-{1,3})[a-z0-9]{1,6}){0,3}", fullmatch=True)
valid_names = st.lists(component, min_size=1, max_size=4).map("/".join).filter(lambda n: 2 <= len(n) <= 256)
name_like = st.one_of(
    st.text(max_size=40),
    st.text("abz09._-/%\x00A", max_size=40),
    st.lists(st.sampled_from(["app", "..", ".", "", "%2e%2e", "a", "B", "_x", "x_", "a--b", "é"]), max_size=5).map(
        "/".join
    ),
    st.text("a", min_size=250, max_size=400),
)


@fuzz_settings(300)
@given(valid_names)
def test_valid_repository_names_are_accepted_unchanged(name: str) -> None:
    assert check_repository_name(name) == name
    assert is_repository_name(name)


@fuzz_settings(800)
@given(name_like)
def test_repository_names_are_accepted_only_when_they_are_safe_path_components(name: str) -> None:
    checked = outcome(lambda: check_repository_name(name))
    assert isinstance(checked, str | NameInvalid)
    assert isinstance(checked, str) == is_repository_name(name)
    if isinstance(checked, str):
        assert checked == name
        assert set(name) <= set("abcdefghijklmnopqrstuvwxyz0123456789._-/")
        assert all(part and part not in (".", "..") and part[0].isalnum() for part in name.split("/"))
    else:
        assert len(checked.message) < 1000


valid_tags = st.from_regex(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}", fullmatch=True)


@fuzz_settings(300)
@given(valid_tags)
def test_valid_tags_are_accepted_unchanged(tag: str) -> None:
    assert check_tag(tag) == tag


@fuzz_settings(600)
@given(st.one_of(st.text(max_size=140), st.text("aZ09._-/:@\x00", max_size=140)))
def test_tags_are_accepted_only_by_the_oci_grammar(tag: str) -> None:
    checked = outcome(lambda: check_tag(tag))
    assert isinstance(checked, str | TagInvalid)
    assert isinstance(checked, str) == is_tag(tag)
    if isinstance(checked, str):
        assert len(tag) <= 128 and "/" not in tag and not tag.startswith(".")


# -- Range headers ------------------------------------------------------------------------------------------

range_like = st.one_of(
    st.text(max_size=30),
    st.tuples(
        st.sampled_from(["bytes", "BYTES", " bytes ", "items", ""]),
        st.sampled_from(["=", " ", ""]),
        st.one_of(st.just(""), st.integers(-5, 10**6).map(str), st.text("0123456789 +_-", max_size=6)),
        st.sampled_from(["-", "", "--", ","]),
        st.one_of(st.just(""), st.integers(-5, 10**6).map(str), st.text("0123456789 ", max_size=6)),
        st.sampled_from(["", ",0-1", " "]),
    ).map("".join),
    st.integers(0, 10**30).map(lambda n: f"bytes={n}-"),
)


@fuzz_settings(1000)
@given(range_like, st.integers(min_value=0, max_value=10**12))
def test_range_is_served_whole_or_in_bounds_or_refused_with_416(header: str, size: int) -> None:
    parsed = outcome(lambda: parse_range(header, size))
    assert parsed is None or isinstance(parsed, tuple | RangeNotSatisfiable)
    if isinstance(parsed, tuple):
        start, end = parsed
        assert 0 <= start <= end < size
    if isinstance(parsed, RangeNotSatisfiable):
        assert parsed.oci_status == 416
        assert parsed.size == size


@fuzz_settings(500)
@given(st.integers(0, 10**9), st.integers(0, 10**9), st.integers(1, 10**9))
def test_well_formed_ranges_select_what_rfc_9110_says(first: int, last: int, size: int) -> None:
    # RFC 9110 §14.1.2: first-last inclusive, the last position clamped to the representation; a suffix takes
    # the last n bytes. §14.1.1: last before first is invalid; §15.5.17: invalid or unsatisfiable (first at or
    # past the end) answers 416.
    closed = outcome(lambda: parse_range(f"bytes={first}-{last}", size))
    if last < first or first >= size:
        assert isinstance(closed, RangeNotSatisfiable)
    else:
        assert closed == (first, min(last, size - 1))
    open_ended = outcome(lambda: parse_range(f"bytes={first}-", size))
    if first < size:
        assert open_ended == (first, size - 1)
    else:
        assert isinstance(open_ended, RangeNotSatisfiable)
    if last > 0:
        assert parse_range(f"bytes=-{last}", size) == (max(0, size - last), size - 1)


# -- manifests and indexes -------------------------------------------------------------------------------

descriptors = st.fixed_dictionaries(
    {
        "mediaType": st.sampled_from([mt.OCI_MANIFEST, "application/vnd.oci.image.layer.v1.tar+gzip", "x/y"]),
        "digest": valid_digests,
        "size": st.integers(0, 2**53),
    },
    optional={
        "annotations": st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=3),
        "platform": st.fixed_dictionaries(
            {"architecture": st.sampled_from(["amd64", "arm64"]), "os": st.just("linux")}
        ),
        "artifactType": st.sampled_from(["application/vnd.example+json", "x/y"]),
    },
)
image_manifests = st.fixed_dictionaries(
    {
        "schemaVersion": st.just(2),
        "mediaType": st.sampled_from(sorted(mt.IMAGE_MANIFESTS)),
        "config": descriptors,
        "layers": st.lists(descriptors, max_size=5),
    },
    optional={
        "subject": descriptors,
        "artifactType": st.just("application/vnd.example+json"),
        "annotations": st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=3),
    },
)
indexes = st.fixed_dictionaries(
    {
        "schemaVersion": st.just(2),
        "mediaType": st.sampled_from(sorted(mt.INDEXES)),
        "manifests": st.lists(descriptors, max_size=5),
    },
    optional={"subject": descriptors},
)
content_types = st.one_of(
    st.none(),
    st.sampled_from([*sorted(mt.MANIFESTS | mt.SCHEMA1), "application/json", "text/plain", "", "x; charset=utf-8"]),
    st.text(max_size=30),
)


@fuzz_settings(400)
@given(st.one_of(image_manifests, indexes))
def test_valid_manifests_parse_to_what_they_declare(body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    parsed = parse_manifest(payload, body["mediaType"])
    assert parsed.media_type == body["mediaType"]
    if parsed.is_index:
        assert [d.to_json()["digest"] for d in parsed.manifests] == [m["digest"] for m in body["manifests"]]
        assert parsed.blob_digests() == []
    else:
        wanted = [body["config"]["digest"], *(layer["digest"] for layer in body["layers"])]
        assert parsed.blob_digests() == list(dict.fromkeys(wanted))
        assert [d.size for d in parsed.layers] == [layer["size"] for layer in body["layers"]]
    assert (parsed.subject.digest if parsed.subject else None) == body.get("subject", {}).get("digest")
    # A generic Content-Type defers to the body's mediaType.
    assert parse_manifest(payload, "application/json").media_type == body["mediaType"]


@fuzz_settings(800)
@given(st.one_of(image_manifests, indexes), content_types, st.data())
def test_mutated_manifests_parse_or_are_refused_with_manifest_errors(
    body: dict[str, Any], content_type: str | None, data: st.DataObject
) -> None:
    mutated = mutate_json(data, body)
    parsed = outcome(lambda: parse_manifest(json.dumps(mutated).encode(), content_type))
    assert not isinstance(parsed, EcrdError) or isinstance(parsed, ManifestInvalid | UnsupportedMediaType)


@fuzz_settings(500)
@given(st.one_of(JSON_VALUES.map(lambda v: json.dumps(v).encode()), st.binary(max_size=200)), content_types)
def test_arbitrary_bytes_parse_or_are_refused_with_manifest_errors(payload: bytes, content_type: str | None) -> None:
    parsed = outcome(lambda: parse_manifest(payload, content_type))
    assert not isinstance(parsed, EcrdError) or isinstance(parsed, ManifestInvalid | UnsupportedMediaType)


def test_manifest_of_many_layers_within_the_limit_parses_quickly() -> None:
    layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + "a" * 64, "size": 1}
    body = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": layer, "layers": [layer] * 25_000}
    payload = json.dumps(body).encode()
    assert len(payload) < MAX_MANIFEST_BYTES
    started = time.monotonic()
    parsed = parse_manifest(payload, mt.OCI_MANIFEST)
    assert len(parsed.layers) == 25_000 and parsed.blob_digests() == ["sha256:" + "a" * 64]
    assert time.monotonic() - started < 5


def test_manifest_over_the_limit_is_refused_before_parsing() -> None:
    with pytest.raises(ManifestTooLarge):
        parse_manifest(b" " * (MAX_MANIFEST_BYTES + 1), mt.OCI_MANIFEST)


def test_manifest_nested_a_few_hundred_levels_is_refused_as_invalid() -> None:
    deep = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": {}, "annotations": {}}
    nested: Any = "x"
    for _ in range(500):
        nested = {"a": nested}
    deep["config"] = {"mediaType": "x/y", "digest": "sha256:" + "a" * 64, "size": 1, "platform": nested}
    parsed = outcome(lambda: parse_manifest(json.dumps(deep).encode(), mt.OCI_MANIFEST))
    assert not isinstance(parsed, EcrdError) or isinstance(parsed, ManifestInvalid)


def test_deeply_nested_manifest_is_refused_as_invalid_not_crashed() -> None:
    with pytest.raises(ManifestInvalid):
        parse_manifest(b"[" * 100_000, mt.OCI_MANIFEST)


# -- pagination tokens (ECR) --------------------------------------------------------------------------------


@fuzz_settings(300)
@given(JSON_VALUES)
def test_pagination_tokens_round_trip_or_are_an_invalid_parameter(position: Any) -> None:
    decoded = outcome(lambda: ecr.IMAGE_PAGES.decode(ecr.IMAGE_PAGES.encode(position)))
    assert decoded == position or isinstance(decoded, InvalidParameter)


@fuzz_settings(600)
@given(
    st.one_of(
        st.text(max_size=60),
        st.binary(max_size=60).map(lambda b: base64.urlsafe_b64encode(b).decode()),
        JSON_VALUES.map(lambda v: base64.urlsafe_b64encode(json.dumps(v).encode()).decode()),
        JSON_VALUES.map(lambda v: base64.urlsafe_b64encode(json.dumps({"p": v}).encode()).decode()),
    )
)
def test_any_pagination_token_decodes_or_is_an_invalid_parameter(token: str) -> None:
    decoded = outcome(lambda: ecr.IMAGE_PAGES.decode(token))
    assert not isinstance(decoded, EcrdError) or isinstance(decoded, InvalidParameter)
    paged = outcome(lambda: ecr.IMAGE_PAGES.page_of(list(range(10)), lambda n: n, token, 3))
    assert isinstance(paged, Page | InvalidParameter)


@fuzz_settings(300)
@given(st.lists(st.integers(), max_size=40), st.one_of(st.none(), st.integers(1, 12)))
def test_following_tokens_visits_every_item_once_in_order(items: list[int], max_results: int | None) -> None:
    keys = sorted(set(items))
    seen: list[int] = []
    token: str | None = None
    for _ in range(len(keys) + 2):
        page = ecr.IMAGE_PAGES.page_of(keys, lambda n: n, token, max_results)
        seen += page.items
        token = page.token
        if token is None:
            break
    assert seen == keys and token is None


def test_deeply_nested_pagination_token_is_an_invalid_parameter() -> None:
    with pytest.raises(InvalidParameter):
        ecr.IMAGE_PAGES.decode(base64.urlsafe_b64encode(b"[" * 100_000).decode())


# -- input shapes of the AWS API: JSON values and Query forms ------------------------------------------------


def input_shape(service: str, operation: str) -> Any:
    return service_model(service).operation_model(operation).input_shape


def _with_input(operations: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The operations that take input (IAM's DeleteAccountPasswordPolicy, say, takes none: nothing to fuzz)."""
    return sorted(operation for operation in operations if input_shape(*operation) is not None)


JSON_OPERATIONS = _with_input([("ecr", name) for name in ecr.OPERATIONS] + [("kms", name) for name in kms.OPERATIONS])
QUERY_OPERATIONS = _with_input([("iam", name) for name in iam.OPERATIONS] + [("sts", name) for name in sts.OPERATIONS])


@fuzz_settings(800)
@given(st.sampled_from(JSON_OPERATIONS), st.data())
def test_json_input_of_every_operation_converts_or_is_a_shape_violation(
    operation: tuple[str, str], data: st.DataObject
) -> None:
    shape = input_shape(*operation)
    assume(shape is not None)
    params = data.draw(shape_values(shape), label="params")
    sent = json.loads(json_body(*operation, params))
    mode = data.draw(st.sampled_from(["as sent", "mutated", "arbitrary"]), label="mode")
    if mode == "as sent":
        value = sent
    elif mode == "mutated":
        value = mutate_json(data, sent)
    else:
        value = data.draw(JSON_VALUES, label="arbitrary value")
    try:
        converted = convert(shape, value)
    except ShapeViolation as violation:
        for protocol in ("json", "query"):
            error = validation_error(violation, protocol=protocol)
            assert isinstance(error, EcrdError) and len(error.message) < 2000
        return
    if value is sent:
        assert converted == params  # what boto3 sent is what the operation reads


@fuzz_settings(600)
@given(st.sampled_from(QUERY_OPERATIONS), st.data())
def test_query_form_of_every_operation_round_trips_or_is_a_shape_violation(
    operation: tuple[str, str], data: st.DataObject
) -> None:
    shape = input_shape(*operation)
    params = data.draw(shape_values(shape), label="params")
    assume("{}" not in json.dumps(params, default=str).replace(" ", ""))  # botocore sends nothing for {} items
    form = query_form(*operation, params)
    form.pop("Action"), form.pop("Version")
    try:
        converted = convert(shape, query_input(shape, form))
    except ShapeViolation:
        return
    assert converted == params


@fuzz_settings(600)
@given(
    st.sampled_from(QUERY_OPERATIONS),
    st.dictionaries(
        st.one_of(
            st.text(max_size=30),
            st.sampled_from(
                [
                    "Tags.member.1.Key",
                    "Tags.member.2.Value",
                    "Tags.member.",
                    "TagKeys.member.1",
                    "TagKeys",
                    "PolicyArns.member.1.arn",
                    "UserName",
                    "MaxItems",
                    "DurationSeconds",
                    "Tags.entry.1.key",
                ]
            ),
        ),
        st.one_of(
            st.text(max_size=30), st.sampled_from(["", "true", "false", "12", "-1", "99999999999999999999", "x"])
        ),
        max_size=8,
    ),
)
def test_arbitrary_query_forms_decode_and_convert_or_are_shape_violations(
    operation: tuple[str, str], form: dict[str, str]
) -> None:
    shape = input_shape(*operation)
    decoded = query_input(shape, form)
    assert isinstance(decoded, dict)
    try:
        convert(shape, decoded)
    except ShapeViolation as violation:
        assert isinstance(validation_error(violation, protocol="query"), EcrdError)


def test_query_form_decoding_is_linear_in_the_form_size() -> None:
    shape = input_shape("iam", "CreateUser")
    form = {"UserName": "bob"}
    for i in range(1, 1501):
        form[f"Tags.member.{i}.Key"] = "k"
        form[f"Tags.member.{i}.Value"] = "v"
    started = time.monotonic()
    query_input(shape, form)
    assert time.monotonic() - started < 0.25


# -- policy evaluation over every parsed policy -------------------------------------------------------------

ACCOUNT = "111122223333"
OPERATORS = [
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "NumericEquals",
    "NumericLessThan",
    "NumericGreaterThanEquals",
    "DateEquals",
    "DateLessThan",
    "DateGreaterThan",
    "Bool",
    "IpAddress",
    "NotIpAddress",
    "ArnEquals",
    "ArnLike",
    "ArnNotLike",
    "BinaryEquals",
    "Null",
]
condition_operators = st.tuples(
    st.sampled_from(["", "ForAnyValue:", "ForAllValues:"]),
    st.sampled_from(OPERATORS),
    st.sampled_from(["", "IfExists"]),
).map("".join)
condition_keys = st.sampled_from(
    [
        "aws:SourceIp",
        "aws:username",
        "aws:CurrentTime",
        "aws:EpochTime",
        "aws:SecureTransport",
        "aws:PrincipalArn",
        "aws:PrincipalType",
        "ecr:ResourceTag/team",
        "iam:PolicyARN",
        "sts:ExternalId",
        "aws:userid",
        "x:list",
    ]
)
condition_values = st.one_of(
    st.sampled_from(
        [
            "1",
            "1.5",
            "-3",
            "1e3",
            "2024-01-01T00:00:00Z",
            "2024-01-01",
            "1700000000",
            "true",
            "false",
            "10.0.0.0/8",
            "127.0.0.1",
            "::1/128",
            "arn:aws:ecr:*",
            "${aws:username}",
            "*",
            "YWJj",
            "",
            "${*}",
            "${aws:CurrentTime}",
            f"arn:aws:iam::{ACCOUNT}:user/*",
        ]
    ),
    st.text(max_size=10),
    st.integers(),
    st.booleans(),
)
actions = st.sampled_from(["*", "ecr:*", "ecr:BatchGetImage", "ecr:Get*", "iam:*", "sts:AssumeRole", "ecr:?utImage"])
resources = st.sampled_from(
    [
        "*",
        f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/*",
        f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/${{aws:username}}/*",
        f"arn:aws:iam::{ACCOUNT}:user/${{aws:username}}",
        "arn:aws:ecr:*:*:repository/app",
    ]
)
principals = st.sampled_from(
    [
        "*",
        {"AWS": "*"},
        {"AWS": ACCOUNT},
        {"AWS": f"arn:aws:iam::{ACCOUNT}:user/alice"},
        {"AWS": [f"arn:aws:iam::{ACCOUNT}:role/ci", "arn:aws:iam::444455556666:root"]},
        {"Service": "ecr.amazonaws.com"},
    ]
)


def statements(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    base: dict[str, st.SearchStrategy[Any]] = {
        "Effect": st.sampled_from(["Allow", "Deny"]),
        "Action": st.one_of(actions, st.lists(actions, min_size=1, max_size=3)),
    }
    optional: dict[str, st.SearchStrategy[Any]] = {
        "Condition": st.dictionaries(
            condition_operators,
            st.dictionaries(
                condition_keys,
                st.one_of(condition_values, st.lists(condition_values, min_size=1, max_size=3)),
                min_size=1,
                max_size=2,
            ),
            max_size=2,
        ),
    }
    if kind == "identity":
        base["Resource"] = st.one_of(resources, st.lists(resources, min_size=1, max_size=2))
    else:
        base["Principal"] = principals
        optional["Resource"] = resources
    return st.fixed_dictionaries(base, optional=optional)


def policies(kind: str) -> st.SearchStrategy[str]:
    return st.fixed_dictionaries(
        {
            "Version": st.sampled_from(["2012-10-17", "2008-10-17"]),
            "Statement": st.lists(statements(kind), min_size=1, max_size=3),
        }
    ).map(json.dumps)


context_values = st.one_of(
    st.text(max_size=12),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.datetimes(timezones=st.just(UTC)),
    st.lists(st.text(max_size=8), max_size=3),
    st.sampled_from(["10.1.2.3", "::1", "not-an-ip", "2024-01-01T00:00:00Z", "${aws:username}", "1e400"]),
)
callers = st.sampled_from(
    [
        Principal(f"arn:aws:iam::{ACCOUNT}:user/alice", ACCOUNT),
        Principal(f"arn:aws:sts::{ACCOUNT}:assumed-role/ci/s", ACCOUNT, aliases=(f"arn:aws:iam::{ACCOUNT}:role/ci",)),
        Principal(f"arn:aws:iam::{ACCOUNT}:root", ACCOUNT),
        Principal("arn:aws:iam::444455556666:user/pat", "444455556666"),
    ]
)
DENY_EVERYTHING = parse_policy(
    json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}),
    kind="identity",
)


@fuzz_settings(600)
@given(
    st.lists(policies("identity"), max_size=2),
    st.one_of(st.none(), policies("resource")),
    callers,
    st.sampled_from(["ecr:BatchGetImage", "ecr:PutImage", "iam:CreateAccessKey", "sts:AssumeRole", "kms:Decrypt"]),
    st.sampled_from(
        [f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/alice/app", "*", f"arn:aws:iam::{ACCOUNT}:user/alice"]
    ),
    st.dictionaries(condition_keys, context_values, max_size=4),
    st.sampled_from([ACCOUNT, "444455556666", None]),
)
def test_policy_evaluation_decides_every_request_and_an_explicit_deny_always_wins(
    identity_texts: list[str],
    resource_text: str | None,
    principal: Principal,
    action: str,
    resource: str,
    context: dict[str, object],
    resource_account: str | None,
) -> None:
    try:
        identity = [parse_policy(text, kind="identity") for text in identity_texts]
        resource_policy = parse_policy(resource_text, kind="resource") if resource_text else None
    except MalformedPolicyDocument:
        return  # refusing a document is the parser's business, tested in tests/unit/policy
    request = AuthorizationRequest(principal, action, resource, resource_account, context)
    decision = evaluate(request, identity, resource_policy)
    assert evaluate(request, identity, resource_policy) == decision
    if not decision.allowed:
        assert decision.denial_message(request).startswith(f"User: {principal.arn} is not authorized")
    denied = evaluate(request, [*identity, DENY_EVERYTHING], resource_policy)
    assert not denied.allowed and denied.reason == "explicit_deny_identity"


# -- registry passwords and the Basic credentials carrying them ---------------------------------------------


class OneCaller:
    def __init__(self, caller: Caller) -> None:
        self.caller = caller

    def current_caller(self, access_key_id: str) -> Caller | None:
        return self.caller if access_key_id == self.caller.access_key_id else None


ROOT = Caller(
    arn="arn:aws:iam::000000000000:root", account_id="000000000000", kind=CallerKind.ROOT, access_key_id="AKIAROOT"
)
TOKENS = RegistryTokens(
    SecretBox(os.urandom(32)), OneCaller(ROOT), account_id="000000000000", region="us-east-1", clock=FakeClock()
)
ISSUED = TOKENS.issue(ROOT)


@st.composite
def mutated_passwords(draw: st.DrawFn) -> str:
    """The issued password with a few characters replaced, inserted or cut."""
    text = ISSUED.password
    start = draw(st.integers(0, len(text)))
    end = draw(st.integers(start, min(len(text), start + 4)))
    return text[:start] + draw(st.text("ABCDEFabcdef0123456789-_.=+/ \x00é", max_size=4)) + text[end:]


@fuzz_settings(600)
@given(
    st.one_of(
        st.text(max_size=100),
        st.text("ABCDEFabcdef0123456789-_.=", max_size=200),
        mutated_passwords(),
    )
)
def test_any_password_is_the_issuer_s_or_refused(password: str) -> None:
    verified = outcome(lambda: TOKENS.verify(password))
    if password.strip() == ISSUED.password:
        assert verified == ROOT
    else:
        assert isinstance(verified, TokenInvalid | TokenExpiredDenied)


@fuzz_settings(600)
@given(
    st.one_of(
        st.none(),
        st.text(max_size=80),
        st.tuples(
            st.sampled_from(["Basic ", "basic ", "Bearer ", "Basic", "AWS4-HMAC-SHA256 ", ""]),
            st.one_of(
                st.text(max_size=60),
                st.text(max_size=60).map(lambda t: base64.b64encode(t.encode("utf-8", "surrogatepass")).decode()),
                st.binary(max_size=60).map(lambda b: base64.b64encode(b).decode()),
                st.sampled_from(["AWS:", "AWS:x", ":", "aws:" + ISSUED.password]).map(
                    lambda t: base64.b64encode(t.encode()).decode()
                ),
            ),
        ).map("".join),
    )
)
def test_any_authorization_header_authenticates_or_is_refused(header: str | None) -> None:
    authenticator = TokenAuthenticator(TOKENS)
    result = outcome(lambda: authenticator.authenticate(header, source_ip="127.0.0.1", secure=False))
    assert isinstance(result, EcrdError), "only the issued password in AWS:<password> authenticates"
    assert result.oci_status in (401, 403)
