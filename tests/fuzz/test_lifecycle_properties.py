"""Properties of lifecycle policies, on policies and repositories drawn by Hypothesis (bounded examples).

The evaluator: an image is decided at most once, by the first rule that selects it; a keep-N rule never acts on
the N newest images it selects; an age rule only on images older than its days; no archived image younger than
90 days expires; the input order changes nothing; and the result is what a plain reading of the user guide's
evaluation rules gives. The parser: any text is a policy or an ``InvalidLifecyclePolicy`` in ECR's shape.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecrd.domain.lifecycle import (
    DAY_SECONDS,
    MINIMUM_ARCHIVE_DAYS,
    InvalidLifecyclePolicy,
    LifecycleDecision,
    LifecycleImage,
    LifecyclePolicy,
    LifecycleRule,
    evaluate_lifecycle_policy,
    parse_lifecycle_policy,
)
from tests.support.fuzzing import JSON_VALUES, fuzz_settings, mutate_json

pytestmark = pytest.mark.fuzz

NOW = 1_750_000_000.0
PREFIX = (
    "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: "
)
TAGS = ("a1", "a2", "b1", "prod-1", "prod-2", "v1", "v2-rc", "latest")
PREFIXES = ("a", "b", "prod", "prod-", "v", "l", "")
PATTERNS = ("*", "a*", "*1", "prod-*", "v*-rc", "*-*", "latest", "b?", "*a*1*")

# -- drawing policies ---------------------------------------------------------------------------------------------

tag_selections = st.one_of(
    st.just({"tagStatus": "untagged"}),
    st.just({"tagStatus": "any"}),
    st.lists(st.sampled_from(PREFIXES), min_size=1, max_size=2).map(
        lambda p: {"tagStatus": "tagged", "tagPrefixList": p}
    ),
    st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=2).map(
        lambda p: {"tagStatus": "tagged", "tagPatternList": p}
    ),
)
standard_counts = st.one_of(
    st.integers(1, 4).map(lambda n: {"countType": "imageCountMoreThan", "countNumber": n}),
    st.tuples(st.sampled_from(["sinceImagePushed", "sinceImagePulled"]), st.integers(1, 120)).map(
        lambda c: {"countType": c[0], "countUnit": "days", "countNumber": c[1]}
    ),
)
archive_count = st.integers(1, 200).map(
    lambda n: {"storageClass": "archive", "countType": "sinceImageTransitioned", "countUnit": "days", "countNumber": n}
)
EXPIRE = {"type": "expire"}
TRANSITION = {"type": "transition", "targetStorageClass": "archive"}
rule_bodies = st.one_of(
    st.tuples(tag_selections, standard_counts, st.sampled_from([EXPIRE, TRANSITION])),
    st.tuples(tag_selections, archive_count, st.just(EXPIRE)),
)


def _valid_order(bodies: Sequence[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]) -> list[dict[str, Any]]:
    """Rules from ``bodies`` that ECR accepts together: per storage class at most one untagged rule, at most one
    ``any`` rule, and that one last."""
    kept: list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = []
    taken: set[tuple[str, str]] = set()
    for tags, count, action in bodies:
        key = (tags["tagStatus"], count.get("storageClass", "standard"))
        if key[0] != "tagged" and key in taken:
            continue
        taken.add(key)
        kept.append((tags, count, action))
    kept.sort(key=lambda body: body[0]["tagStatus"] == "any")
    return [{"selection": {**tags, **count}, "action": action} for tags, count, action in kept]


@st.composite
def policy_documents(draw: st.DrawFn) -> dict[str, Any]:
    rules = _valid_order(draw(st.lists(rule_bodies, min_size=1, max_size=5)))
    gaps = draw(st.lists(st.integers(1, 3), min_size=len(rules), max_size=len(rules)))
    priority = 0
    for rule, gap in zip(rules, gaps, strict=True):
        priority += gap
        rule["rulePriority"] = priority
    order = draw(st.permutations(rules))
    return {"rules": list(order)}


policies = policy_documents().map(lambda doc: parse_lifecycle_policy(json.dumps(doc)))


@st.composite
def repositories(draw: st.DrawFn) -> list[LifecycleImage]:
    count = draw(st.integers(0, 14))
    images = []
    for index in range(count):
        pushed = draw(st.integers(0, 150))  # whole days: ties on push time happen
        archived = draw(st.one_of(st.none(), st.none(), st.none(), st.integers(0, 300)))  # mostly standard
        pulled = draw(st.one_of(st.none(), st.integers(0, 300)))
        images.append(
            LifecycleImage(
                digest=f"sha256:{index:064x}",
                tags=tuple(draw(st.lists(st.sampled_from(TAGS), max_size=3, unique=True))),
                pushed_at=NOW - pushed * DAY_SECONDS,
                last_pulled_at=None if pulled is None else NOW - pulled * DAY_SECONDS,
                storage_class="STANDARD" if archived is None else "ARCHIVE",
                last_archived_at=None if archived is None else NOW - archived * DAY_SECONDS,
            )
        )
    return draw(st.permutations(images))


# -- a plain reading of the evaluation rules, to compare with -----------------------------------------------------


def selects(rule: LifecycleRule, image: LifecycleImage) -> bool:
    return rule.storage_class.upper() == image.storage_class and rule.selects_tags(image.tags)


def age_reference(rule: LifecycleRule, image: LifecycleImage) -> float:
    if rule.count_type == "sinceImagePulled":
        return image.last_pulled_at if image.last_pulled_at is not None else image.pushed_at
    if rule.count_type == "sinceImageTransitioned":
        return image.last_archived_at if image.last_archived_at is not None else image.pushed_at
    return image.pushed_at


def archived_too_recently(image: LifecycleImage) -> bool:
    archived_at = image.last_archived_at if image.last_archived_at is not None else image.pushed_at
    return image.storage_class == "ARCHIVE" and NOW - archived_at < MINIMUM_ARCHIVE_DAYS * DAY_SECONDS


def newest_first(images: Sequence[LifecycleImage]) -> list[LifecycleImage]:
    return sorted(images, key=lambda i: (-i.pushed_at, i.digest))


def as_the_guide_reads(policy: LifecyclePolicy, images: Sequence[LifecycleImage]) -> list[LifecycleDecision]:
    seen: set[str] = set()
    decisions = []
    for rule in policy.rules:
        selected = newest_first([i for i in images if selects(rule, i)])
        if rule.count_type == "imageCountMoreThan":
            past = selected[rule.count_number :]
        else:
            past = [i for i in selected if NOW - age_reference(rule, i) > rule.count_number * DAY_SECONDS]
        marked = [
            i for i in past if i.digest not in seen and not (rule.action == "expire" and archived_too_recently(i))
        ]
        seen |= {i.digest for i in selected}
        for i in sorted(marked, key=lambda i: (i.pushed_at, i.digest)):
            target = "ARCHIVE" if rule.action == "transition" else None
            decisions.append(LifecycleDecision(i.digest, rule.priority, rule.action.upper(), target))
    return decisions


# -- the evaluator -----------------------------------------------------------------------------------------------


@fuzz_settings(200)
@given(policies, repositories())
def test_the_evaluator_gives_what_the_guides_rules_say(policy: LifecyclePolicy, images: list[LifecycleImage]) -> None:
    assert evaluate_lifecycle_policy(policy, images, now=NOW) == as_the_guide_reads(policy, images)


@fuzz_settings(150)
@given(policies, repositories())
def test_each_image_is_decided_at_most_once_by_the_first_rule_that_selects_it(
    policy: LifecyclePolicy, images: list[LifecycleImage]
) -> None:
    decisions = evaluate_lifecycle_policy(policy, images, now=NOW)
    by_digest = {image.digest: image for image in images}

    assert len({d.digest for d in decisions}) == len(decisions)
    for decision in decisions:
        image = by_digest[decision.digest]
        first = next(rule for rule in policy.rules if selects(rule, image))
        assert first.priority == decision.rule_priority
        assert decision.action == first.action.upper()


@fuzz_settings(150)
@given(policies, repositories())
def test_rules_act_only_past_their_count_or_age(policy: LifecyclePolicy, images: list[LifecycleImage]) -> None:
    rules = {rule.priority: rule for rule in policy.rules}
    by_digest = {image.digest: image for image in images}

    for decision in evaluate_lifecycle_policy(policy, images, now=NOW):
        rule, image = rules[decision.rule_priority], by_digest[decision.digest]
        if rule.count_type == "imageCountMoreThan":
            newest = newest_first([i for i in images if selects(rule, i)])[: rule.count_number]
            assert image not in newest
        else:
            assert NOW - age_reference(rule, image) > rule.count_number * DAY_SECONDS
        if decision.action == "EXPIRE":
            assert not archived_too_recently(image)
        else:
            assert (image.storage_class, decision.target_storage_class) == ("STANDARD", "ARCHIVE")


@fuzz_settings(120)
@given(tag_selections, st.integers(1, 6), repositories())
def test_a_lone_keep_n_rule_leaves_exactly_n_of_the_images_it_selects(
    tags: dict[str, Any], count: int, images: list[LifecycleImage]
) -> None:
    selection = {**tags, "countType": "imageCountMoreThan", "countNumber": count}
    policy = parse_lifecycle_policy(
        json.dumps({"rules": [{"rulePriority": 1, "selection": selection, "action": EXPIRE}]})
    )
    (rule,) = policy.rules
    selected = {i.digest for i in images if selects(rule, i)}

    expired = {d.digest for d in evaluate_lifecycle_policy(policy, images, now=NOW)}

    assert expired <= selected
    assert len(selected - expired) == min(count, len(selected))


@fuzz_settings(100)
@given(policies, repositories(), st.randoms(use_true_random=False))
def test_the_order_images_come_in_changes_nothing(
    policy: LifecyclePolicy, images: list[LifecycleImage], rng: Any
) -> None:
    shuffled = list(images)
    rng.shuffle(shuffled)

    assert evaluate_lifecycle_policy(policy, shuffled, now=NOW) == evaluate_lifecycle_policy(policy, images, now=NOW)


@fuzz_settings(100)
@given(policy_documents(), st.permutations(range(5)))
def test_the_order_rules_are_written_in_changes_nothing(document: dict[str, Any], order: list[int]) -> None:
    rules = document["rules"]
    reordered = [rules[i] for i in order if i < len(rules)]

    assert parse_lifecycle_policy(json.dumps({"rules": reordered})) == parse_lifecycle_policy(json.dumps(document))


# -- the parser --------------------------------------------------------------------------------------------------


def parses_or_refuses(text: str) -> LifecyclePolicy | None:
    try:
        return parse_lifecycle_policy(text)
    except InvalidLifecyclePolicy as refused:
        assert str(refused).startswith(PREFIX)
        assert "Traceback" not in str(refused) and "<class" not in str(refused)
        return None


@fuzz_settings(250)
@given(st.data(), policy_documents())
def test_a_damaged_policy_parses_or_is_refused_in_ecrs_shape(data: st.DataObject, document: dict[str, Any]) -> None:
    damaged = mutate_json(data, document)
    parsed = parses_or_refuses(json.dumps(damaged))
    if parsed is not None:
        priorities = [rule.priority for rule in parsed.rules]
        assert priorities == sorted(set(priorities))


@fuzz_settings(250)
@given(st.one_of(JSON_VALUES.map(json.dumps), st.text(max_size=200)))
def test_any_text_parses_or_is_refused_in_ecrs_shape(text: str) -> None:
    parses_or_refuses(text)
