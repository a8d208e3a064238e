"""The lifecycle evaluator: the user guide's examples give the guide's results, and each evaluation rule holds.

The examples are those of "Examples of lifecycle policies" in ECR's user guide (filtering on image age and on
image count, multiple rules A and B, multiple tags in a single rule A and B), with the repository contents and
outcomes the guide states.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from ecrd.domain.lifecycle import (
    DAY_SECONDS,
    LifecycleDecision,
    LifecycleImage,
    LifecyclePolicy,
    evaluate_lifecycle_policy,
    parse_lifecycle_policy,
)

NOW = 1_750_000_000.0


def days_ago(days: float) -> float:
    return NOW - days * DAY_SECONDS


def image(
    name: str,
    tags: tuple[str, ...] = (),
    *,
    pushed: float,
    pulled: float | None = None,
    archived: float | None = None,
) -> LifecycleImage:
    """An image whose digest is its name, pushed (pulled, archived) that many days ago."""
    return LifecycleImage(
        digest=name,
        tags=tags,
        pushed_at=days_ago(pushed),
        last_pulled_at=None if pulled is None else days_ago(pulled),
        storage_class="STANDARD" if archived is None else "ARCHIVE",
        last_archived_at=None if archived is None else days_ago(archived),
    )


def rules(*entries: dict[str, Any]) -> LifecyclePolicy:
    return parse_lifecycle_policy(json.dumps({"rules": list(entries)}))


def rule(priority: int, action: str = "expire", **selection: Any) -> dict[str, Any]:
    actions = {"expire": {"type": "expire"}, "transition": {"type": "transition", "targetStorageClass": "archive"}}
    return {
        "rulePriority": priority,
        "description": f"Rule {priority}",
        "selection": selection,
        "action": actions[action],
    }


def keep(count: int, **selection: Any) -> dict[str, Any]:
    return {"countType": "imageCountMoreThan", "countNumber": count, **selection}


def older_than(days: int, count_type: str = "sinceImagePushed", **selection: Any) -> dict[str, Any]:
    return {"countType": count_type, "countUnit": "days", "countNumber": days, **selection}


def acted_on(policy: LifecyclePolicy, *images: LifecycleImage) -> list[str]:
    return [decision.digest for decision in evaluate_lifecycle_policy(policy, images, now=NOW)]


# -- the user guide's examples ---------------------------------------------------------------------------------


def test_guide_filtering_on_image_age_expires_prod_images_older_than_14_days() -> None:
    policy = rules(rule(1, tagStatus="tagged", tagPatternList=["prod*"], **older_than(14)))

    assert acted_on(
        policy,
        image("old-prod", ("prod-1",), pushed=20),
        image("new-prod", ("prod-2",), pushed=3),
        image("old-beta", ("beta-1",), pushed=20),
        image("old-untagged", pushed=20),
    ) == ["old-prod"]


def test_guide_filtering_on_image_age_of_untagged_images() -> None:
    policy = rules(rule(1, tagStatus="untagged", **older_than(14)))

    assert acted_on(
        policy, image("old", pushed=15), image("young", pushed=13), image("tagged", ("v1",), pushed=30)
    ) == ["old"]


def test_guide_keep_one_untagged_image_expires_all_others() -> None:
    policy = rules(rule(1, tagStatus="untagged", **keep(1)))

    assert acted_on(
        policy,
        image("oldest", pushed=3),
        image("newest", pushed=1),
        image("middle", pushed=2),
        image("tagged", ("latest",), pushed=9),
    ) == ["oldest", "middle"]


MULTIPLE_RULES_REPOSITORY = (
    image("A", ("beta-1", "prod-1"), pushed=10),
    image("B", ("beta-2", "prod-2"), pushed=9),
    image("C", ("beta-3",), pushed=8),
)


def test_guide_multiple_rules_example_a_expires_image_a_only() -> None:
    # Rule 2 would mark A and B, but both were seen by rule 1: expiring B would violate rule 1.
    policy = rules(
        rule(1, tagStatus="tagged", tagPrefixList=["prod"], **keep(1)),
        rule(2, tagStatus="tagged", tagPrefixList=["beta"], **keep(1)),
    )

    decisions = evaluate_lifecycle_policy(policy, MULTIPLE_RULES_REPOSITORY, now=NOW)

    assert decisions == [LifecycleDecision("A", 1, "EXPIRE", None)]


def test_guide_multiple_rules_example_b_expires_images_a_and_b() -> None:
    # Rule 1 sees all three images; rule 2 sees nothing rule 1 has not already seen.
    policy = rules(
        rule(1, tagStatus="tagged", tagPrefixList=["beta"], **keep(1)),
        rule(2, tagStatus="tagged", tagPrefixList=["prod"], **keep(1)),
    )

    decisions = evaluate_lifecycle_policy(policy, MULTIPLE_RULES_REPOSITORY, now=NOW)

    assert decisions == [LifecycleDecision("A", 1, "EXPIRE", None), LifecycleDecision("B", 1, "EXPIRE", None)]


def test_guide_multiple_tags_in_one_rule_example_a_expires_image_c() -> None:
    # Only C and F carry both an alpha and a beta tag; of those only C is older than five days.
    policy = rules(rule(1, tagStatus="tagged", tagPrefixList=["alpha", "beta"], **older_than(5)))

    assert acted_on(
        policy,
        image("A", ("alpha-1",), pushed=12),
        image("B", ("beta-1",), pushed=11),
        image("C", ("alpha-2", "beta-2"), pushed=10),
        image("D", ("alpha-3",), pushed=4),
        image("E", ("beta-3",), pushed=3),
        image("F", ("alpha-4", "beta-4"), pushed=2),
    ) == ["C"]


def test_guide_multiple_tags_in_one_rule_example_b_tags_are_not_exclusive() -> None:
    policy = rules(rule(1, tagStatus="tagged", tagPrefixList=["alpha", "beta"], **keep(1)))

    assert acted_on(
        policy,
        image("A", ("alpha-1", "beta-1", "gamma-1"), pushed=10),
        image("B", ("alpha-2", "beta-2"), pushed=9),
        image("C", ("alpha-3", "beta-3", "gamma-2"), pushed=8),
    ) == ["A", "B"]


# -- the evaluation rules ----------------------------------------------------------------------------------------


def test_images_seen_by_an_earlier_rule_still_count_toward_a_later_keep_n() -> None:
    # Rule 1 expires the untagged images older than a day; rule 2 keeps the 3 newest images of any kind, and
    # counts the untagged ones "as if they haven't been expired", so only "v1" is past its count.
    policy = rules(
        rule(1, tagStatus="untagged", **older_than(1)),
        rule(2, tagStatus="any", **keep(3)),
    )

    decisions = evaluate_lifecycle_policy(
        policy,
        [
            image("v1", ("v1",), pushed=9),
            image("u1", pushed=8),
            image("u2", pushed=7),
            image("v2", ("v2",), pushed=6),
        ],
        now=NOW,
    )

    assert [(d.digest, d.rule_priority) for d in decisions] == [("u1", 1), ("u2", 1), ("v1", 2)]


def test_an_image_past_an_earlier_rules_count_is_acted_on_once_by_that_rule() -> None:
    policy = rules(
        rule(1, tagStatus="tagged", tagPrefixList=["v"], **keep(1)),
        rule(2, tagStatus="any", **keep(1)),
    )

    decisions = acted_on(policy, image("v1", ("v1",), pushed=3), image("v2", ("v2",), pushed=2), image("u", pushed=1))

    assert decisions == ["v1"]


def test_a_prefix_list_needs_every_prefix_matched_by_some_tag() -> None:
    policy = rules(rule(1, tagStatus="tagged", tagPrefixList=["prod", "eu"], **older_than(1)))

    assert acted_on(
        policy,
        image("both", ("prod-7", "eu-west"), pushed=5),
        image("prod-only", ("prod-8",), pushed=5),
        image("one-tag-both-prefixes", ("prodeu",), pushed=5),
    ) == ["both"]


def test_a_pattern_list_needs_every_pattern_matched_by_some_tag() -> None:
    policy = rules(rule(1, tagStatus="tagged", tagPatternList=["*-rc*", "v*"], **older_than(1)))

    assert acted_on(
        policy,
        image("match", ("v2", "build-rc3"), pushed=5),
        image("only-v", ("v2",), pushed=5),
        image("infix", ("v1-rc1",), pushed=5),
        image("not-whole", ("xv1",), pushed=5),
    ) == ["infix", "match"]


def test_a_wildcard_only_pattern_selects_every_tagged_image() -> None:
    policy = rules(rule(1, tagStatus="tagged", tagPatternList=["*"], **keep(1)))

    assert acted_on(policy, image("t1", ("a",), pushed=3), image("u", pushed=2), image("t2", ("b",), pushed=1)) == [
        "t1"
    ]


def test_an_image_exactly_n_days_old_is_not_older_than_n_days() -> None:
    policy = rules(rule(1, tagStatus="any", **older_than(7)))

    assert acted_on(policy, image("exactly", pushed=7), image("just-over", pushed=7.0001)) == ["just-over"]


def test_since_image_pulled_counts_from_the_last_pull_or_else_the_push() -> None:
    policy = rules(rule(1, tagStatus="any", **older_than(30, "sinceImagePulled")))

    assert acted_on(
        policy,
        image("pulled-lately", pushed=100, pulled=5),
        image("pulled-long-ago", pushed=100, pulled=40),
        image("never-pulled-old", pushed=31),
        image("never-pulled-new", pushed=29),
    ) == ["pulled-long-ago", "never-pulled-old"]


def test_a_transition_rule_archives_standard_images() -> None:
    policy = rules(rule(1, "transition", tagStatus="any", **older_than(30, "sinceImagePulled")))

    decisions = evaluate_lifecycle_policy(policy, [image("idle", ("v1",), pushed=60)], now=NOW)

    assert decisions == [LifecycleDecision("idle", 1, "TRANSITION", "ARCHIVE")]


def test_standard_rules_never_see_archived_images() -> None:
    policy = rules(rule(1, tagStatus="any", **keep(1)))

    assert acted_on(policy, image("archived", pushed=1, archived=200), image("a", pushed=3), image("b", pushed=2)) == [
        "a"
    ]


def test_archive_rules_see_only_archived_images_by_time_since_their_transition() -> None:
    policy = rules(rule(1, tagStatus="any", storageClass="archive", **older_than(100, "sinceImageTransitioned")))

    assert acted_on(
        policy,
        image("long-archived", pushed=400, archived=150),
        image("lately-archived", pushed=400, archived=50),
        image("standard-and-old", pushed=400),
    ) == ["long-archived"]


def test_no_rule_expires_an_image_archived_for_less_than_90_days() -> None:
    policy = rules(rule(1, tagStatus="any", storageClass="archive", **older_than(30, "sinceImageTransitioned")))

    assert acted_on(
        policy,
        image("89-days", pushed=400, archived=89),
        image("91-days", pushed=400, archived=91),
    ) == ["91-days"]


def test_a_rule_per_storage_class_sees_its_own_images_only() -> None:
    policy = rules(
        rule(1, tagStatus="untagged", **keep(1)),
        rule(2, tagStatus="untagged", storageClass="archive", **older_than(90, "sinceImageTransitioned")),
    )

    decisions = evaluate_lifecycle_policy(
        policy,
        [image("s1", pushed=3), image("s2", pushed=2), image("a1", pushed=300, archived=100)],
        now=NOW,
    )

    assert [(d.digest, d.rule_priority) for d in decisions] == [("s1", 1), ("a1", 2)]


def test_decisions_come_by_rule_then_oldest_push_then_digest() -> None:
    policy = rules(
        rule(1, tagStatus="tagged", tagPrefixList=["a"], **older_than(1)),
        rule(2, tagStatus="any", **older_than(1)),
    )
    repository = [
        image("z", pushed=5),
        image("a-2", ("a2",), pushed=3),
        image("y", pushed=9),
        image("a-1", ("a1",), pushed=4),
        image("x", pushed=5),
    ]

    assert acted_on(policy, *repository) == ["a-1", "a-2", "y", "x", "z"]
    assert acted_on(policy, *reversed(repository)) == acted_on(policy, *repository)


@pytest.mark.parametrize("count", [1, 2, 5])
def test_keep_n_ties_on_push_time_are_broken_by_digest(count: int) -> None:
    policy = rules(rule(1, tagStatus="any", **keep(count)))
    same_moment = [image(name, pushed=1) for name in "edcba"]

    assert acted_on(policy, *same_moment) == sorted("abcde")[count:]


def test_an_empty_repository_yields_no_decisions() -> None:
    assert evaluate_lifecycle_policy(rules(rule(1, tagStatus="any", **keep(1))), [], now=NOW) == []
