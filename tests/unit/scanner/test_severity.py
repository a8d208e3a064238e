"""Severity: the source's own rating first, else the qualitative rating of the CVSS base score computed from the
vector (v3.x, v4.0, v2), else UNDEFINED."""

from __future__ import annotations

from typing import Any

import pytest

from ecrd.scanner.advisories import SeverityVector, parse_advisory
from ecrd.scanner.severity import CvssScore, Severity, cvss_score, rating_for, severity_of
from tests.support.vulndata import record


@pytest.mark.parametrize(
    ("kind", "vector", "score"),
    [
        # Well-known base scores of these vectors (the specifications' and NVD's calculators agree on them).
        ("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
        ("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L", 5.3),
        ("CVSS_V3", "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:L/A:N", 3.3),
        ("CVSS_V3", "CVSS:3.0/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
        ("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
        ("CVSS_V4", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", 9.3),
        ("CVSS_V4", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N", 0.0),
        ("CVSS_V2", "AV:N/AC:L/Au:N/C:P/I:P/A:P", 7.5),
    ],
)
def test_base_score_is_computed_from_the_vector(kind: str, vector: str, score: float) -> None:
    computed = cvss_score(SeverityVector(kind, vector))

    assert computed is not None and computed.base_score == score


@pytest.mark.parametrize(
    ("score", "version", "expected"),
    [
        (10.0, 3, Severity.CRITICAL),
        (9.0, 3, Severity.CRITICAL),
        (8.9, 3, Severity.HIGH),
        (7.0, 4, Severity.HIGH),
        (6.9, 3, Severity.MEDIUM),
        (4.0, 3, Severity.MEDIUM),
        (3.9, 3, Severity.LOW),
        (0.1, 4, Severity.LOW),
        (0.0, 3, Severity.INFORMATIONAL),
        (10.0, 2, Severity.HIGH),
        (6.9, 2, Severity.MEDIUM),
        (3.9, 2, Severity.LOW),
        (0.0, 2, Severity.LOW),
    ],
)
def test_qualitative_rating_of_a_base_score(score: float, version: int, expected: Severity) -> None:
    assert rating_for(score, version=version) is expected


def advisory(**fields: Any) -> Any:
    return parse_advisory({"id": "TEST-1", "modified": "2024-01-01T00:00:00Z", **fields})


def test_the_cvss_v3_rating_is_used_when_the_source_gives_none() -> None:
    severity, score = severity_of(
        advisory(severity=[{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L"}])
    )

    assert severity is Severity.MEDIUM
    assert score == CvssScore(3, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L", 5.3)


def test_v3_is_preferred_over_v4_when_both_are_given() -> None:
    _severity, score = severity_of(
        advisory(
            severity=[
                {"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"},
                {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L"},
            ]
        )
    )

    assert score is not None and score.version == 3


def test_a_v4_vector_alone_rates_the_finding() -> None:
    severity, score = severity_of(
        advisory(
            severity=[{"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}]
        )
    )

    assert (severity, score and score.base_score) == (Severity.CRITICAL, 9.3)


def test_the_sources_own_rating_comes_before_the_cvss_rating() -> None:
    # GitHub rates GHSA-c2qf-rxjj-qqgw MODERATE; its CVSS 3.1 vector scores 5.3 (also MEDIUM) and is still reported.
    severity, score = severity_of(parse_advisory(record("npm-ghsa-sample", "GHSA-c2qf-rxjj-qqgw")))

    assert severity is Severity.MEDIUM
    assert score is not None and score.base_score == 5.3


@pytest.mark.parametrize(
    ("rating", "expected"),
    [
        ("CRITICAL", Severity.CRITICAL),
        ("HIGH", Severity.HIGH),
        ("MODERATE", Severity.MEDIUM),
        ("LOW", Severity.LOW),
        ("negligible", Severity.INFORMATIONAL),
    ],
)
def test_source_ratings_map_to_ecr_severities(rating: str, expected: Severity) -> None:
    assert severity_of(advisory(database_specific={"severity": rating}))[0] is expected


def test_no_rating_and_no_usable_vector_is_undefined() -> None:
    assert severity_of(advisory()) == (Severity.UNDEFINED, None)
    assert severity_of(
        advisory(severity=[{"type": "CVSS_V3", "score": "CVSS:3.1/AV:X"}], database_specific={"severity": "UNKNOWN"})
    ) == (Severity.UNDEFINED, None)
