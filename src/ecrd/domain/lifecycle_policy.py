"""ECR's lifecycle policy language: the JSON text parsed into rules, and every way ECR refuses one.

ECR checks a policy in two passes, and so does this module: first a JSON schema (the messages are the schema
validator's, as ECR answers them), then the rules' meaning (duplicate priorities, a misplaced ``any`` rule…).
The length of the text (100–30720 characters) is the API model's constraint, checked where every operation's
input is checked, not here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from ecrd.domain.wildcards import wildcard_matches

TAG_STATUSES = ("any", "tagged", "untagged")
STORAGE_CLASSES = ("archive", "standard")
COUNT_TYPES = ("imageCountMoreThan", "sinceImagePulled", "sinceImagePushed", "sinceImageTransitioned")
COUNT_BY_NUMBER = "imageCountMoreThan"
COUNT_UNITS = ("days",)
ACTION_TYPES = ("expire", "transition")
TARGET_STORAGE_CLASSES = ("archive",)
MAX_PATTERN_WILDCARDS = 4
""""There is a maximum limit of four wildcards (*) per string" (user guide, lifecycle_policy_parameters)."""

_PREFIX = (
    "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: "
)
_ONE_OF_FAILED = "instance failed to match exactly one schema (matched 0 out of 2)"
"""A selection fits one of two schemas (count by number, or by age with a unit) and an action one of two (expire,
or transition with a target). ECR's text for this message and the minimum's carries no closing quote."""

_T = TypeVar("_T")

_POLICY_KEYS = frozenset({"rules"})
_RULE_REQUIRED = frozenset({"rulePriority", "selection", "action"})
_RULE_KEYS = _RULE_REQUIRED | {"description"}
_SELECTION_REQUIRED = frozenset({"tagStatus", "countType", "countNumber"})
_SELECTION_KEYS = _SELECTION_REQUIRED | {"tagPrefixList", "tagPatternList", "storageClass", "countUnit"}
_ACTION_REQUIRED = frozenset({"type"})
_ACTION_KEYS = _ACTION_REQUIRED | {"targetStorageClass"}


class InvalidLifecyclePolicy(ValueError):
    """A policy ECR would refuse; ``str(exc)`` is the whole message of its ``InvalidParameterException``."""

    def __init__(self, detail: str) -> None:
        super().__init__(_PREFIX + detail)


@dataclass(frozen=True, slots=True)
class LifecycleRule:
    priority: int
    description: str | None
    tag_status: str
    tag_prefixes: tuple[str, ...]
    tag_patterns: tuple[str, ...]
    storage_class: str
    count_type: str
    count_number: int
    action: str
    target_storage_class: str | None

    def selects_tags(self, tags: tuple[str, ...]) -> bool:
        """Whether an image with ``tags`` meets this rule's tag selection (its storage class aside).

        Several entries of a list are ANDed: "an image is successfully matched if *all* of the tags in the
        tagPrefixList value are matched against any of the image's tags" (user guide, LifecyclePolicies).
        """
        if self.tag_status == "any":
            return True
        if self.tag_status == "untagged":
            return not tags
        if not tags:
            return False
        prefixes_hold = all(any(tag.startswith(prefix) for tag in tags) for prefix in self.tag_prefixes)
        return prefixes_hold and all(any(wildcard_matches(p, tag) for tag in tags) for p in self.tag_patterns)


@dataclass(frozen=True, slots=True)
class LifecyclePolicy:
    rules: tuple[LifecycleRule, ...]
    """In the order they apply: lowest ``rulePriority`` first."""


def parse_lifecycle_policy(text: str) -> LifecyclePolicy:
    """The policy in ``text``, or :class:`InvalidLifecyclePolicy` with the message ECR gives for it."""
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        # ValueError covers malformed JSON and integers too long to convert; RecursionError absurd nesting.
        document = None
    if not isinstance(document, dict):
        raise InvalidLifecyclePolicy("Could not map policyString into LifecyclePolicy.'")
    _check_members(document, _POLICY_KEYS, _POLICY_KEYS)
    entries = _typed(document["rules"], "array", list)
    if not entries:
        raise InvalidLifecyclePolicy("array is too short: must have at least 1 elements but instance has 0 elements'")
    rules = [_rule(entry) for entry in entries]
    for rule in rules:
        _check_rule_meaning(rule)
    _check_rules_together(rules)
    return LifecyclePolicy(tuple(sorted(rules, key=lambda rule: rule.priority)))


# -- the schema ------------------------------------------------------------------------------------------------


def _rule(entry: object) -> LifecycleRule:
    rule = _typed(entry, "object", dict)
    _check_members(rule, _RULE_REQUIRED, _RULE_KEYS)
    action = _typed(rule["action"], "object", dict)
    _check_members(action, _ACTION_REQUIRED, _ACTION_KEYS)
    action_type = _enum(action["type"], ACTION_TYPES)
    target = _target_storage_class(action, action_type)
    selection = _typed(rule["selection"], "object", dict)
    _check_members(selection, _SELECTION_REQUIRED, _SELECTION_KEYS)
    tag_status = _enum(selection["tagStatus"], TAG_STATUSES)
    storage_class = _enum(selection.get("storageClass", "standard"), STORAGE_CLASSES)
    count_type = _count_type(selection)
    _check_tag_lists_given(tag_status, selection.keys() & {"tagPrefixList", "tagPatternList"})
    description = rule.get("description")
    return LifecycleRule(
        priority=_at_least_one(rule["rulePriority"]),
        description=None if description is None else _typed(description, "string", str),
        tag_status=tag_status,
        tag_prefixes=_strings(selection.get("tagPrefixList")),
        tag_patterns=_strings(selection.get("tagPatternList")),
        storage_class=storage_class,
        count_type=count_type,
        count_number=_at_least_one(selection["countNumber"]),
        action=action_type,
        target_storage_class=target,
    )


def _check_tag_lists_given(tag_status: str, given: set[str]) -> None:
    # Which lists a rule gives is checked here, not with the rule's meaning: an empty list counts as given.
    if tag_status != "tagged" and given:
        raise InvalidLifecyclePolicy(
            f"Cannot specify tagPrefixList or tagPatternList when tagStatus={tag_status.upper()}.'"
        )
    if len(given) > 1:
        raise InvalidLifecyclePolicy("Cannot specify both tagPrefixList and tagPatternList in one rule.'")


def _target_storage_class(action: Mapping[str, object], action_type: str) -> str | None:
    if action_type == "expire":
        if "targetStorageClass" in action:
            raise InvalidLifecyclePolicy(_ONE_OF_FAILED)
        return None
    target = action.get("targetStorageClass")
    if not isinstance(target, str):
        raise InvalidLifecyclePolicy(_ONE_OF_FAILED)
    return _enum(target, TARGET_STORAGE_CLASSES)


def _count_type(selection: Mapping[str, object]) -> str:
    count_type = selection["countType"]
    unit = selection.get("countUnit")
    if unit is not None:
        _enum(unit, COUNT_UNITS)
    if count_type not in COUNT_TYPES:
        raise InvalidLifecyclePolicy(_ONE_OF_FAILED)
    # "countUnit ... should only be specified when countType is sinceImagePushed; an error will occur if you
    # specify a count unit when countType is any other value" (user guide); the age types all need it.
    by_number = count_type == COUNT_BY_NUMBER
    if by_number == ("countUnit" in selection):
        raise InvalidLifecyclePolicy(_ONE_OF_FAILED)
    return str(count_type)


_JSON_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
)


def _json_type(value: object) -> str:
    return next((name for kind, name in _JSON_TYPES if isinstance(value, kind)), "null")


def _typed(value: object, expected: str, kind: type[_T]) -> _T:
    if _json_type(value) != expected:
        raise InvalidLifecyclePolicy(
            f'instance type ({_json_type(value)}) does not match any allowed primitive type (allowed: ["{expected}"])\''
        )
    return cast(_T, value)


def _compact(values: object) -> str:
    return json.dumps(values, separators=(",", ":"))


def _check_members(value: Mapping[str, Any], required: frozenset[str], allowed: frozenset[str]) -> None:
    missing = sorted(required - value.keys())
    if missing:
        raise InvalidLifecyclePolicy(f"object has missing required properties ({_compact(missing)})'")
    extra = sorted(value.keys() - allowed)
    if extra:
        raise InvalidLifecyclePolicy(
            f"object instance has properties which are not allowed by the schema: ({_compact(extra)})'"
        )


def _enum(value: object, allowed: tuple[str, ...]) -> str:
    if value not in allowed or not isinstance(value, str):
        shown = value if isinstance(value, str) else _compact(value)
        raise InvalidLifecyclePolicy(
            f"instance value ({shown}) not found in enum :(possible values: {_compact(allowed)})'"
        )
    return value


def _at_least_one(value: object) -> int:
    number = _typed(value, "integer", int)
    if number < 1:
        raise InvalidLifecyclePolicy(
            f"numeric instance is lower than the required minimum (minimum: 1, found: {number})"
        )
    return number


def _strings(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    return tuple(_typed(item, "string", str) for item in _typed(value, "array", list))


# -- the meaning -----------------------------------------------------------------------------------------------


def _check_rule_meaning(rule: LifecycleRule) -> None:
    if rule.tag_status == "tagged" and not (rule.tag_prefixes or rule.tag_patterns):
        raise InvalidLifecyclePolicy("Must specify tagPrefixList or tagPatternList when tagStatus=TAGGED.'")
    for pattern in rule.tag_patterns:
        if pattern.count("*") > MAX_PATTERN_WILDCARDS:
            raise InvalidLifecyclePolicy(
                f"Tag pattern {_compact(pattern)} has more than {MAX_PATTERN_WILDCARDS} wildcards (*).'"
            )
    # Only archived images age since their transition; the other count types look at standard images only.
    since_transition = rule.count_type == "sinceImageTransitioned"
    if since_transition and rule.storage_class != "archive":
        raise InvalidLifecyclePolicy("countType=sinceImageTransitioned requires storageClass=ARCHIVE.'")
    if rule.storage_class == "archive" and not since_transition:
        raise InvalidLifecyclePolicy("storageClass=ARCHIVE supports only countType=sinceImageTransitioned.'")
    if rule.action == "transition" and rule.storage_class != "standard":
        raise InvalidLifecyclePolicy("Action transition applies only to images of storageClass=STANDARD.'")


def _check_rules_together(rules: list[LifecycleRule]) -> None:
    priorities: set[int] = set()
    for rule in rules:
        if rule.priority in priorities:
            raise InvalidLifecyclePolicy(f"Rule priority {rule.priority} is used by more than one rule.'")
        priorities.add(rule.priority)
    for storage_class in STORAGE_CLASSES:
        in_class = sorted((r for r in rules if r.storage_class == storage_class), key=lambda r: r.priority)
        if any(rule.tag_status == "any" for rule in in_class[:-1]):
            raise InvalidLifecyclePolicy("Rule for tagStatus=ANY must have the lowest priority per storage class.'")
        if sum(rule.tag_status == "untagged" for rule in in_class) > 1:
            raise InvalidLifecyclePolicy("Only one rule can select Untagged images per storage class.'")
