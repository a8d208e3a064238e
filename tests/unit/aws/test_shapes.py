"""Input validation by botocore shape: the model's patterns, run on RE2, quietly and as AWS reads them."""

from __future__ import annotations

import json

import pytest

from ecrd.aws import shapes
from ecrd.aws.models import service_model
from ecrd.aws.shapes import ShapeViolation, convert

POLICY = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}]})


def put_user_policy_input() -> object:
    return service_model("iam").operation_model("PutUserPolicy").input_shape


def test_checking_an_iam_policy_writes_nothing_to_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    # Given patterns not compiled yet in this process (RE2's C++ logs a pattern it cannot parse, once per
    # compile, straight to file descriptor 2)
    shapes._pattern.cache_clear()
    capfd.readouterr()

    # When a PutUserPolicy input is checked against the model
    params = convert(put_user_policy_input(), {"UserName": "alice", "PolicyName": "p", "PolicyDocument": POLICY})

    # Then it passes, and nothing reached the process's stderr
    assert params["PolicyDocument"] == POLICY
    assert "Error parsing" not in capfd.readouterr().err


@pytest.mark.parametrize(
    ("document", "allowed"),
    [
        (POLICY, True),
        ("\t\n\r \u00ff", True),
        ("\u0100\u2603", False),  # no character IAM's pattern allows (it stops at U+00FF)
        ("\x01\x02", False),
    ],
)
def test_model_patterns_written_with_java_unicode_escapes_are_enforced(document: str, allowed: bool) -> None:
    # The IAM model writes its patterns as Java does, "[\u0009\u000A\u000D\u0020-\u00FF]+"; RE2 spells a code
    # point \x{…}, so read as they stand they would not compile and would not be checked at all. (Patterns are
    # searched, not anchored, as Smithy defines them.)
    shape = put_user_policy_input()
    params = {"UserName": "alice", "PolicyName": "p", "PolicyDocument": document}
    if allowed:
        convert(shape, params)
        return
    with pytest.raises(ShapeViolation, match="regular expression pattern"):
        convert(shape, params)


def test_a_pattern_range_above_the_bmp_reads_as_one_range() -> None:
    # STS's ARN pattern ends "\uE000-\uFFFD\u10000-\u10FFFF]+": its last range is the planes above the BMP,
    # not U+1000, then "0" to U+10FF, then "FF".
    shape = service_model("sts").operation_model("AssumeRole").input_shape
    convert(shape, {"RoleArn": "\U0001f600" * 20, "RoleSessionName": "session"})
    with pytest.raises(ShapeViolation, match="regular expression pattern"):
        convert(shape, {"RoleArn": "\x01" * 20, "RoleSessionName": "session"})
