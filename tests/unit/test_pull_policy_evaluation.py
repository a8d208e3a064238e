"""The pull policy's evaluation: which scans reach a threshold, and what an unsigned image is refused for."""

from __future__ import annotations

import pytest

from ecrd.domain.pull_policy import (
    NOT_SCANNED,
    UNSIGNED,
    VULNERABLE,
    PullPolicy,
    evaluate_pull,
    findings_at_or_above,
)

PROFILE = "arn:aws:signer:us-east-1:000000000000:/signing-profiles/release"
COUNTS = {"CRITICAL": 1, "HIGH": 2, "MEDIUM": 4, "LOW": 8, "INFORMATIONAL": 16, "UNDEFINED": 32}


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [("CRITICAL", 1), ("HIGH", 3), ("MEDIUM", 7), ("LOW", 15), ("INFORMATIONAL", 31)],
)
def test_a_threshold_counts_its_severity_and_every_higher_one(threshold: str, expected: int) -> None:
    assert findings_at_or_above(threshold, COUNTS) == expected


@pytest.mark.parametrize(
    ("scan", "reason", "count"),
    [
        (None, NOT_SCANNED, 0),
        (("IN_PROGRESS", {}), NOT_SCANNED, 0),
        (("FAILED", {}), NOT_SCANNED, 0),
        (("COMPLETE", {"HIGH": 1, "LOW": 3}), VULNERABLE, 1),
        (("COMPLETE", {"LOW": 3}), None, 0),
        (("COMPLETE", {}), None, 0),
        (("UNSUPPORTED_IMAGE", {}), None, 0),
    ],
)
def test_a_severity_threshold_refuses_what_reaches_it_or_was_not_scanned(
    scan: tuple[str, dict[str, int]] | None, reason: str | None, count: int
) -> None:
    refusal = evaluate_pull(PullPolicy("HIGH"), "sha256:0", scan, frozenset())
    found = None if refusal is None else (refusal.reason, refusal.finding_count)
    assert found == (None if reason is None else (reason, count))


def test_a_required_signature_is_met_by_any_trusted_profile() -> None:
    policy = PullPolicy(None, (PROFILE, PROFILE + "2"))
    assert evaluate_pull(policy, "sha256:0", None, frozenset({PROFILE + "2"})) is None
    refusal = evaluate_pull(policy, "sha256:0", None, frozenset({PROFILE + "3"}))
    assert refusal is not None and refusal.reason == UNSIGNED


def test_exemptions_alone_restrict_nothing() -> None:
    assert not PullPolicy(exempt_principals=("arn:aws:iam::000000000000:user/x",)).restricts
    assert PullPolicy.from_json(PullPolicy("LOW", (PROFILE,)).to_json()) == PullPolicy("LOW", (PROFILE,))
