"""Which repository creation template a new repository takes (ECR's prefix rule: longest prefix, ROOT last),
and what a template's scenarios may be."""

from __future__ import annotations

import pytest

from ecrd.domain.creation_templates import (
    CREATE_ON_PUSH,
    PULL_THROUGH_CACHE,
    REPLICATION,
    ROOT,
    CreationTemplate,
    best_template,
    candidate_prefixes,
    checked_applied_for,
    normalized_prefix,
    prefix_matches,
)
from ecrd.errors import InvalidParameter


@pytest.mark.parametrize(
    ("prefix", "name", "matches"),
    [
        ("prod", "prod/app", True),
        ("prod", "prod/team/app", True),
        ("prod/", "prod/app", True),
        ("prod/team", "prod/team/app", True),
        ("prod", "prod", False),
        ("prod", "production/app", False),
        ("prod/team", "prod/app", False),
        (ROOT, "app", True),
        (ROOT, "prod/app", True),
    ],
)
def test_a_prefix_covers_the_names_in_its_namespace(prefix: str, name: str, matches: bool) -> None:
    assert prefix_matches(prefix, name) is matches


def test_a_trailing_slash_names_the_same_namespace() -> None:
    assert normalized_prefix("prod/") == normalized_prefix("prod") == "prod"
    assert normalized_prefix(ROOT) == ROOT


def test_candidate_prefixes_run_from_the_longest_namespace_to_root() -> None:
    assert candidate_prefixes("a/b/c") == ("a/b", "a", ROOT)
    assert candidate_prefixes("app") == (ROOT,)


def _template(prefix: str, *applied_for: str) -> CreationTemplate:
    return CreationTemplate(prefix=prefix, applied_for=applied_for or (CREATE_ON_PUSH,))


def test_the_longest_matching_prefix_wins_and_root_is_the_last_resort() -> None:
    templates = [_template(ROOT), _template("prod"), _template("prod/team")]
    assert best_template(templates, "prod/team/app", CREATE_ON_PUSH) == templates[2]
    assert best_template(templates, "prod/other", CREATE_ON_PUSH) == templates[1]
    assert best_template(templates, "dev/app", CREATE_ON_PUSH) == templates[0]
    assert best_template(templates[1:], "dev/app", CREATE_ON_PUSH) is None


def test_a_template_for_another_scenario_is_passed_over() -> None:
    templates = [_template(ROOT, CREATE_ON_PUSH), _template("prod", PULL_THROUGH_CACHE)]
    assert best_template(templates, "prod/app", CREATE_ON_PUSH) == templates[0]
    assert best_template(templates, "prod/app", PULL_THROUGH_CACHE) == templates[1]
    assert best_template(templates, "prod/app", REPLICATION) is None


def test_applied_for_keeps_each_known_scenario_once_in_order() -> None:
    assert checked_applied_for([CREATE_ON_PUSH, REPLICATION, CREATE_ON_PUSH]) == (CREATE_ON_PUSH, REPLICATION)


@pytest.mark.parametrize("values", [[], ["CREATE_ON_PULL"], [REPLICATION, "replication"]])
def test_applied_for_needs_known_scenarios(values: list[str]) -> None:
    with pytest.raises(InvalidParameter):
        checked_applied_for(values)
