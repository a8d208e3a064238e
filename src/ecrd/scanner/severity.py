"""Finding severities as ECR names them, from an advisory's own rating or the base score of its CVSS vector.

ECR "uses the distro's severity where available, otherwise CVSS" (ECR user guide, basic scanning), so a rating
the source gives (``database_specific.severity``, e.g. GitHub's ``MODERATE``) comes first; without one, the
qualitative rating of the CVSS base score computed from the vector (CVSS v3.1 spec §5, v4.0 spec "Qualitative
Severity Rating Scale"; v2 by NVD's scale); without either, UNDEFINED. Base scores are computed by the ``cvss``
package (RedHatProductSecurity/cvss), which implements the v2, v3.x and v4.0 specifications' formulas.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from cvss import CVSS2, CVSS3, CVSS4  # type: ignore[import-untyped]
from cvss.exceptions import CVSSError  # type: ignore[import-untyped]

from ecrd.scanner.advisories import Advisory, SeverityVector


class Severity(StrEnum):
    """ECR's ``FindingSeverity``, most severe first."""

    CRITICAL = "CRITICAL"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"
    INFORMATIONAL = "INFORMATIONAL"
    UNDEFINED = "UNDEFINED"

    @property
    def rank(self) -> int:
        """0 for CRITICAL … 5 for UNDEFINED: the order findings are listed in."""
        return _ORDER.index(self)


_ORDER: Final = tuple(Severity)

# Source ratings seen in OSV records (GitHub's, Ubuntu's priorities) → ECR's names.
_SOURCE_RATINGS: Final = {
    "CRITICAL": Severity.CRITICAL,
    "HIGH": Severity.HIGH,
    "IMPORTANT": Severity.HIGH,
    "MODERATE": Severity.MEDIUM,
    "MEDIUM": Severity.MEDIUM,
    "LOW": Severity.LOW,
    "NEGLIGIBLE": Severity.INFORMATIONAL,
    "INFORMATIONAL": Severity.INFORMATIONAL,
}

# Which vector to report when a record carries several: v3 first, as ECR's basic findings carry CVSS3_* (and
# CVSS2_*) attributes and nearly every record has one; then v4, then v2.
_PREFERENCE: Final = ("CVSS_V3", "CVSS_V4", "CVSS_V2")


@dataclass(frozen=True)
class CvssScore:
    version: int  # 2, 3 or 4
    vector: str
    base_score: float

    @property
    def rating(self) -> Severity:
        return rating_for(self.base_score, version=self.version)


def rating_for(score: float, *, version: int) -> Severity:
    """The qualitative rating of a base score: v3/v4 None 0.0, Low 0.1–3.9, Medium 4.0–6.9, High 7.0–8.9,
    Critical 9.0–10.0 (ECR calls None INFORMATIONAL); v2 (NVD) Low 0.0–3.9, Medium 4.0–6.9, High 7.0–10.0."""
    if version == 2:
        return Severity.HIGH if score >= 7.0 else Severity.MEDIUM if score >= 4.0 else Severity.LOW
    if score >= 9.0:
        return Severity.CRITICAL
    if score >= 7.0:
        return Severity.HIGH
    if score >= 4.0:
        return Severity.MEDIUM
    if score > 0.0:
        return Severity.LOW
    return Severity.INFORMATIONAL


def cvss_score(entry: SeverityVector) -> CvssScore | None:
    """The base score of one ``severity[]`` entry, or None when its vector is not valid for its type."""
    try:
        if entry.type == "CVSS_V3":
            v3 = CVSS3(entry.score)
            return CvssScore(3, v3.clean_vector(), float(v3.base_score))
        if entry.type == "CVSS_V4":
            v4 = CVSS4(entry.score)
            return CvssScore(4, v4.clean_vector(), float(v4.base_score))
        if entry.type == "CVSS_V2":
            v2 = CVSS2(entry.score)
            return CvssScore(2, v2.clean_vector(), float(v2.base_score))
    except (CVSSError, ValueError, KeyError, IndexError):
        return None
    return None


def preferred_cvss(advisory: Advisory) -> CvssScore | None:
    for wanted in _PREFERENCE:
        for entry in advisory.severity:
            if entry.type == wanted and (score := cvss_score(entry)) is not None:
                return score
    return None


def severity_of(advisory: Advisory) -> tuple[Severity, CvssScore | None]:
    """The finding severity of an advisory and the CVSS score reported with it."""
    score = preferred_cvss(advisory)
    if advisory.database_severity is not None:
        rated = _SOURCE_RATINGS.get(advisory.database_severity.strip().upper())
        if rated is not None:
            return rated, score
    if score is not None:
        return score.rating, score
    return Severity.UNDEFINED, None
