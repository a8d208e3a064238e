"""The lifecycle policy language: what parses into which rules, and every refusal with ECR's message.

Schema messages are the ones ECR answers with (as moto records them); the rules' meaning uses ECR's texts where
they are known ("Must specify tagPrefixList or tagPatternList when tagStatus=TAGGED.", "Only one rule can select
Untagged images per storage class.", "Rule for tagStatus=ANY must have the lowest priority per storage class").
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from ecrd.domain.lifecycle import InvalidLifecyclePolicy, LifecycleRule, parse_lifecycle_policy

PREFIX = (
    "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: "
)


def rule(
    priority: int = 1,
    *,
    selection: dict[str, Any] | None = None,
    action: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "rulePriority": priority,
        "selection": selection or {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1},
        "action": action or {"type": "expire"},
        **extra,
    }


def policy(*rules: dict[str, Any]) -> str:
    return json.dumps({"rules": list(rules)})


def refusal(text: str) -> str:
    with pytest.raises(InvalidLifecyclePolicy) as caught:
        parse_lifecycle_policy(text)
    message = str(caught.value)
    assert message.startswith(PREFIX)
    return message.removeprefix(PREFIX)


# -- what parses ----------------------------------------------------------------------------------------------


def test_a_full_rule_parses_into_its_fields() -> None:
    text = policy(
        rule(
            3,
            description="archive old releases",
            selection={
                "tagStatus": "tagged",
                "tagPatternList": ["release-*"],
                "storageClass": "standard",
                "countType": "sinceImagePulled",
                "countUnit": "days",
                "countNumber": 30,
            },
            action={"type": "transition", "targetStorageClass": "archive"},
        )
    )

    assert parse_lifecycle_policy(text).rules == (
        LifecycleRule(
            priority=3,
            description="archive old releases",
            tag_status="tagged",
            tag_prefixes=(),
            tag_patterns=("release-*",),
            storage_class="standard",
            count_type="sinceImagePulled",
            count_number=30,
            action="transition",
            target_storage_class="archive",
        ),
    )


def test_defaults_are_standard_storage_no_description_and_no_target() -> None:
    (parsed,) = parse_lifecycle_policy(policy(rule())).rules

    assert (parsed.storage_class, parsed.description, parsed.target_storage_class) == ("standard", None, None)
    assert (parsed.tag_prefixes, parsed.tag_patterns) == ((), ())


def test_rules_come_out_lowest_priority_first_and_need_not_be_sequential() -> None:
    text = policy(
        rule(10, selection={"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 5}),
        rule(
            2,
            selection={
                "tagStatus": "tagged",
                "tagPrefixList": ["v"],
                "countType": "imageCountMoreThan",
                "countNumber": 3,
            },
        ),
        rule(7),
    )

    assert [r.priority for r in parse_lifecycle_policy(text).rules] == [2, 7, 10]


def test_archived_images_can_be_expired_by_time_since_their_transition() -> None:
    text = policy(
        rule(
            1,
            selection={
                "tagStatus": "any",
                "storageClass": "archive",
                "countType": "sinceImageTransitioned",
                "countUnit": "days",
                "countNumber": 180,
            },
        )
    )

    (parsed,) = parse_lifecycle_policy(text).rules
    assert (parsed.storage_class, parsed.count_type, parsed.action) == ("archive", "sinceImageTransitioned", "expire")


def test_an_untagged_and_an_any_rule_may_live_in_each_storage_class() -> None:
    standard_untagged = rule(1)
    standard_any = rule(2, selection={"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 9})
    archive = {"storageClass": "archive", "countType": "sinceImageTransitioned", "countUnit": "days", "countNumber": 99}
    archive_untagged = rule(3, selection={"tagStatus": "untagged", **archive})
    archive_any = rule(4, selection={"tagStatus": "any", **archive})

    assert (
        len(parse_lifecycle_policy(policy(standard_untagged, archive_untagged, standard_any, archive_any)).rules) == 4
    )


USER_GUIDE_POLICIES = {
    "filtering on image age": {
        "tagStatus": "tagged",
        "tagPatternList": ["prod*"],
        "countType": "sinceImagePushed",
        "countUnit": "days",
        "countNumber": 14,
    },
    "filtering on image count": {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1},
    "multiple tags in one rule": {
        "tagStatus": "tagged",
        "tagPrefixList": ["alpha", "beta"],
        "countType": "sinceImagePushed",
        "countNumber": 5,
        "countUnit": "days",
    },
    "four wildcards are allowed": {
        "tagStatus": "tagged",
        "tagPatternList": ["*test*1*2*3", "test*1*2*3*"],
        "countType": "imageCountMoreThan",
        "countNumber": 1,
    },
}


@pytest.mark.parametrize("selection", USER_GUIDE_POLICIES.values(), ids=USER_GUIDE_POLICIES.keys())
def test_the_user_guide_policies_parse(selection: dict[str, Any]) -> None:
    assert parse_lifecycle_policy(policy(rule(1, selection=selection, description="from the guide"))).rules


# -- the schema ------------------------------------------------------------------------------------------------

UNTAGGED = {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1}
NOT_ONE_SCHEMA = "instance failed to match exactly one schema (matched 0 out of 2)"

SCHEMA_ERRORS: dict[str, tuple[str, str]] = {
    "not JSON": ("some invalid input", "Could not map policyString into LifecyclePolicy.'"),
    "a JSON array": (json.dumps([rule()]), "Could not map policyString into LifecyclePolicy.'"),
    "a JSON string": (json.dumps("rules"), "Could not map policyString into LifecyclePolicy.'"),
    "nested past any sense": ("[" * 100_000 + "]" * 100_000, "Could not map policyString into LifecyclePolicy.'"),
    "an integer too long to read": (
        '{"rules": [{"rulePriority": ' + "9" * 5000 + "}]}",
        "Could not map policyString into LifecyclePolicy.'",
    ),
    "no rules": (json.dumps({"no_rules": "test"}), 'object has missing required properties (["rules"])\''),
    "rules not a list": (
        json.dumps({"rules": rule()}),
        'instance type (object) does not match any allowed primitive type (allowed: ["array"])\'',
    ),
    "an empty rule list": (policy(), "array is too short: must have at least 1 elements but instance has 0 elements'"),
    "an unknown top-level member": (
        json.dumps({"rules": [rule()], "version": 1}),
        'object instance has properties which are not allowed by the schema: (["version"])\'',
    ),
    "a rule that is a string": (
        json.dumps({"rules": ["not_dict"]}),
        'instance type (string) does not match any allowed primitive type (allowed: ["object"])\'',
    ),
    "a rule without priority": (
        json.dumps({"rules": [{"selection": UNTAGGED, "action": {"type": "expire"}}]}),
        'object has missing required properties (["rulePriority"])\'',
    ),
    "a rule with nothing": (
        json.dumps({"rules": [{}]}),
        'object has missing required properties (["action","rulePriority","selection"])\'',
    ),
    "an unknown rule member": (
        policy(rule(unknown=123)),
        'object instance has properties which are not allowed by the schema: (["unknown"])\'',
    ),
    "a priority of 0": (policy(rule(0)), "numeric instance is lower than the required minimum (minimum: 1, found: 0)"),
    "a priority as text": (
        policy(rule("1")),  # type: ignore[arg-type]
        'instance type (string) does not match any allowed primitive type (allowed: ["integer"])\'',
    ),
    "a priority of true": (
        policy(rule(True)),
        'instance type (boolean) does not match any allowed primitive type (allowed: ["integer"])\'',
    ),
    "a fractional priority": (
        policy(rule(1.5)),  # type: ignore[arg-type]
        'instance type (number) does not match any allowed primitive type (allowed: ["integer"])\'',
    ),
    "a description that is not text": (
        policy(rule(description=["x"])),
        'instance type (array) does not match any allowed primitive type (allowed: ["string"])\'',
    ),
    "an action without type": (
        policy(rule(action={"targetStorageClass": "archive"})),
        'object has missing required properties (["type"])\'',
    ),
    "an unknown action member": (
        policy(rule(action={"type": "expire", "unknown": 123})),
        'object instance has properties which are not allowed by the schema: (["unknown"])\'',
    ),
    "an unknown action type": (
        policy(rule(action={"type": "keep"})),
        'instance value (keep) not found in enum :(possible values: ["expire","transition"])\'',
    ),
    "an expiry with a target": (
        policy(rule(action={"type": "expire", "targetStorageClass": None})),
        NOT_ONE_SCHEMA,
    ),
    "a transition without a target": (policy(rule(action={"type": "transition"})), NOT_ONE_SCHEMA),
    "a transition to another class": (
        policy(rule(action={"type": "transition", "targetStorageClass": "glacier"})),
        'instance value (glacier) not found in enum :(possible values: ["archive"])\'',
    ),
    "a selection without tagStatus": (
        policy(rule(selection={"countType": "imageCountMoreThan", "countNumber": 30})),
        'object has missing required properties (["tagStatus"])\'',
    ),
    "a selection without countType and countNumber": (
        policy(rule(selection={"tagStatus": "untagged"})),
        'object has missing required properties (["countNumber","countType"])\'',
    ),
    "an unknown selection member": (
        policy(rule(selection={**UNTAGGED, "unknown": 123})),
        'object instance has properties which are not allowed by the schema: (["unknown"])\'',
    ),
    "an unknown tagStatus": (
        policy(rule(selection={**UNTAGGED, "tagStatus": "unknown"})),
        'instance value (unknown) not found in enum :(possible values: ["any","tagged","untagged"])\'',
    ),
    "a tagStatus that is a number": (
        policy(rule(selection={**UNTAGGED, "tagStatus": 7})),
        'instance value (7) not found in enum :(possible values: ["any","tagged","untagged"])\'',
    ),
    "an unknown storageClass": (
        policy(rule(selection={**UNTAGGED, "storageClass": "glacier"})),
        'instance value (glacier) not found in enum :(possible values: ["archive","standard"])\'',
    ),
    "an unknown countType": (policy(rule(selection={**UNTAGGED, "countType": "unknown"})), NOT_ONE_SCHEMA),
    "an unknown countUnit": (
        policy(rule(selection={**UNTAGGED, "countType": "sinceImagePushed", "countUnit": "hours"})),
        'instance value (hours) not found in enum :(possible values: ["days"])\'',
    ),
    "a countUnit with imageCountMoreThan": (policy(rule(selection={**UNTAGGED, "countUnit": "days"})), NOT_ONE_SCHEMA),
    "sinceImagePushed without countUnit": (
        policy(rule(selection={**UNTAGGED, "countType": "sinceImagePushed"})),
        NOT_ONE_SCHEMA,
    ),
    "sinceImagePulled without countUnit": (
        policy(rule(selection={**UNTAGGED, "countType": "sinceImagePulled"})),
        NOT_ONE_SCHEMA,
    ),
    "a countNumber of 0": (
        policy(rule(selection={**UNTAGGED, "countNumber": 0})),
        "numeric instance is lower than the required minimum (minimum: 1, found: 0)",
    ),
    "a negative countNumber": (
        policy(rule(selection={**UNTAGGED, "countNumber": -1})),
        "numeric instance is lower than the required minimum (minimum: 1, found: -1)",
    ),
    "a countNumber as text": (
        policy(rule(selection={**UNTAGGED, "countNumber": "5"})),
        'instance type (string) does not match any allowed primitive type (allowed: ["integer"])\'',
    ),
    "a tag prefix list that is text": (
        policy(rule(selection={**UNTAGGED, "tagStatus": "tagged", "tagPrefixList": "prod"})),
        'instance type (string) does not match any allowed primitive type (allowed: ["array"])\'',
    ),
    "a tag pattern that is not text": (
        policy(rule(selection={**UNTAGGED, "tagStatus": "tagged", "tagPatternList": [None]})),
        'instance type (null) does not match any allowed primitive type (allowed: ["string"])\'',
    ),
}


@pytest.mark.parametrize(("text", "message"), SCHEMA_ERRORS.values(), ids=SCHEMA_ERRORS.keys())
def test_a_policy_off_the_schema_is_refused_with_ecrs_message(text: str, message: str) -> None:
    assert refusal(text) == message


# -- the meaning ------------------------------------------------------------------------------------------------

ARCHIVED = {"storageClass": "archive", "countType": "sinceImageTransitioned", "countUnit": "days", "countNumber": 100}
ANY_KEEP_5 = {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 5}

MEANING_ERRORS: dict[str, tuple[str, str]] = {
    "two rules with one priority": (
        policy(rule(4), rule(4, selection=ANY_KEEP_5)),
        "Rule priority 4 is used by more than one rule.'",
    ),
    "tagged without a list": (
        policy(rule(selection={**UNTAGGED, "tagStatus": "tagged"})),
        "Must specify tagPrefixList or tagPatternList when tagStatus=TAGGED.'",
    ),
    "tagged with an empty list": (
        policy(rule(selection={**UNTAGGED, "tagStatus": "tagged", "tagPrefixList": []})),
        "Must specify tagPrefixList or tagPatternList when tagStatus=TAGGED.'",
    ),
    "tagged with both lists": (
        policy(rule(selection={**UNTAGGED, "tagStatus": "tagged", "tagPrefixList": ["a"], "tagPatternList": ["b*"]})),
        "Cannot specify both tagPrefixList and tagPatternList in one rule.'",
    ),
    "tagged with a list and an empty one": (
        policy(rule(selection={**UNTAGGED, "tagStatus": "tagged", "tagPrefixList": ["a"], "tagPatternList": []})),
        "Cannot specify both tagPrefixList and tagPatternList in one rule.'",
    ),
    "untagged with a prefix list": (
        policy(rule(selection={**UNTAGGED, "tagPrefixList": ["prod"]})),
        "Cannot specify tagPrefixList or tagPatternList when tagStatus=UNTAGGED.'",
    ),
    "any with an empty pattern list": (
        policy(rule(selection={**ANY_KEEP_5, "tagPatternList": []})),
        "Cannot specify tagPrefixList or tagPatternList when tagStatus=ANY.'",
    ),
    "a pattern with six wildcards": (
        policy(rule(selection={**UNTAGGED, "tagStatus": "tagged", "tagPatternList": ["test*1*2*3*4*5*6"]})),
        'Tag pattern "test*1*2*3*4*5*6" has more than 4 wildcards (*).\'',
    ),
    "a pattern with five wildcards": (
        policy(rule(selection={**UNTAGGED, "tagStatus": "tagged", "tagPatternList": ["ok", "*a*b*c*d*"]})),
        'Tag pattern "*a*b*c*d*" has more than 4 wildcards (*).\'',
    ),
    "an any rule before another": (
        policy(rule(1, selection=ANY_KEEP_5), rule(2)),
        "Rule for tagStatus=ANY must have the lowest priority per storage class.'",
    ),
    "two any rules": (
        policy(rule(1, selection=ANY_KEEP_5), rule(2, selection=ANY_KEEP_5)),
        "Rule for tagStatus=ANY must have the lowest priority per storage class.'",
    ),
    "an any rule before another of the archive class": (
        policy(
            rule(1, selection={"tagStatus": "any", **ARCHIVED}),
            rule(2, selection={"tagStatus": "untagged", **ARCHIVED}),
        ),
        "Rule for tagStatus=ANY must have the lowest priority per storage class.'",
    ),
    "two untagged rules": (
        policy(rule(1), rule(2, selection={**UNTAGGED, "countType": "sinceImagePushed", "countUnit": "days"})),
        "Only one rule can select Untagged images per storage class.'",
    ),
    "sinceImageTransitioned on standard images": (
        policy(rule(selection={"tagStatus": "untagged", **ARCHIVED, "storageClass": "standard"})),
        "countType=sinceImageTransitioned requires storageClass=ARCHIVE.'",
    ),
    "sinceImageTransitioned without storageClass": (
        policy(
            rule(
                selection={
                    "tagStatus": "untagged",
                    "countType": "sinceImageTransitioned",
                    "countUnit": "days",
                    "countNumber": 9,
                }
            )
        ),
        "countType=sinceImageTransitioned requires storageClass=ARCHIVE.'",
    ),
    "an archive rule counting images": (
        policy(rule(selection={**UNTAGGED, "storageClass": "archive"})),
        "storageClass=ARCHIVE supports only countType=sinceImageTransitioned.'",
    ),
    "a transition of archived images": (
        policy(
            rule(
                selection={"tagStatus": "untagged", **ARCHIVED},
                action={"type": "transition", "targetStorageClass": "archive"},
            )
        ),
        "Action transition applies only to images of storageClass=STANDARD.'",
    ),
}


@pytest.mark.parametrize(("text", "message"), MEANING_ERRORS.values(), ids=MEANING_ERRORS.keys())
def test_a_policy_whose_rules_make_no_sense_is_refused(text: str, message: str) -> None:
    assert refusal(text) == message


def test_the_error_is_a_value_error_carrying_the_whole_message() -> None:
    with pytest.raises(ValueError, match=r"^Invalid parameter at 'LifecyclePolicyText'"):
        parse_lifecycle_policy("{}")
