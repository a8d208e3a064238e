"""A repository's image pull policy (decision 0030): what a pull through ``/v2/`` must satisfy beyond
authorization — no findings at or above a severity in the image's latest scan, a signature by one of the trusted
signing profiles — and the principals exempt from it. Pure: the evaluation takes the facts it decides on."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

# ECR's finding severities, most severe first (UNDEFINED is below every threshold).
SEVERITIES: Final = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL")
# Scan states after which there is nothing to find: the artifact is not an image.
NOTHING_TO_SCAN: Final = frozenset({"UNSUPPORTED_IMAGE"})

VULNERABLE: Final = "VULNERABLE"
NOT_SCANNED: Final = "NOT_SCANNED"
UNSIGNED: Final = "UNSIGNED"


@dataclass(frozen=True, slots=True)
class PullPolicy:
    severity_threshold: str | None = None
    trusted_profiles: tuple[str, ...] = ()
    exempt_principals: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.severity_threshold is not None:
            out["severityThreshold"] = self.severity_threshold
        if self.trusted_profiles:
            out["requireSignatureFrom"] = list(self.trusted_profiles)
        if self.exempt_principals:
            out["exemptPrincipals"] = list(self.exempt_principals)
        return out

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> PullPolicy:
        return cls(
            document.get("severityThreshold"),
            tuple(dict.fromkeys(document.get("requireSignatureFrom") or ())),
            tuple(dict.fromkeys(document.get("exemptPrincipals") or ())),
        )

    @property
    def restricts(self) -> bool:
        """Whether it refuses anything (a policy of exemptions alone does not)."""
        return self.severity_threshold is not None or bool(self.trusted_profiles)


def policy_text(policy: PullPolicy | None) -> str | None:
    return None if policy is None else json.dumps(policy.to_json(), sort_keys=True)


def policy_from_text(text: str | None) -> PullPolicy | None:
    return None if not text else PullPolicy.from_json(json.loads(text))


@dataclass(frozen=True, slots=True)
class PullRefusal:
    reason: str
    message: str
    finding_count: int = 0


def findings_at_or_above(threshold: str, severity_counts: dict[str, int]) -> int:
    counted = SEVERITIES[: SEVERITIES.index(threshold) + 1]
    return sum(int(severity_counts.get(severity, 0)) for severity in counted)


def evaluate_pull(
    policy: PullPolicy,
    digest: str,
    scan: tuple[str, dict[str, int]] | None,
    signed_by: frozenset[str],
) -> PullRefusal | None:
    """Why ``policy`` refuses the image ``digest``, or None. ``scan`` is its latest scan's (status, severity
    counts), None when it never was scanned; ``signed_by`` the profiles whose signatures it has. An image whose
    scan has not completed is refused under a threshold, as Harbor refuses an unscanned image: nothing says it
    is below it."""
    if policy.severity_threshold is not None:
        threshold = policy.severity_threshold
        if scan is None or (scan[0] != "COMPLETE" and scan[0] not in NOTHING_TO_SCAN):
            state = "has not been scanned" if scan is None else f"has no completed scan (its scan is {scan[0]})"
            return PullRefusal(
                NOT_SCANNED,
                f"pull refused by the repository's pull policy: image {digest} {state}, and images with findings "
                f"of severity {threshold} or higher may not be pulled; 0 findings known",
            )
        count = findings_at_or_above(threshold, scan[1]) if scan[0] == "COMPLETE" else 0
        if count:
            return PullRefusal(
                VULNERABLE,
                f"pull refused by the repository's pull policy: image {digest} has {count} finding"
                f"{'s' if count != 1 else ''} of severity {threshold} or higher in its latest scan",
                count,
            )
    if policy.trusted_profiles and not signed_by & set(policy.trusted_profiles):
        return PullRefusal(
            UNSIGNED,
            f"pull refused by the repository's pull policy: image {digest} has no signature by a trusted "
            f"signing profile ({', '.join(policy.trusted_profiles)}); 0 findings counted",
        )
    return None
